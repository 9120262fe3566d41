package place

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

func host(name string, cpu int64, gpus int, model string, labels ...string) Host {
	h := Host{Name: name, Capacity: Resources{DimCPU: cpu, DimMemory: 64 << 30}, GPUs: gpus, GPUModel: model, Labels: map[string]string{}}
	for i := 0; i+1 < len(labels); i += 2 {
		h.Labels[labels[i]] = labels[i+1]
	}
	return h
}

func req(id, app string, cpu int64) Request {
	return Request{ID: id, App: app, Demand: Resources{DimCPU: cpu}}
}

func mustNew(t *testing.T, hosts []Host, prof Profile, existing ...Placement) *Cluster {
	t.Helper()
	c, err := New(Snapshot{Hosts: hosts, Placements: existing}, prof)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustPlace(t *testing.T, c *Cluster, r Request) Decision {
	t.Helper()
	d, err := c.Place(r)
	if err != nil {
		t.Fatalf("place %s: %v", r.ID, err)
	}
	return d
}

func TestAntiAffinity(t *testing.T) {
	hosts := []Host{host("h1", 16000, 0, ""), host("h2", 16000, 0, "")}
	cases := []struct {
		name     string
		rule     AntiAffinity
		existing []Placement
		req      Request
		wantHost string // "" = not placed
		reason   Reason
	}{
		{"never together: B avoids A", AntiAffinity{"a", "b", 0},
			[]Placement{{Request: req("a1", "a", 1000), Host: "h1"}}, req("b1", "b", 1000), "h2", "anti-affinity a/b"},
		{"never together: A avoids B", AntiAffinity{"a", "b", 0},
			[]Placement{{Request: req("b1", "b", 1000), Host: "h1"}}, req("a1", "a", 1000), "h2", "anti-affinity a/b"},
		{"at most one B next to A", AntiAffinity{"a", "b", 1},
			[]Placement{{Request: req("a1", "a", 1000), Host: "h1"}, {Request: req("b1", "b", 1000), Host: "h1"}, {Request: req("a2", "a", 1000), Host: "h2"}, {Request: req("b2", "b", 1000), Host: "h2"}},
			req("b3", "b", 1000), "", "anti-affinity a/b"},
		{"one B next to A is fine", AntiAffinity{"a", "b", 1},
			[]Placement{{Request: req("a1", "a", 1000), Host: "h1"}, {Request: req("a2", "a", 1000), Host: "h2"}},
			req("b1", "b", 1000), "h1", ""},
		{"A may not join two Bs when k=1", AntiAffinity{"a", "b", 1},
			[]Placement{{Request: req("b1", "b", 1000), Host: "h1"}, {Request: req("b2", "b", 1000), Host: "h1"}},
			req("a1", "a", 1000), "h2", "anti-affinity a/b"},
		{"self cap: at most two per host", AntiAffinity{"a", "a", 1},
			[]Placement{{Request: req("a1", "a", 1000), Host: "h1"}, {Request: req("a2", "a", 1000), Host: "h1"}},
			req("a3", "a", 1000), "h2", "anti-affinity a/a"},
		{"unrelated app ignores the rule", AntiAffinity{"a", "b", 0},
			[]Placement{{Request: req("a1", "a", 1000), Host: "h1"}, {Request: req("a2", "a", 1000), Host: "h2"}},
			req("c1", "c", 1000), "h1", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustNew(t, hosts, Profile{Strategy: StrategyStack, AntiAffinity: []AntiAffinity{tc.rule}, TiesByHostOrder: true}, tc.existing...)
			tc.req.Explain = true
			d := mustPlace(t, c, tc.req)
			if got := d.Placement.Host; (tc.wantHost == "") == d.Placed || (d.Placed && got != tc.wantHost) {
				t.Fatalf("placed %v on %q, want %q; rejections %v", d.Placed, got, tc.wantHost, d.Rejections)
			}
			if tc.reason != "" && !hasReason(d, tc.reason) {
				t.Fatalf("rejections %v lack %q", d.Rejections, tc.reason)
			}
		})
	}
}

func hasReason(d Decision, r Reason) bool {
	for _, rc := range d.Rejections {
		if rc.Reason == r {
			return true
		}
	}
	return false
}

func TestSpreadAcrossDomains(t *testing.T) {
	hosts := []Host{
		host("a1", 64000, 0, "", "rack", "a"), host("a2", 64000, 0, "", "rack", "a"),
		host("b1", 64000, 0, "", "rack", "b"), host("nolabel", 64000, 0, ""),
	}
	c := mustNew(t, hosts, Profile{Strategy: StrategyStack, Spreads: []Spread{{App: "web", DomainLabel: "rack", MaxSkew: 1}}, TiesByHostOrder: true})
	racks := map[string]int{}
	for i := 0; i < 6; i++ {
		d := mustPlace(t, c, Request{ID: fmt.Sprintf("w%d", i), App: "web", Demand: Resources{DimCPU: 1000}, Explain: true})
		if !d.Placed {
			t.Fatalf("w%d not placed: %v", i, d.Rejections)
		}
		if d.Placement.Host == "nolabel" {
			t.Fatalf("w%d landed on a host without the domain label", i)
		}
		racks[hosts[slices.IndexFunc(hosts, func(h Host) bool { return h.Name == d.Placement.Host })].Labels["rack"]]++
		if diff := racks["a"] - racks["b"]; diff > 1 || diff < -1 {
			t.Fatalf("after w%d racks %v are skewed by more than 1", i, racks)
		}
		// Stacking would put everything on a1; spread must override it.
		if i == 1 && !hasReason(d, "spread web by rack") {
			t.Fatalf("w1: rejections %v lack the spread reason", d.Rejections)
		}
	}
}

func TestSelectorAndGPUModel(t *testing.T) {
	hosts := []Host{host("t4", 32000, 4, "T4", "zone", "x"), host("v100", 32000, 4, "V100", "zone", "y"), host("cpu", 32000, 0, "", "zone", "x")}
	c := mustNew(t, hosts, Profile{})
	d := mustPlace(t, c, Request{ID: "g", Demand: Resources{DimCPU: 1000}, GPU: GPURequest{Count: 1, Models: []string{"V100", "A100"}}, Explain: true})
	if d.Placement.Host != "v100" {
		t.Fatalf("placed on %q, want v100", d.Placement.Host)
	}
	if !hasReason(d, reasonGPUModel) || !hasReason(d, reasonNoGPU) {
		t.Fatalf("rejections %v lack gpu model / no gpus", d.Rejections)
	}
	d = mustPlace(t, c, Request{ID: "s", Demand: Resources{DimCPU: 1000}, GPU: GPURequest{SharedMilli: 300}, Selector: map[string]string{"zone": "x"}, Explain: true})
	if d.Placement.Host != "t4" {
		t.Fatalf("placed on %q, want t4 (zone x with GPUs)", d.Placement.Host)
	}
	var detail string
	for _, v := range d.Hosts {
		if v.Host == "v100" {
			detail = v.Detail
		}
	}
	if !strings.Contains(detail, `label zone is "y", want "x"`) {
		t.Fatalf("v100 verdict detail %q does not explain the selector", detail)
	}
}

func TestGPUSharingChoosesDevice(t *testing.T) {
	hosts := []Host{host("h", 64000, 4, "T4")}
	// Devices: 0 free 1000, 1 holds 700 (300 free), 2 holds 500 (500 free), 3 free.
	existing := []Placement{
		{Request: Request{ID: "x", GPU: GPURequest{SharedMilli: 700}}, Host: "h", GPUIndices: []int{1}},
		{Request: Request{ID: "y", GPU: GPURequest{SharedMilli: 500}}, Host: "h", GPUIndices: []int{2}},
	}
	for _, strat := range []Strategy{StrategyBestFit, StrategyFGDPack} {
		c := mustNew(t, hosts, Profile{Strategy: strat, Shapes: []Shape{{GPU: GPURequest{Count: 1}, Weight: 1}, {GPU: GPURequest{SharedMilli: 500}, Weight: 1}}}, existing...)
		d := mustPlace(t, c, Request{ID: "z", GPU: GPURequest{SharedMilli: 300}})
		// The 300 share fits device 1 exactly: the whole devices stay whole
		// and device 2 keeps room for another half.
		if !slices.Equal(d.Placement.GPUIndices, []int{1}) {
			t.Errorf("%s: took devices %v, want [1]", strat, d.Placement.GPUIndices)
		}
		d = mustPlace(t, c, Request{ID: "w", GPU: GPURequest{Count: 2}})
		if !slices.Equal(d.Placement.GPUIndices, []int{0, 3}) {
			t.Errorf("%s: whole request took %v, want [0 3]", strat, d.Placement.GPUIndices)
		}
		d = mustPlace(t, c, Request{ID: "v", GPU: GPURequest{SharedMilli: 600}, Explain: true})
		if d.Placed || !hasReason(d, reasonGPUShare) {
			t.Errorf("%s: 600 milli placed=%v on %v, want rejection %q (largest free share 500): %v", strat, d.Placed, d.Placement.GPUIndices, reasonGPUShare, d.Rejections)
		}
	}
}

func TestTimeCurvesPackComplementaryApps(t *testing.T) {
	day := func(hi, lo int64) []int64 { // busy the first half of the day, idle the second
		pts := make([]int64, 8)
		for i := range pts {
			if i < 4 {
				pts[i] = hi
			} else {
				pts[i] = lo
			}
		}
		return pts
	}
	night := func(hi, lo int64) []int64 { p := day(lo, hi); return p }
	c := mustNew(t, []Host{host("h1", 10000, 0, ""), host("h2", 10000, 0, "")}, Profile{Strategy: StrategyStack, CurvePoints: 8, TiesByHostOrder: true})
	mustPlace(t, c, Request{ID: "web", Curves: map[string][]int64{DimCPU: day(8000, 1000)}})
	d := mustPlace(t, c, Request{ID: "batch", Curves: map[string][]int64{DimCPU: night(8000, 1000)}})
	if d.Placement.Host != "h1" {
		t.Fatalf("complementary curve went to %s, want h1 (peaks 8000+8000 but never together)", d.Placement.Host)
	}
	d = mustPlace(t, c, Request{ID: "web2", Curves: map[string][]int64{DimCPU: day(3000, 1000)}, Explain: true})
	if d.Placement.Host != "h2" {
		t.Fatalf("same-phase curve went to %s, want h2", d.Placement.Host)
	}
	if !hasReason(d, "insufficient cpu over the day") {
		t.Fatalf("rejections %v lack the curve reason", d.Rejections)
	}
	if !strings.HasPrefix(d.Hosts[0].Detail, "point 0: need 3000, free 1000") {
		t.Fatalf("h1 detail %q", d.Hosts[0].Detail)
	}
	// A flat request counts at every point: 1000 fits (peak 9000), 1500 not.
	if d := mustPlace(t, c, Request{ID: "flat", Demand: Resources{DimCPU: 1500}, Selector: map[string]string{}}); d.Placement.Host != "h2" {
		t.Fatalf("flat 1500 on %s, want h2", d.Placement.Host)
	}
	// Peaks per host: h1 9000 at every point, h2 3000+1500 by day.
	if u := c.Usage(); u.Allocated[DimCPU] != 9000+4500 {
		t.Fatalf("allocated peaks %d, want %d", u.Allocated[DimCPU], 9000+4500)
	}
	// Removing restores the host's curve.
	if _, err := c.Remove("batch"); err != nil {
		t.Fatal(err)
	}
	if u := c.Usage(); u.Allocated[DimCPU] != 8000+4500 {
		t.Fatalf("after remove: allocated %d", u.Allocated[DimCPU])
	}
}

func TestPreemptionFewestLowestVictims(t *testing.T) {
	hosts := []Host{host("h1", 8000, 0, ""), host("h2", 8000, 0, "")}
	p := func(id string, cpu int64, prio int, h string) Placement {
		return Placement{Request: Request{ID: id, Priority: prio, Demand: Resources{DimCPU: cpu}}, Host: h}
	}
	existing := []Placement{
		// h1: freeing 4000 takes two small low-priority victims...
		p("s1", 2000, 1, "h1"), p("s2", 2000, 1, "h1"), p("s3", 4000, 9, "h1"),
		// ...h2: one big victim of priority 2 suffices.
		p("big", 4000, 2, "h2"), p("keep", 4000, 9, "h2"),
	}
	c := mustNew(t, hosts, Profile{}, existing...)
	r := Request{ID: "hi", Priority: 5, Demand: Resources{DimCPU: 4000}}
	if d := mustPlace(t, c, r); d.Placed {
		t.Fatalf("placed without Preempt: %+v", d.Placement)
	}
	r.Preempt = true
	d := mustPlace(t, c, r)
	if !d.Placed || d.Placement.Host != "h2" || len(d.Victims) != 1 || d.Victims[0].ID != "big" {
		t.Fatalf("placed %v on %s evicting %v; want h2 evicting [big]", d.Placed, d.Placement.Host, placementKeys(d.Victims))
	}
	if _, err := c.Remove("big"); !errors.Is(err, ErrUnknownPlacement) {
		t.Fatalf("victim still placed: %v", err)
	}
	// Equal counts: the lower-priority victim goes.
	c = mustNew(t, hosts, Profile{}, p("p3", 8000, 3, "h1"), p("p1", 8000, 1, "h2"))
	d = mustPlace(t, c, Request{ID: "x", Priority: 5, Preempt: true, Demand: Resources{DimCPU: 8000}})
	if len(d.Victims) != 1 || d.Victims[0].ID != "p1" {
		t.Fatalf("victims %v, want [p1]", placementKeys(d.Victims))
	}
	// Nothing of lower priority: no preemption.
	d = mustPlace(t, c, Request{ID: "y", Priority: 3, Preempt: true, Demand: Resources{DimCPU: 8000}})
	if d.Placed || !hasReason(d, reasonPreempted) {
		t.Fatalf("priority 3 evicted %v", placementKeys(d.Victims))
	}
	// Try reports without changing anything.
	before := c.Snapshot()
	if d, _ := c.Try(Request{ID: "z", Priority: 9, Preempt: true, Demand: Resources{DimCPU: 8000}}); !d.Placed || len(d.Victims) != 1 {
		t.Fatalf("try: %+v", d)
	}
	if after := c.Snapshot(); !slices.Equal(placementKeys(before.Placements), placementKeys(after.Placements)) {
		t.Fatalf("try changed the cluster: %v -> %v", placementKeys(before.Placements), placementKeys(after.Placements))
	}
}

func TestQuotasAndLending(t *testing.T) {
	hosts := []Host{host("h", 100000, 0, "")}
	quotas := []Quota{
		{Group: "a", Limit: Resources{DimCPU: 4000}, GPUMilli: -1},
		{Group: "b", Limit: Resources{DimCPU: 4000}, GPUMilli: -1},
	}
	g := func(id, group string, cpu int64, prio int) Request {
		return Request{ID: id, Group: group, Priority: prio, Demand: Resources{DimCPU: cpu}}
	}
	// Without lending the quota is a wall.
	c := mustNew(t, hosts, Profile{Quotas: quotas})
	mustPlace(t, c, g("a1", "a", 3000, 0))
	if d := mustPlace(t, c, g("a2", "a", 2000, 0)); d.Placed || !hasReason(d, "quota a cpu") {
		t.Fatalf("over quota placed=%v rejections %v", d.Placed, d.Rejections)
	}
	// With lending, a borrows b's unused 4000 but no more.
	c = mustNew(t, hosts, Profile{Quotas: quotas, Lending: true})
	mustPlace(t, c, g("a1", "a", 3000, 0))
	d := mustPlace(t, c, g("a2", "a", 2000, 0))
	if !d.Placed || !d.Placement.Borrowed {
		t.Fatalf("borrowing: placed=%v borrowed=%v", d.Placed, d.Placement.Borrowed)
	}
	mustPlace(t, c, g("a3", "a", 3000, 0)) // a runs 8000: 4000 over, b leaves 4000
	if d := mustPlace(t, c, g("a4", "a", 1000, 0)); d.Placed {
		t.Fatal("borrowed beyond what b leaves unused")
	}
	// b reclaims: b's own request fits its quota, and borrowed placements
	// are evicted first even at higher priority. Cap the host so it must.
	c = mustNew(t, []Host{host("h", 8000, 0, "")}, Profile{Quotas: quotas, Lending: true})
	mustPlace(t, c, g("a1", "a", 4000, 0))
	if d := mustPlace(t, c, g("a2", "a", 4000, 9)); !d.Placement.Borrowed {
		t.Fatal("a2 should borrow")
	}
	d = mustPlace(t, c, Request{ID: "b1", Group: "b", Priority: 1, Preempt: true, Demand: Resources{DimCPU: 4000}})
	if !d.Placed || len(d.Victims) != 1 || d.Victims[0].ID != "a2" {
		t.Fatalf("reclaim evicted %v (placed %v), want [a2] (borrowed, though priority 9)", placementKeys(d.Victims), d.Placed)
	}
}

func TestExplanations(t *testing.T) {
	hosts := []Host{host("small", 1000, 0, ""), host("big1", 8000, 0, ""), host("big2", 8000, 0, ""), host("tiny", 500, 0, "")}
	c := mustNew(t, hosts, Profile{Strategy: StrategyBestFit})
	d := mustPlace(t, c, Request{ID: "r", Demand: Resources{DimCPU: 2000}, Explain: true})
	if d.Feasible != 2 || d.Considered != 4 {
		t.Fatalf("feasible %d considered %d", d.Feasible, d.Considered)
	}
	if len(d.Rejections) != 1 || d.Rejections[0] != (ReasonCount{Reason: "insufficient cpu", Hosts: 2}) {
		t.Fatalf("rejections %v", d.Rejections)
	}
	if len(d.Hosts) != 4 || d.Hosts[0].Detail != "need 2000, free 1000" || d.Hosts[3].Detail != "need 2000, free 500" {
		t.Fatalf("verdicts %+v", d.Hosts)
	}
	if !d.Hosts[1].Feasible || len(d.Hosts[1].Score.Parts) == 0 || d.Score.Total != d.Hosts[1].Score.Total {
		t.Fatalf("chosen host's score %+v vs verdict %+v", d.Score, d.Hosts[1])
	}
	// Without Explain no per-host detail is built.
	d = mustPlace(t, c, Request{ID: "r2", Demand: Resources{DimCPU: 2000}})
	if d.Hosts != nil {
		t.Fatal("verdicts without Explain")
	}
}

func TestBadInput(t *testing.T) {
	hosts := []Host{host("h", 8000, 2, "T4")}
	bad := []struct {
		snap Snapshot
		prof Profile
		want string
	}{
		{Snapshot{Hosts: []Host{hosts[0], hosts[0]}}, Profile{}, `host "h": duplicate name`},
		{Snapshot{Hosts: []Host{{Name: "x", Capacity: Resources{DimCPU: -1}}}}, Profile{}, "capacity cpu: negative amount -1"},
		{Snapshot{Hosts: []Host{{Name: "x", GPUs: 2}}}, Profile{}, "gpu model: empty for 2 GPUs"},
		{Snapshot{Hosts: hosts, Placements: []Placement{{Request: req("p", "", 9000), Host: "h"}}}, Profile{}, "overflows the host: insufficient cpu (need 9000, free 8000)"},
		{Snapshot{Hosts: hosts, Placements: []Placement{{Request: req("p", "", 1), Host: "nope"}}}, Profile{}, `unknown host "nope"`},
		{Snapshot{Hosts: hosts, Placements: []Placement{{Request: Request{ID: "p", GPU: GPURequest{SharedMilli: 500}}, Host: "h", GPUIndices: []int{5}}}}, Profile{}, "gpu indices: 5 out of range"},
		{Snapshot{Hosts: hosts}, Profile{Spreads: []Spread{{App: "a", DomainLabel: "r"}}}, "max skew 0 must be at least 1"},
		{Snapshot{Hosts: hosts}, Profile{Strategy: "magic"}, `unknown placement strategy "magic"`},
	}
	for _, b := range bad {
		if _, err := New(b.snap, b.prof); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("New: error %v, want it to contain %q", err, b.want)
		}
	}
	c := mustNew(t, hosts, Profile{CurvePoints: 4})
	mustPlace(t, c, req("dup", "", 1))
	reqs := []struct {
		r    Request
		want string
	}{
		{req("dup", "", 1), `request "dup": id: already placed`},
		{Request{ID: "n", Demand: Resources{DimCPU: -5}}, "demand cpu: negative amount -5"},
		{Request{ID: "g", GPU: GPURequest{SharedMilli: 1000}}, "gpu shared milli: 1000 outside 0..999"},
		{Request{ID: "g2", GPU: GPURequest{Count: 1, SharedMilli: 5}}, "are exclusive"},
		{Request{ID: "c", Curves: map[string][]int64{DimCPU: {1, 2}}}, "curve cpu: 2 points, the profile wants 4"},
		{Request{ID: "c2", Demand: Resources{DimCPU: 3}, Curves: map[string][]int64{DimCPU: {1, 2, 1, 1}}}, "differs from its curve's peak 2"},
	}
	for _, r := range reqs {
		before := placementKeys(c.Snapshot().Placements)
		if _, err := c.Place(r.r); err == nil || !strings.Contains(err.Error(), r.want) {
			t.Errorf("place %s: error %v, want %q", r.r.ID, err, r.want)
		}
		if after := placementKeys(c.Snapshot().Placements); !slices.Equal(before, after) {
			t.Errorf("a rejected request changed the cluster")
		}
	}
	// A resource no host offers is not malformed: it fits nowhere.
	d := mustPlace(t, c, Request{ID: "fpga", Demand: Resources{"example.com/fpga": 1}})
	if d.Placed || !hasReason(d, "insufficient example.com/fpga") {
		t.Fatalf("unknown resource: %+v", d)
	}
}

// TestFragReachStrandsGPUs checks fgd-pack's measure of fragmentation: a
// GPU the expected shape could take on its own counts as fragmented when
// the host's CPU cannot carry enough instances of the shape to reach it.
// FGD's measure (one instance fits, so nothing is fragmented) sees two
// equal hosts; fgd-pack sends the CPU-heavy pod to the CPU-rich host.
func TestFragReachStrandsGPUs(t *testing.T) {
	// Both hosts have 4 idle GPUs. Shape: 1 GPU with 8 cores. On "tight"
	// a 24-core pod leaves 16 cores (2 instances) for 3 GPUs: one GPU's
	// worth is out of reach. On "roomy" all 3 stay reachable.
	hosts := []Host{host("tight", 40000, 4, "T4"), host("roomy", 200000, 4, "T4")}
	shapes := []Shape{{Demand: Resources{DimCPU: 8000}, GPU: GPURequest{Count: 1}, Weight: 1}}
	pod := Request{ID: "p", Demand: Resources{DimCPU: 24000}, GPU: GPURequest{Count: 1}, Explain: true}
	after := func(d Decision, host string) float64 {
		for _, v := range d.Hosts {
			if v.Host != host {
				continue
			}
			for _, p := range v.Score.Parts {
				if p.Name == "fragmentation after (milli-gpu)" {
					return p.Value
				}
			}
		}
		t.Fatalf("no fragmentation score for %s in %+v", host, d.Hosts)
		return 0
	}
	for _, tc := range []struct {
		strat               Strategy
		host                string
		tightAfter, roomyAf float64
	}{
		// FGD ties (both growths 0) and takes the first host.
		{StrategyFGD, "tight", 0, 0},
		// 16 cores carry 2 of the 3 instances the GPUs could take: 1000
		// milli out of reach.
		{StrategyFGDPack, "roomy", 1000, 0},
	} {
		c := mustNew(t, hosts, Profile{Strategy: tc.strat, Shapes: shapes, ScoreDims: []string{DimCPU}, TiesByHostOrder: true})
		d := mustPlace(t, c, pod)
		if d.Placement.Host != tc.host {
			t.Errorf("%s: placed on %s, want %s", tc.strat, d.Placement.Host, tc.host)
		}
		if got := after(d, "tight"); math.Abs(got-tc.tightAfter) > 1e-6 {
			t.Errorf("%s: fragmentation after on tight %.3f, want %.3f", tc.strat, got, tc.tightAfter)
		}
		if got := after(d, "roomy"); math.Abs(got-tc.roomyAf) > 1e-6 {
			t.Errorf("%s: fragmentation after on roomy %.3f, want %.3f", tc.strat, got, tc.roomyAf)
		}
	}
	// The cluster-wide fragmentation report stays FGD's measure whatever
	// the strategy, so replays of the paper compare like with like.
	c := mustNew(t, hosts, Profile{Strategy: StrategyFGDPack, Shapes: shapes, ScoreDims: []string{DimCPU}},
		Placement{Request: Request{ID: "x", Demand: Resources{DimCPU: 24000}, GPU: GPURequest{Count: 1}}, Host: "tight", GPUIndices: []int{0}})
	if f := c.Usage().GPUMilliFragmented; f != 0 {
		t.Errorf("usage: fragmented %.3f, want 0 under FGD's measure", f)
	}
}

// TestExplainNamesRuleAndSpreadNumbers checks the reason and the numbers
// given for each kind of anti-affinity rejection and for spread, and that
// the spread's least-loaded count follows placements and removals.
func TestExplainNamesRuleAndSpreadNumbers(t *testing.T) {
	hosts := []Host{
		host("h1", 64000, 0, "", "rack", "a"),
		host("h2", 64000, 0, "", "rack", "a"),
		host("h3", 64000, 0, "", "rack", "b"),
		host("h4", 64000, 0, ""),
		host("h5", 64000, 0, "", "rack", "a"),
		host("h6", 64000, 0, "", "rack", "b"),
	}
	prof := Profile{
		Strategy: StrategyBestFit,
		AntiAffinity: []AntiAffinity{
			{App: "web", Other: "web", MaxOther: 0},
			{App: "web", Other: "batch", MaxOther: 0},
		},
		Spreads: []Spread{{App: "web", DomainLabel: "rack", MaxSkew: 1}},
	}
	c := mustNew(t, hosts, prof,
		Placement{Request: req("web-1", "web", 1000), Host: "h1"},
		Placement{Request: req("batch-1", "batch", 1000), Host: "h2"})
	verdicts := func(d Decision) map[string]HostVerdict {
		m := map[string]HostVerdict{}
		for _, v := range d.Hosts {
			m[v.Host] = v
		}
		return m
	}
	check := func(v HostVerdict, reason Reason, detail string) {
		t.Helper()
		if v.Feasible || v.Reason != reason || v.Detail != detail {
			t.Errorf("%s: got %q / %q, want %q / %q", v.Host, v.Reason, v.Detail, reason, detail)
		}
	}

	r := req("web-2", "web", 1000)
	r.Explain = true
	d := mustPlace(t, c, r)
	webB := d.Placement.Host // the rack-b host web-2 took
	if webB != "h3" && webB != "h6" {
		t.Fatalf("web-2 on %q, want a rack-b host (the only ones breaking nothing)", webB)
	}
	emptyB := map[string]string{"h3": "h6", "h6": "h3"}[webB]
	v := verdicts(d)
	check(v["h1"], "anti-affinity web/web", "host runs 1 of web, cap 1")
	check(v["h2"], "anti-affinity web/batch", "host runs 1 of batch, at most 0 may run next to web")
	check(v["h4"], "spread web: no rack label", "")
	check(v["h5"], "spread web by rack", "rack=a would hold 2, least loaded domain 0, max skew 1")

	r = req("batch-2", "batch", 1000)
	r.Selector = map[string]string{"rack": "a"}
	r.Explain = true
	v = verdicts(mustPlace(t, c, r))
	check(v["h1"], "anti-affinity web/batch", "host runs web and 0 of batch, at most 0 allowed")

	// Racks now hold a=1, b=1. Removing web-1 drops the least count to 0,
	// so rack b (1 instance) cannot take another but rack a can.
	if _, err := c.Remove("web-1"); err != nil {
		t.Fatal(err)
	}
	r = req("web-3", "web", 1000)
	r.Explain = true
	d = mustPlace(t, c, r)
	v = verdicts(d)
	check(v[webB], "anti-affinity web/web", "host runs 1 of web, cap 1")
	check(v[emptyB], "spread web by rack", "rack=b would hold 2, least loaded domain 0, max skew 1")
	if d.Placement.Host != "h1" && d.Placement.Host != "h5" {
		t.Fatalf("web-3 on %q, want a rack-a host", d.Placement.Host)
	}
}
