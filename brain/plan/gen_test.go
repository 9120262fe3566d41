package plan_test

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/sluicehq/sluice/brain/place"
	"github.com/sluicehq/sluice/brain/plan"
)

// genConfig shapes a random cluster for property tests.
type genConfig struct {
	seed                   uint64
	small, big, apps, ctrs int
	points                 int
	rules                  bool
}

// gen builds a random cluster of two host shapes, apps with day, night
// and flat curves, anti-affinity and spread rules, and places every
// container first-fit in a seeded host order as the existing state.
func gen(cfg genConfig) plan.Input {
	rng := rand.New(rand.NewPCG(cfg.seed, 7))
	in := plan.Input{Cost: map[string]float64{}, Profile: place.Profile{CurvePoints: cfg.points}}
	for i := range cfg.small + cfg.big {
		h := place.Host{
			Name:     fmt.Sprintf("h%d", i),
			Labels:   map[string]string{"rack": fmt.Sprintf("r%d", i%4)},
			Capacity: place.Resources{place.DimCPU: 32000, place.DimMemory: 128 << 30},
		}
		if i >= cfg.small {
			h.Capacity = place.Resources{place.DimCPU: 64000, place.DimMemory: 256 << 30}
			in.Cost[h.Name] = 1.8
		}
		in.Hosts = append(in.Hosts, h)
	}
	type app struct {
		name string
		cpu  []int64
		mem  int64
	}
	apps := make([]app, cfg.apps)
	for i := range apps {
		a := app{name: fmt.Sprintf("app%d", i), mem: int64(1+rng.IntN(16)) << 30}
		peak := float64(1000 * (1 + rng.IntN(8)))
		phase := rng.Float64() * 2 * math.Pi
		flat := rng.IntN(3) == 0
		for t := range cfg.points {
			f := 1.0
			if !flat {
				f = 0.55 + 0.45*math.Sin(2*math.Pi*float64(t)/float64(cfg.points)+phase)
			}
			a.cpu = append(a.cpu, int64(math.Round(f*peak)))
		}
		apps[i] = a
		if cfg.rules {
			switch rng.IntN(4) {
			case 0:
				in.Profile.AntiAffinity = append(in.Profile.AntiAffinity, place.AntiAffinity{App: a.name, Other: a.name, MaxOther: rng.IntN(2)})
			case 1:
				if i > 0 {
					in.Profile.AntiAffinity = append(in.Profile.AntiAffinity, place.AntiAffinity{App: a.name, Other: apps[rng.IntN(i)].name, MaxOther: rng.IntN(2)})
				}
			case 2:
				in.Profile.Spreads = append(in.Profile.Spreads, place.Spread{App: a.name, DomainLabel: "rack", MaxSkew: 2})
			}
		}
	}
	for i := range cfg.ctrs {
		a := apps[rng.IntN(len(apps))]
		in.Containers = append(in.Containers, place.Request{
			ID:     fmt.Sprintf("%s-c%d", a.name, i),
			App:    a.name,
			Demand: place.Resources{place.DimMemory: a.mem},
			Curves: map[string][]int64{place.DimCPU: a.cpu},
		})
	}
	// The existing state: place's first fit in a seeded host order, which
	// keeps every rule.
	order := rng.Perm(len(in.Hosts))
	snap := place.Snapshot{}
	for _, i := range order {
		snap.Hosts = append(snap.Hosts, in.Hosts[i])
	}
	prof := in.Profile
	prof.Strategy = place.StrategySpread
	c, err := place.New(snap, prof)
	if err != nil {
		panic(err)
	}
	in.Existing = make([]string, len(in.Containers))
	for i, r := range in.Containers {
		r.Seed = uint64(i + 1)
		d, err := c.Place(r)
		if err != nil {
			panic(err)
		}
		if d.Placed {
			in.Existing[i] = d.Placement.Host
		}
	}
	return in
}
