package place

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

const curvePoints = 8

func randomCluster(r *rand.Rand) ([]Host, Profile) {
	models := []string{"A", "B", "C"}
	n := 3 + r.IntN(12)
	var hosts []Host
	for i := 0; i < n; i++ {
		h := Host{
			Name: fmt.Sprintf("h%02d", i),
			Labels: map[string]string{
				"zone": fmt.Sprintf("z%d", r.IntN(3)),
			},
			Capacity: Resources{DimCPU: int64(4000 + 1000*r.IntN(13)), DimMemory: int64(8+r.IntN(24)) << 30},
		}
		if r.IntN(2) == 0 {
			h.Labels["ssd"] = "yes"
		}
		if r.IntN(3) == 0 {
			h.Capacity["example.com/fpga"] = int64(r.IntN(3))
		}
		if r.IntN(4) != 0 {
			h.GPUs = []int{1, 2, 4, 8}[r.IntN(4)]
			h.GPUModel = models[r.IntN(len(models))]
		}
		hosts = append(hosts, h)
	}
	prof := Profile{CurvePoints: curvePoints}
	apps := []string{"a0", "a1", "a2", "a3"}
	for i := r.IntN(4); i > 0; i-- {
		prof.AntiAffinity = append(prof.AntiAffinity, AntiAffinity{App: apps[r.IntN(4)], Other: apps[r.IntN(4)], MaxOther: r.IntN(3)})
	}
	if r.IntN(2) == 0 {
		prof.Spreads = []Spread{{App: apps[r.IntN(4)], DomainLabel: "zone", MaxSkew: 1 + r.IntN(2)}}
	}
	if r.IntN(2) == 0 {
		prof.Quotas = []Quota{
			{Group: "g0", Limit: Resources{DimCPU: int64(5000 + r.IntN(20000))}, GPUMilli: int64(r.IntN(6000))},
			{Group: "g1", Limit: Resources{DimCPU: int64(5000 + r.IntN(20000))}, GPUMilli: -1},
		}
		prof.Lending = r.IntN(2) == 0
	}
	return hosts, prof
}

func randomRequest(r *rand.Rand, i int) Request {
	req := Request{
		ID:       fmt.Sprintf("r%03d", i),
		Priority: r.IntN(4),
		Demand:   Resources{DimCPU: int64(250 * (1 + r.IntN(16))), DimMemory: int64(1+r.IntN(8)) << 30},
		Seed:     r.Uint64(),
		Preempt:  r.IntN(3) == 0,
	}
	if r.IntN(3) != 0 {
		req.App = []string{"a0", "a1", "a2", "a3"}[r.IntN(4)]
	}
	if r.IntN(3) == 0 {
		req.Group = []string{"g0", "g1", "g2"}[r.IntN(3)]
	}
	switch r.IntN(4) {
	case 0:
		req.GPU.SharedMilli = int64(50 * (1 + r.IntN(19)))
	case 1:
		req.GPU.Count = 1 + r.IntN(4)
	}
	if r.IntN(4) == 0 {
		req.GPU.Models = []string{"A", "B"}[:1+r.IntN(2)]
	}
	if r.IntN(5) == 0 {
		req.Selector = map[string]string{"ssd": "yes"}
	}
	if r.IntN(6) == 0 {
		req.Demand["example.com/fpga"] = 1
	}
	if r.IntN(4) == 0 {
		pts := make([]int64, curvePoints)
		for t := range pts {
			pts[t] = int64(250 * r.IntN(12))
		}
		req.Curves = map[string][]int64{DimCPU: pts}
		delete(req.Demand, DimCPU)
	}
	return req
}

// TestPlacementsMatchBruteForce places random requests with every strategy
// and checks every decision against the brute-force oracle: the new state
// is valid in every dimension, curve point and rule; a request reported as
// fitting nowhere fits nowhere; victims were eligible.
func TestPlacementsMatchBruteForce(t *testing.T) {
	iterations := 120
	if testing.Short() {
		iterations = 20
	}
	for _, strat := range Strategies() {
		t.Run(string(strat), func(t *testing.T) {
			for it := 0; it < iterations; it++ {
				r := rand.New(rand.NewPCG(uint64(it), 7))
				hosts, prof := randomCluster(r)
				prof.Strategy = strat
				c, err := New(Snapshot{Hosts: hosts}, prof)
				if err != nil {
					t.Fatalf("iteration %d: new: %v", it, err)
				}
				o := &oracle{hosts: hosts, prof: prof}
				for i := 0; i < 40; i++ {
					if len(o.placed) > 0 && r.IntN(6) == 0 {
						victim := o.placed[r.IntN(len(o.placed))]
						if _, err := c.Remove(victim.ID); err != nil {
							t.Fatalf("iteration %d: remove %s: %v", it, victim.ID, err)
						}
						o.placed = slices.DeleteFunc(o.placed, func(p Placement) bool { return p.ID == victim.ID })
						continue
					}
					req := randomRequest(r, i)
					checkOne(t, fmt.Sprintf("iteration %d request %d", it, i), c, o, req)
				}
				got := c.Snapshot().Placements
				want := slices.Clone(o.placed)
				slices.SortFunc(want, func(a, b Placement) int {
					if a.ID < b.ID {
						return -1
					}
					return 1
				})
				if !reflect.DeepEqual(placementKeys(got), placementKeys(want)) {
					t.Fatalf("iteration %d: cluster holds %v, oracle %v", it, placementKeys(got), placementKeys(want))
				}
			}
		})
	}
}

func placementKeys(ps []Placement) []string {
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%s@%s%v b=%v", p.ID, p.Host, p.GPUIndices, p.Borrowed))
	}
	return out
}

func checkOne(t *testing.T, where string, c *Cluster, o *oracle, req Request) {
	t.Helper()
	fitHost, fits := o.fitsSomewhere(req)
	dec, err := c.Place(req)
	if err != nil {
		t.Fatalf("%s: place: %v", where, err)
	}
	if !dec.Placed {
		if fits {
			t.Fatalf("%s: reported unplaceable (%v) but fits on %s", where, dec.Rejections, fitHost)
		}
		return
	}
	if len(dec.Victims) == 0 && !fits {
		t.Fatalf("%s: placed on %s without victims, but the oracle finds no host", where, dec.Placement.Host)
	}
	if len(dec.Victims) > 0 {
		if fits {
			t.Fatalf("%s: evicted %d although the request fits on %s as is", where, len(dec.Victims), fitHost)
		}
		if !req.Preempt {
			t.Fatalf("%s: evicted without Preempt", where)
		}
		for _, v := range dec.Victims {
			if !(v.Priority < req.Priority || (v.Borrowed && !dec.Placement.Borrowed)) {
				t.Fatalf("%s: victim %s (priority %d, borrowed %v) not eligible for priority %d", where, v.ID, v.Priority, v.Borrowed, req.Priority)
			}
			if v.Host != dec.Placement.Host {
				t.Fatalf("%s: victim %s on %s, placement on %s", where, v.ID, v.Host, dec.Placement.Host)
			}
			o.placed = slices.DeleteFunc(o.placed, func(p Placement) bool { return p.ID == v.ID })
		}
	}
	h, _ := o.host(dec.Placement.Host)
	if !selectorOK(h, req.Selector) {
		t.Fatalf("%s: host %s breaks selector %v", where, h.Name, req.Selector)
	}
	if err := o.spreadOK(o.placed, dec.Placement); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	own, borrowed := o.quotaAllows(o.placed, req)
	if !own && !borrowed {
		t.Fatalf("%s: quota forbids the placement", where)
	}
	if dec.Placement.Borrowed != borrowed {
		t.Fatalf("%s: borrowed %v, oracle says %v", where, dec.Placement.Borrowed, borrowed)
	}
	all := append(slices.Clone(o.placed), dec.Placement)
	if err := o.valid(all); err != nil {
		t.Fatalf("%s: placement on %s%v breaks the cluster: %v", where, dec.Placement.Host, dec.Placement.GPUIndices, err)
	}
	o.placed = all
}

// TestDeterministic replays the same random sequence twice per strategy.
func TestDeterministic(t *testing.T) {
	for _, strat := range Strategies() {
		run := func() []string {
			r := rand.New(rand.NewPCG(99, 1))
			hosts, prof := randomCluster(r)
			prof.Strategy = strat
			prof.SampleFeasible = 3
			c, err := New(Snapshot{Hosts: hosts}, prof)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for i := 0; i < 60; i++ {
				dec, err := c.Place(randomRequest(r, i))
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, fmt.Sprintf("%v %s%v %v %v", dec.Placed, dec.Placement.Host, dec.Placement.GPUIndices, placementKeys(dec.Victims), dec.Rejections))
			}
			return out
		}
		if a, b := run(), run(); !reflect.DeepEqual(a, b) {
			t.Errorf("%s: two runs differ:\n%v\n%v", strat, a, b)
		}
	}
}
