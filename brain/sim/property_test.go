package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/brain/place"
)

// randomWorkload is a small cluster with every kind of rule: racks,
// zones, GPUs of two models, anti-affinity, per-host caps, spreads, quotas
// with lending, curves, selectors and priorities with preemption.
func randomWorkload(seed uint64) *Workload {
	rng := rand.New(rand.NewPCG(seed, 77))
	w := &Workload{Name: fmt.Sprintf("random-%d", seed)}
	w.Profile.CurvePoints = 4
	w.Profile.Lending = rng.IntN(2) == 0
	for i := range 6 + rng.IntN(10) {
		h := place.Host{
			Name:     fmt.Sprintf("h%d", i),
			Labels:   map[string]string{"rack": fmt.Sprintf("r%d", i%3), "zone": []string{"a", "b"}[i%2]},
			Capacity: place.Resources{place.DimCPU: int64(8+rng.IntN(4)*8) * 1000, place.DimMemory: int64(16+rng.IntN(4)*16) << 30},
		}
		if rng.IntN(3) == 0 {
			h.GPUs = 1 + rng.IntN(4)
			h.GPUModel = []string{"T4", "V100"}[rng.IntN(2)]
		}
		w.Snapshot.Hosts = append(w.Snapshot.Hosts, h)
	}
	apps := []string{"web", "db", "cache", "batch", "infer"}
	w.Profile.AntiAffinity = []place.AntiAffinity{{App: "web", Other: "db", MaxOther: 0}, {App: "cache", Other: "cache", MaxOther: rng.IntN(2)}}
	w.Profile.Spreads = []place.Spread{{App: "web", DomainLabel: "rack", MaxSkew: 1 + rng.IntN(2)}}
	w.Profile.Quotas = []place.Quota{
		{Group: "online", Limit: place.Resources{place.DimCPU: int64(40+rng.IntN(40)) * 1000}, GPUMilli: -1},
		{Group: "offline", Limit: place.Resources{place.DimCPU: int64(10+rng.IntN(20)) * 1000}, GPUMilli: 2000},
	}
	for i := range 40 + rng.IntN(60) {
		app := apps[rng.IntN(len(apps))]
		r := place.Request{
			ID:       fmt.Sprintf("%s-%d", app, i),
			App:      app,
			Group:    "online",
			Priority: 100,
			Demand:   place.Resources{place.DimCPU: int64(1+rng.IntN(4)) * 1000, place.DimMemory: int64(1+rng.IntN(8)) << 30},
		}
		switch app {
		case "batch":
			r.Group, r.Priority, r.Preempt = "offline", rng.IntN(10), false
			if rng.IntN(2) == 0 {
				r.Selector = map[string]string{"zone": "b"}
			}
		case "infer":
			r.Group = "offline"
			if rng.IntN(2) == 0 {
				r.GPU = place.GPURequest{SharedMilli: int64(100 + rng.IntN(800))}
			} else {
				r.GPU = place.GPURequest{Count: 1 + rng.IntN(2), Models: []string{"T4"}}
			}
		case "web":
			peak := r.Demand[place.DimCPU]
			r.Curves = map[string][]int64{place.DimCPU: {peak / 4, peak, peak / 2, peak / 4}}
			r.Preempt = true
		case "db":
			r.Preempt = true
		}
		w.Requests = append(w.Requests, r)
	}
	return w
}

// Whatever the strategy and seed, the end state must satisfy every rule
// the independent validator knows, and the simulator's own totals must
// agree with the placement core's.
func TestRandomWorkloadsHaveNoViolations(t *testing.T) {
	evicted, failed, borrowed := 0, 0, 0
	for seed := range uint64(30) {
		w := randomWorkload(seed)
		for _, s := range place.Strategies() {
			run, err := Replay(context.Background(), w, s, seed, Options{})
			if err != nil {
				t.Fatalf("seed %d %s: %v", seed, s, err)
			}
			if len(run.Violations) > 0 {
				var lines []string
				for _, v := range run.Violations {
					lines = append(lines, v.String())
				}
				t.Errorf("seed %d %s: %d violations:\n%s", seed, s, len(lines), strings.Join(lines, "\n"))
			}
			evicted += run.Evicted
			failed += run.Failed
			for _, p := range run.Final.Placements {
				if p.Borrowed {
					borrowed++
				}
			}
			if run.Placed+run.Failed != len(w.Requests) {
				t.Errorf("seed %d %s: placed %d + failed %d != %d", seed, s, run.Placed, run.Failed, len(w.Requests))
			}
		}
	}
	// The workloads must exercise the rules, not just fit.
	if evicted == 0 || failed == 0 || borrowed == 0 {
		t.Errorf("workloads too easy: %d evicted, %d failed, %d borrowed", evicted, failed, borrowed)
	}
	t.Logf("%d evicted, %d failed, %d borrowed", evicted, failed, borrowed)
}
