package plan

import (
	"errors"
	"fmt"
	"slices"
)

// ErrBadMoves is wrapped by every error about a move list that cannot be
// replayed: malformed, or a step whose state breaks a rule.
var ErrBadMoves = errors.New("bad move list")

// Replayed is a move list checked step by step.
type Replayed struct {
	Before, After Breakdown
	Moves         int
	Batches       int
	// States is how many intermediate states were checked (two per
	// batch: after its stops and after its starts).
	States int
}

// ReplayMoves applies mp to the model's existing state and checks every
// intermediate state with the validator, which recomputes loads and
// counts from the containers' hosts and shares nothing with the
// planner's bookkeeping. It stops at the first problem, naming the step.
func ReplayMoves(m *Model, mp MovePlan) (*Replayed, error) {
	if mp.Version != MovePlanVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrBadMoves, mp.Version, MovePlanVersion)
	}
	if mp.InFlight < 1 {
		return nil, fmt.Errorf("%w: in_flight %d, want at least 1", ErrBadMoves, mp.InFlight)
	}
	start := FromExisting(m)
	at := start.Placement()
	if v := Check(m, at); len(v) > 0 {
		return nil, fmt.Errorf("replay moves: %w: %d problems, the first: %s", ErrInfeasibleStart, len(v), v[0])
	}
	ids, hosts := m.containerIndex(), m.hostIndex()
	ck := newChecker(m, at)
	out := &Replayed{Before: start.Breakdown(), Moves: len(mp.Moves)}
	for i := 0; i < len(mp.Moves); {
		j := i + 1
		for j < len(mp.Moves) && mp.Moves[j].Batch == mp.Moves[i].Batch {
			j++
		}
		if err := replayBatch(ck, mp.Moves[i:j], mp.InFlight, ids, hosts); err != nil {
			return nil, err
		}
		out.Batches++
		out.States += 2
		i = j
	}
	end := NewState(m)
	for c, h := range ck.at {
		if h >= 0 {
			end.add(c, int(h))
		}
	}
	out.After = end.Breakdown()
	return out, nil
}

// replayBatch stops every container of one batch, checks, starts them on
// their new hosts, checks.
func replayBatch(ck *checker, moves []Move, inFlight int, ids, hosts map[string]int) error {
	m := ck.m
	first := moves[0]
	if len(moves) > inFlight {
		return fmt.Errorf("%w: batch %d (step %d): %d moves, in_flight is %d", ErrBadMoves, first.Batch, first.Step, len(moves), inFlight)
	}
	var apps []int
	var touched []int
	for _, mv := range moves {
		c, ok := ids[mv.Container]
		if !ok {
			return fmt.Errorf("%w: step %d: unknown container %q", ErrBadMoves, mv.Step, mv.Container)
		}
		from, okF := hosts[mv.From]
		to, okT := hosts[mv.To]
		if !okF || !okT {
			return fmt.Errorf("%w: step %d: unknown host %q or %q", ErrBadMoves, mv.Step, mv.From, mv.To)
		}
		if got := ck.at[c]; got != int32(from) {
			where := "nowhere"
			if got >= 0 {
				where = "on " + m.hosts[got].name
			}
			return fmt.Errorf("%w: step %d: container %s runs %s, not from %s", ErrBadMoves, mv.Step, mv.Container, where, mv.From)
		}
		ck.set(int32(c), -1)
		apps = append(apps, int(m.kinds[m.ctrs[c].kind].app))
		touched = append(touched, from, to)
	}
	slices.Sort(apps)
	apps = slices.Compact(apps)
	slices.Sort(touched)
	touched = slices.Compact(touched)
	check := func(when string) error {
		var v []Violation
		for _, h := range touched {
			v = append(v, ck.host(h)...)
		}
		for _, a := range apps {
			v = append(v, ck.spread(a)...)
		}
		if len(v) > 0 {
			return fmt.Errorf("%w: batch %d (step %d), after the %s: %s", ErrBadMoves, first.Batch, first.Step, when, v[0])
		}
		return nil
	}
	if err := check("stops"); err != nil {
		return err
	}
	for _, mv := range moves {
		ck.set(int32(ids[mv.Container]), int32(hosts[mv.To]))
	}
	return check("starts")
}
