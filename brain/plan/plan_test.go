package plan_test

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/brain/place"
	"github.com/sluicehq/sluice/brain/plan"
	"github.com/sluicehq/sluice/brain/sim"
)

func compile(t *testing.T, in plan.Input) *plan.Model {
	t.Helper()
	m, err := plan.Compile(in)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// dayNight is four hosts of 4 CPUs and two apps of 2 CPUs at their peak:
// "day" runs at its peak at point 0 and idles at point 1, "night" the
// other way round.
func dayNight() plan.Input {
	in := plan.Input{Profile: place.Profile{CurvePoints: 2}}
	for i := range 4 {
		in.Hosts = append(in.Hosts, place.Host{Name: fmt.Sprintf("h%d", i), Capacity: place.Resources{place.DimCPU: 4000}})
	}
	for i, app := range []string{"day", "day", "night", "night"} {
		curve := []int64{2000, 0}
		if app == "night" {
			curve = []int64{0, 2000}
		}
		in.Containers = append(in.Containers, place.Request{ID: fmt.Sprintf("%s-%d", app, i), App: app, Curves: map[string][]int64{place.DimCPU: curve}})
	}
	return in
}

// hostApps lists, per used host, the apps on it in order.
func hostApps(in plan.Input, hostOf func(i int) string) map[string][]string {
	out := map[string][]string{}
	for i, c := range in.Containers {
		h := hostOf(i)
		out[h] = append(out[h], c.App)
	}
	for _, apps := range out {
		slices.Sort(apps)
	}
	return out
}

// TestCurveAwarePairsDayWithNight: the planner puts one day and one night
// container on each of two hosts (50% CPU at both points, no penalty),
// where a scorer ranking by peaks stacks day with day and night with
// night (100% at one point, 0% at the other).
func TestCurveAwarePairsDayWithNight(t *testing.T) {
	in := dayNight()
	m := compile(t, in)
	res := plan.Solve(m, plan.Options{Seed: 1})
	got := hostApps(in, func(i int) string { return m.HostName(res.State.HostOf(i)) })
	if len(got) != 2 {
		t.Fatalf("planner used %d hosts, want 2: %v", len(got), got)
	}
	for h, apps := range got {
		if !slices.Equal(apps, []string{"day", "night"}) {
			t.Errorf("host %s runs %v, want one day and one night", h, apps)
		}
	}
	if b := res.Final; b.Penalty != 0 || b.Objective != 2 {
		t.Errorf("cost %+v, want 2 hosts and no penalty", b)
	}

	// best-fit ranks hosts by what is left at their peak.
	c, err := place.New(place.Snapshot{Hosts: in.Hosts}, place.Profile{CurvePoints: 2, Strategy: place.StrategyBestFit})
	if err != nil {
		t.Fatal(err)
	}
	hosts := make([]string, len(in.Containers))
	for i, r := range in.Containers {
		d, err := c.Place(r)
		if err != nil || !d.Placed {
			t.Fatalf("best-fit: %v %+v", err, d)
		}
		hosts[i] = d.Placement.Host
	}
	bf := hostApps(in, func(i int) string { return hosts[i] })
	in.Existing = hosts
	bfCost := plan.FromExisting(compile(t, in)).Breakdown()
	t.Logf("best-fit: %v cost %.3f; planner: %v cost %.3f", bf, bfCost.Objective, got, res.Final.Objective)
	if bfCost.Objective <= res.Final.Objective {
		t.Errorf("best-fit cost %.3f is not above the planner's %.3f; the case does not show what it should", bfCost.Objective, res.Final.Objective)
	}
}

// costOf is the objective of a complete placement given by host names.
func costOf(t *testing.T, in plan.Input, hosts []string) (plan.Breakdown, []plan.Violation) {
	t.Helper()
	in.Existing = hosts
	m := compile(t, in)
	return plan.FromExisting(m).Breakdown(), plan.Check(m, plan.FromExisting(m).Placement())
}

// TestBoundNeverExceedsCost: on generated clusters, the bound is at most
// the cost of every complete placement: the planner's, the existing
// state's, and every place strategy's.
func TestBoundNeverExceedsCost(t *testing.T) {
	for seed := range uint64(8) {
		cfg := genConfig{seed: seed, small: 12, big: 6 + int(seed%3)*6, apps: 10, ctrs: 60 + int(seed)*10, points: 24, rules: seed%2 == 0}
		in := gen(cfg)
		m := compile(t, in)
		b, err := plan.LowerBound(m)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		costs := map[string]float64{}
		res := plan.Solve(m, plan.Options{Seed: seed})
		if res.Final.Unplaced == 0 {
			costs["cost"] = res.Final.Objective
		}
		if bd, _ := costOf(t, in, in.Existing); !slices.Contains(in.Existing, "") {
			costs["existing"] = bd.Objective
		}
		for _, st := range []place.Strategy{place.StrategyBestFit, place.StrategyStack, place.StrategyBalanced, place.StrategyDotProduct, place.StrategySpread} {
			prof := in.Profile
			prof.Strategy = st
			c, err := place.New(place.Snapshot{Hosts: in.Hosts}, prof)
			if err != nil {
				t.Fatal(err)
			}
			hosts := make([]string, len(in.Containers))
			complete := true
			for i, r := range in.Containers {
				r.Seed = seed*1000 + uint64(i) + 1
				d, err := c.Place(r)
				if err != nil {
					t.Fatal(err)
				}
				complete = complete && d.Placed
				hosts[i] = d.Placement.Host
			}
			if complete {
				bd, _ := costOf(t, in, hosts)
				costs[string(st)] = bd.Objective
			}
		}
		if len(costs) < 3 {
			t.Fatalf("seed %d: only %d complete placements to compare: %v", seed, len(costs), costs)
		}
		for name, c := range costs {
			if b.Value > c {
				t.Errorf("seed %d: bound %.6f exceeds %s's cost %.6f", seed, b.Value, name, c)
			}
		}
		t.Logf("seed %d: bound %.3f (%s), planner %.3f (%.2f%% above), costs %v", seed, b.Value, b.Method, costs["cost"], 100*(costs["cost"]/b.Value-1), costs)
	}
}

// TestBoundOneShapeClosedForm: one shape, a flat load and no penalty:
// the bound is the load over a host's capacity. With a penalty, it is the
// minimum over n of n·(1 + φ(L/(n·C))), found here by brute force.
func TestBoundOneShapeClosedForm(t *testing.T) {
	in := plan.Input{Penalties: []plan.Penalty{{Dim: "cpu", Target: 1, Steepness: 4, Weight: 1}}}
	for i := range 10 {
		in.Hosts = append(in.Hosts, place.Host{Name: fmt.Sprintf("h%d", i), Capacity: place.Resources{place.DimCPU: 1000}})
	}
	for i := range 7 {
		in.Containers = append(in.Containers, place.Request{ID: fmt.Sprintf("c%d", i), Demand: place.Resources{place.DimCPU: 500}})
	}
	b, err := plan.LowerBound(compile(t, in))
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(b.Value-3.5) > 1e-6 {
		t.Errorf("bound without penalty %.9f, want 3.5", b.Value)
	}
	in.Penalties = []plan.Penalty{{Dim: "cpu", Target: 0.5, Steepness: 4, Weight: 1}}
	b, err = plan.LowerBound(compile(t, in))
	if err != nil {
		t.Fatal(err)
	}
	want := math.Inf(1)
	for n := 3.5; n <= 10; n += 1e-4 {
		x := max(0, 3500/(n*1000)-0.5)
		want = min(want, n*(1+math.Expm1(4*x)-4*x))
	}
	if b.Value > want+1e-6 || b.Value < want-1e-3 {
		t.Errorf("bound with penalty %.6f, brute force %.6f", b.Value, want)
	}
}

// TestSolveKeepsEveryRule checks the planner's placement with the
// package's validator and with the simulator's, which shares no code
// with it.
func TestSolveKeepsEveryRule(t *testing.T) {
	for seed := range uint64(6) {
		in := gen(genConfig{seed: seed, small: 10, big: 10, apps: 12, ctrs: 120, points: 24, rules: true})
		m := compile(t, in)
		res := plan.Solve(m, plan.Options{Seed: seed})
		if v := plan.Check(m, res.State.Placement()); len(v) > 0 {
			t.Errorf("seed %d: %v", seed, v)
		}
		snap := place.Snapshot{Hosts: in.Hosts}
		for i, r := range in.Containers {
			h := res.State.HostOf(i)
			if h < 0 {
				continue
			}
			snap.Placements = append(snap.Placements, place.Placement{Request: r, Host: m.HostName(h)})
		}
		if v := sim.Validate(snap, in.Profile); len(v) > 0 {
			t.Errorf("seed %d: simulator's validator: %v", seed, v)
		}
		if res.Final.Objective > res.Greedy.Objective+1e-9 {
			t.Errorf("seed %d: local search raised the cost from %.4f to %.4f", seed, res.Greedy.Objective, res.Final.Objective)
		}
	}
}

// TestSolveIsDeterministic: a seed gives the same placement every time;
// another seed may differ but is as valid.
func TestSolveIsDeterministic(t *testing.T) {
	in := gen(genConfig{seed: 3, small: 10, big: 10, apps: 12, ctrs: 150, points: 24, rules: true})
	m := compile(t, in)
	a := plan.Solve(m, plan.Options{Seed: 9}).State.Placement()
	b := plan.Solve(m, plan.Options{Seed: 9}).State.Placement()
	if !slices.Equal(a, b) {
		t.Error("the same seed gave two placements")
	}
}

// TestStopEndsTheSearch: a Stop that says yes ends the local search at
// its first check, and the result says so.
func TestStopEndsTheSearch(t *testing.T) {
	in := gen(genConfig{seed: 1, small: 10, big: 10, apps: 12, ctrs: 150, points: 24})
	res := plan.Solve(compile(t, in), plan.Options{Seed: 1, Iterations: 100000, Stop: func() bool { return true }})
	if !res.Stopped || res.Iterations >= 2048 {
		t.Errorf("stopped %v after %d iterations, want stopped near 1024", res.Stopped, res.Iterations)
	}
}

func TestCompileRejectsBadInput(t *testing.T) {
	good := dayNight()
	for name, mutate := range map[string]func(*plan.Input){
		"gpu":          func(in *plan.Input) { in.Containers[0].GPU.Count = 1 },
		"duplicate id": func(in *plan.Input) { in.Containers[1].ID = in.Containers[0].ID },
		"unknown dim":  func(in *plan.Input) { in.Containers[0].Demand = place.Resources{"fpga": 1} },
		"short curve":  func(in *plan.Input) { in.Containers[0].Curves[place.DimCPU] = []int64{1} },
		"unknown host": func(in *plan.Input) { in.Existing = []string{"nowhere", "", "", ""} },
		"bad cost":     func(in *plan.Input) { in.Cost = map[string]float64{"h0": -1} },
		"bad penalty":  func(in *plan.Input) { in.Penalties = []plan.Penalty{{Dim: "cpu", Target: 2, Steepness: 1}} },
	} {
		in := dayNight()
		in.Containers = slices.Clone(good.Containers)
		for i := range in.Containers {
			in.Containers[i].Curves = map[string][]int64{place.DimCPU: good.Containers[i].Curves[place.DimCPU]}
		}
		mutate(&in)
		if _, err := plan.Compile(in); err == nil {
			t.Errorf("%s: compiled", name)
		}
	}
}
