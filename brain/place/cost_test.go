package place

import (
	"fmt"
	"slices"
	"testing"
)

// TestCostPairsDayWithNight: with the cost strategy, a night instance
// joins a host running a day instance (no peak rises, no penalty) rather
// than an empty host or a host running night; best-fit, which ranks by
// what is left at the peak, stacks like with like.
func TestCostPairsDayWithNight(t *testing.T) {
	hosts := []Host{}
	for i := range 4 {
		hosts = append(hosts, Host{Name: fmt.Sprintf("h%d", i), Capacity: Resources{DimCPU: 4000}})
	}
	reqs := []Request{}
	for i, app := range []string{"day", "day", "night", "night"} {
		curve := []int64{2000, 0}
		if app == "night" {
			curve = []int64{0, 2000}
		}
		reqs = append(reqs, Request{ID: fmt.Sprintf("%s-%d", app, i), App: app, Curves: map[string][]int64{DimCPU: curve}, Seed: uint64(i + 1)})
	}
	run := func(s Strategy) map[string][]string {
		c, err := New(Snapshot{Hosts: hosts}, Profile{CurvePoints: 2, Strategy: s})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]string{}
		for _, r := range reqs {
			d, err := c.Place(r)
			if err != nil || !d.Placed {
				t.Fatalf("%s: %v %+v", s, err, d)
			}
			out[d.Placement.Host] = append(out[d.Placement.Host], r.App)
		}
		for _, apps := range out {
			slices.Sort(apps)
		}
		return out
	}
	got := run(StrategyCost)
	if len(got) != 2 {
		t.Fatalf("cost used %d hosts, want 2: %v", len(got), got)
	}
	for h, apps := range got {
		if !slices.Equal(apps, []string{"day", "night"}) {
			t.Errorf("cost: %s runs %v, want day and night", h, apps)
		}
	}
	bf := run(StrategyBestFit)
	paired := 0
	for _, apps := range bf {
		if slices.Equal(apps, []string{"day", "night"}) {
			paired++
		}
	}
	if paired == len(bf) {
		t.Errorf("best-fit paired day with night as well (%v): the case shows nothing", bf)
	}
}

func TestDefaultStrategyFor(t *testing.T) {
	cpuOnly := []Host{{Name: "a", Capacity: Resources{DimCPU: 1000}}}
	if got := DefaultStrategyFor(cpuOnly); got != StrategyCost {
		t.Errorf("no GPUs: %s, want %s", got, StrategyCost)
	}
	mixed := append(cpuOnly, Host{Name: "g", GPUs: 8, GPUModel: "T4", Capacity: Resources{DimCPU: 1000}})
	if got := DefaultStrategyFor(mixed); got != StrategyFGDPack {
		t.Errorf("with GPUs: %s, want %s", got, StrategyFGDPack)
	}
	if got := DefaultStrategyFor(nil); got != StrategyCost {
		t.Errorf("no hosts: %s, want %s", got, StrategyCost)
	}
}
