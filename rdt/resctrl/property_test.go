package resctrl_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/rdt"
	"github.com/sluicehq/sluice/rdt/resctrl"
	"github.com/sluicehq/sluice/rdt/resctrltest"
)

// TestKernelAcceptsEveryPlan drives Decide with random valid policies and
// random latency and counters on every hardware variant, applying each
// plan to the fake kernel: the kernel must never reject a schemata write,
// the groups must read back exactly what was planned, and online and
// offline ways must never overlap when the policy leaves them apart.
func TestKernelAcceptsEveryPlan(t *testing.T) {
	variants := resctrltest.Variants()
	names := make([]string, 0, len(variants))
	for n := range variants {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		hw := variants[name]
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(len(name))))
			valid := 0
			for trial := range 100 {
				pol := randomPolicy(rng)
				if pol.Validate(hw) != nil {
					continue
				}
				valid++
				f := resctrltest.New(hw)
				e, err := resctrl.New(resctrl.Config{FS: f, Hardware: hw, Tasks: cgroupTasks{}, Log: slog.New(slog.DiscardHandler)})
				if err != nil {
					t.Fatal(err)
				}
				var st rdt.State
				now := time.Unix(0, 0)
				for step := range 60 {
					now = now.Add(time.Duration(rng.IntN(2000)) * time.Millisecond)
					in := rdt.Signals{Now: now, OnlineLatencyP99: time.Duration(rng.IntN(8)) * time.Millisecond, Domains: randomCounters(rng, hw)}
					var plan rdt.Plan
					plan, st = rdt.Decide(in, pol, hw, st)
					for _, r := range e.Apply(context.Background(), plan) {
						if r.Status == qos.ResultFailed {
							t.Fatalf("trial %d step %d: policy %+v: %s", trial, step, pol, r.Err)
						}
					}
					for _, g := range plan.Groups {
						got, err := rdt.ParseSchemata(f.Schemata(g.Group))
						if err != nil {
							t.Fatal(err)
						}
						if d := g.Schemata.Diff(got); !d.Empty() {
							t.Fatalf("trial %d step %d: group %s holds %q, planned %q", trial, step, g.Group, got, g.Schemata)
						}
					}
					on, _ := rdt.ParseSchemata(f.Schemata(rdt.GroupOnline))
					off, _ := rdt.ParseSchemata(f.Schemata(rdt.GroupOffline))
					l3, _ := hw.L3()
					for _, d := range l3.Domains {
						a, _ := on.Get(l3.Name, d)
						b, _ := off.Get(l3.Name, d)
						if a&b != 0 {
							t.Fatalf("trial %d step %d: domain %d online %x overlaps offline %x", trial, step, d, a, b)
						}
					}
				}
			}
			if valid < 20 {
				t.Errorf("only %d of 100 random policies were valid on %s: the test checks too little", valid, name)
			}
		})
	}
}

// randomPolicy draws policies that are mostly valid (floors below
// ceilings, online's reservation beside offline's ceiling) in counts or
// shares; Validate rejects the rest.
func randomPolicy(rng *rand.Rand) rdt.Policy {
	between := func(lo, hi float64) float64 { return lo + rng.Float64()*(hi-lo) }
	p := rdt.DefaultPolicy()
	p.OnlineLatencyTarget = time.Duration(rng.IntN(4)) * time.Millisecond
	if rng.IntN(2) == 0 {
		ceil := 1 + rng.IntN(6)
		p.Offline.WaysCeiling = rdt.Ways{Count: ceil}
		p.Offline.WaysFloor = rdt.Ways{Count: 1 + rng.IntN(ceil)}
		p.Online.WaysFloor = rdt.Ways{Count: 1 + rng.IntN(5)}
	} else {
		ceil := between(0.1, 0.7)
		p.Offline.WaysCeiling = rdt.Ways{Share: ceil}
		p.Offline.WaysFloor = rdt.Ways{Share: between(0.05, ceil)}
		p.Online.WaysFloor = rdt.Ways{Share: between(0.05, 1-ceil)}
	}
	p.Offline.MBFloor = between(0.1, 1)
	p.Offline.MBCeiling = between(p.Offline.MBFloor, 1)
	p.Online.MBCeiling = between(0.1, 1)
	p.Online.MBFloor = p.Online.MBCeiling
	p.Ramp.Ways = 1 + rng.IntN(3)
	p.Ramp.MB = between(0.01, 0.5)
	p.Ramp.Hold = time.Duration(rng.IntN(3)) * time.Second
	return p
}

func randomCounters(rng *rand.Rand, hw rdt.Hardware) map[int]map[string]rdt.Counters {
	l3, ok := hw.L3()
	if !ok || rng.IntN(4) == 0 {
		return nil
	}
	out := map[int]map[string]rdt.Counters{}
	for _, d := range l3.Domains {
		out[d] = map[string]rdt.Counters{
			rdt.GroupOnline:  {OccupancyBytes: uint64(rng.IntN(1 << 25)), TotalBytesPerSec: rng.Float64() * 1e10},
			rdt.GroupOffline: {OccupancyBytes: uint64(rng.IntN(1 << 25)), TotalBytesPerSec: rng.Float64() * 1e10},
		}
	}
	return out
}
