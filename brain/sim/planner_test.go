package sim

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/brain/place"
	"github.com/sluicehq/sluice/brain/plan"
)

func dayNightWorkload() *Workload {
	w := &Workload{Name: "day-night", Profile: place.Profile{CurvePoints: 2}}
	for i := range 4 {
		w.Snapshot.Hosts = append(w.Snapshot.Hosts, place.Host{Name: fmt.Sprintf("h%d", i), Capacity: place.Resources{place.DimCPU: 4000}})
	}
	for i, app := range []string{"day", "night", "day", "night"} {
		curve := []int64{2000, 0}
		if app == "night" {
			curve = []int64{0, 2000}
		}
		w.Requests = append(w.Requests, place.Request{ID: fmt.Sprintf("%s-%d", app, i), App: app, Curves: map[string][]int64{place.DimCPU: curve}})
	}
	return w
}

// TestEvaluateRunsThePlanner: the cost strategy's run is the planner's
// placement, scored and validated like the others.
func TestEvaluateRunsThePlanner(t *testing.T) {
	rep, err := Evaluate(context.Background(), dayNightWorkload(), []place.Strategy{place.StrategyCost, place.StrategyBestFit}, []uint64{1}, Options{Planner: plan.Planner{}})
	if err != nil {
		t.Fatal(err)
	}
	cost := rep.Runs[0]
	// The accounting self-check compares the sum of peaks with the peak
	// of the summed curve, which pairing day with night must break until
	// it compares like with like (issue 15, part 1); every rule is checked.
	var rules []Violation
	for _, v := range cost.Violations {
		if v.Rule != "accounting" {
			rules = append(rules, v)
		}
	}
	if cost.Placed != 4 || cost.HostsUsed != 2 || len(rules) > 0 {
		t.Errorf("cost run: placed %d on %d hosts, violations %v; want 4 on 2, none", cost.Placed, cost.HostsUsed, rules)
	}
}

// badPlanner puts every request on the first host.
type badPlanner struct{}

func (badPlanner) Handles(s place.Strategy) bool { return s == place.StrategyCost }
func (badPlanner) Plan(_ context.Context, snap place.Snapshot, _ place.Profile, reqs []place.Request, _ uint64) ([]string, error) {
	out := make([]string, len(reqs))
	for i := range out {
		out[i] = snap.Hosts[0].Name
	}
	return out, nil
}

// TestReplayRefusesAnOverflowingPlan: a planner's choice that overflows
// its host is an error naming the request, not a silent placement.
func TestReplayRefusesAnOverflowingPlan(t *testing.T) {
	w := dayNightWorkload()
	w.Requests = append(w.Requests, w.Requests[0])
	w.Requests[4].ID = "day-4"
	_, err := Replay(context.Background(), w, place.StrategyCost, 1, Options{Planner: badPlanner{}})
	if err == nil || !strings.Contains(err.Error(), "day-4") || !strings.Contains(err.Error(), "overflows") {
		t.Errorf("got %v, want the overflow of day-4", err)
	}
}
