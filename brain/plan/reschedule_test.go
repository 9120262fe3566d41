package plan_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/brain/place"
	"github.com/sluicehq/sluice/brain/plan"
	"github.com/sluicehq/sluice/brain/sim"
)

// snapshotOf is the placement hosts (container -> host name, "" = not
// running) as a place snapshot, for the simulator's validator.
func snapshotOf(in plan.Input, hosts map[string]string) place.Snapshot {
	snap := place.Snapshot{Hosts: in.Hosts}
	for _, r := range in.Containers {
		if h := hosts[r.ID]; h != "" {
			snap.Placements = append(snap.Placements, place.Placement{Request: r, Host: h})
		}
	}
	return snap
}

// walk applies a move plan batch by batch to a plain map and validates
// the state after every batch's stops and after its starts with the
// simulator's validator, which knows nothing of the planner.
func walk(t *testing.T, in plan.Input, mp plan.MovePlan) {
	t.Helper()
	hosts := map[string]string{}
	for i, r := range in.Containers {
		hosts[r.ID] = in.Existing[i]
	}
	if v := sim.Validate(snapshotOf(in, hosts), in.Profile); len(v) > 0 {
		t.Fatalf("start state: %v", v)
	}
	for i := 0; i < len(mp.Moves); {
		j := i
		for j < len(mp.Moves) && mp.Moves[j].Batch == mp.Moves[i].Batch {
			j++
		}
		if j-i > mp.InFlight {
			t.Fatalf("batch %d holds %d moves, in flight %d", mp.Moves[i].Batch, j-i, mp.InFlight)
		}
		for _, mv := range mp.Moves[i:j] {
			if hosts[mv.Container] != mv.From {
				t.Fatalf("step %d: %s runs on %q, the plan says %q", mv.Step, mv.Container, hosts[mv.Container], mv.From)
			}
			hosts[mv.Container] = ""
		}
		if v := sim.Validate(snapshotOf(in, hosts), in.Profile); len(v) > 0 {
			t.Fatalf("batch %d after its stops: %v", mp.Moves[i].Batch, v)
		}
		for _, mv := range mp.Moves[i:j] {
			hosts[mv.Container] = mv.To
		}
		if v := sim.Validate(snapshotOf(in, hosts), in.Profile); len(v) > 0 {
			t.Fatalf("batch %d after its starts: %v", mp.Moves[i].Batch, v)
		}
		i = j
	}
}

// TestRescheduleEveryStepFeasible: from a spread-out existing state the
// plan lowers the cost within its move cap, moves no container twice,
// and every state on the way keeps every rule by the simulator's
// validator; the package's own replay agrees on the end cost.
func TestRescheduleEveryStepFeasible(t *testing.T) {
	for seed := range uint64(6) {
		for _, inFlight := range []int{1, 3} {
			in := gen(genConfig{seed: seed, small: 16, big: 8, apps: 12, ctrs: 150, points: 24, rules: true})
			m := compile(t, in)
			res, err := plan.Reschedule(m, plan.RescheduleOptions{Seed: seed, MaxMoves: 40, InFlight: inFlight})
			if err != nil {
				t.Fatal(err)
			}
			mp := res.Plan
			if len(mp.Moves) == 0 || len(mp.Moves) > 40 {
				t.Fatalf("seed %d: %d moves, want 1..40", seed, len(mp.Moves))
			}
			if res.After.Objective >= res.Before.Objective {
				t.Errorf("seed %d: cost %.3f -> %.3f, want lower", seed, res.Before.Objective, res.After.Objective)
			}
			seen := map[string]bool{}
			for _, mv := range mp.Moves {
				if seen[mv.Container] {
					t.Errorf("seed %d: %s moves twice", seed, mv.Container)
				}
				seen[mv.Container] = true
			}
			walk(t, in, mp)
			rep, err := plan.ReplayMoves(m, mp)
			if err != nil {
				t.Fatalf("seed %d: replay: %v", seed, err)
			}
			if d := rep.After.Objective - res.After.Objective; d > 1e-6 || d < -1e-6 {
				t.Errorf("seed %d: replay ends at %.6f, the planner at %.6f", seed, rep.After.Objective, res.After.Objective)
			}
			t.Logf("seed %d in flight %d: %d moves in %d batches, cost %.3f -> %.3f, hosts %d -> %d", seed, inFlight, len(mp.Moves), rep.Batches, res.Before.Objective, res.After.Objective, res.Before.HostsUsed, res.After.HostsUsed)
		}
	}
}

// TestReplayMovesNamesTheBadStep: a move into a host with no room, a
// move from the wrong host and an oversized batch are refused with the
// step.
func TestReplayMovesNamesTheBadStep(t *testing.T) {
	in := dayNight()
	in.Existing = []string{"h0", "h1", "h0", "h1"} // day+night on h0 and on h1
	in.Profile.AntiAffinity = []place.AntiAffinity{{App: "day", Other: "day", MaxOther: 0}}
	m := compile(t, in)
	for name, tc := range map[string]struct {
		plan plan.MovePlan
		want string
	}{
		"rule broken": {plan.MovePlan{Version: 1, InFlight: 1, Moves: []plan.Move{
			{Step: 1, Batch: 1, Container: "night-2", From: "h0", To: "h2"},
			{Step: 2, Batch: 2, Container: "day-0", From: "h0", To: "h1"},
		}}, "batch 2 (step 2), after the starts: anti-affinity on h1"},
		"wrong source": {plan.MovePlan{Version: 1, InFlight: 1, Moves: []plan.Move{
			{Step: 1, Batch: 1, Container: "day-0", From: "h1", To: "h2"},
		}}, "runs on h0, not from h1"},
		"batch too big": {plan.MovePlan{Version: 1, InFlight: 1, Moves: []plan.Move{
			{Step: 1, Batch: 1, Container: "day-0", From: "h0", To: "h2"},
			{Step: 2, Batch: 1, Container: "day-1", From: "h1", To: "h3"},
		}}, "2 moves, in_flight is 1"},
		"version": {plan.MovePlan{Version: 2, InFlight: 1}, "version 2"},
	} {
		_, err := plan.ReplayMoves(m, tc.plan)
		if !errors.Is(err, plan.ErrBadMoves) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrBadMoves naming %q", name, err, tc.want)
		}
	}
}

// TestRescheduleRefusesABrokenStart: an existing state that breaks a rule
// is reported, not planned from.
func TestRescheduleRefusesABrokenStart(t *testing.T) {
	in := dayNight()
	in.Existing = []string{"h0", "h0", "h1", "h1"}
	in.Profile.AntiAffinity = []place.AntiAffinity{{App: "day", Other: "day", MaxOther: 0}}
	_, err := plan.Reschedule(compile(t, in), plan.RescheduleOptions{})
	if !errors.Is(err, plan.ErrInfeasibleStart) || !strings.Contains(err.Error(), "anti-affinity") {
		t.Errorf("got %v, want ErrInfeasibleStart naming anti-affinity", err)
	}
}
