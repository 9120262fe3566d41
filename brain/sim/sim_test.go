package sim

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/brain/place"
	"github.com/sluicehq/sluice/brain/trace"
)

func host(name string, cpu, mem int64, labels map[string]string) place.Host {
	return place.Host{Name: name, Labels: labels, Capacity: place.Resources{place.DimCPU: cpu, place.DimMemory: mem}}
}

func req(id, app string, cpu, mem int64) place.Request {
	return place.Request{ID: id, App: app, Demand: place.Resources{place.DimCPU: cpu, place.DimMemory: mem}}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// Two hosts of 4 CPUs; three 3-CPU requests (the third fits nowhere) and a
// 1-CPU one. Every number below is worked out by hand in the comments.
func TestReplayNumbersByHand(t *testing.T) {
	w := &Workload{
		Name:     "hand",
		Snapshot: place.Snapshot{Hosts: []place.Host{host("h1", 4000, 8, nil), host("h2", 4000, 8, nil)}},
		Requests: []place.Request{req("a", "x", 3000, 2), req("b", "x", 3000, 2), req("c", "x", 3000, 2), req("d", "y", 1000, 1)},
	}
	for _, s := range place.Strategies() {
		run, err := Replay(context.Background(), w, s, 1, Options{CurveSamples: 4})
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if run.Placed != 3 || run.Failed != 1 || run.HostsUsed != 2 {
			t.Fatalf("%s: placed %d failed %d hosts used %d, want 3, 1, 2", s, run.Placed, run.Failed, run.HostsUsed)
		}
		// cpu: 3000+3000+1000 of 8000; memory 2+2+1 of 16.
		if !near(run.Allocation[place.DimCPU], 0.875) || !near(run.Allocation[place.DimMemory], 5.0/16) {
			t.Errorf("%s: allocation %v, want cpu 0.875 memory 0.3125", s, run.Allocation)
		}
		// Mix: (3000,2) x3 and (1000,1) x1. The host with a and d is full
		// (free cpu 0, memory 5, neither shape fits: weight 1); the other
		// has free cpu 1000, memory 6 and only the small shape fits
		// (weight 3/4). cpu: 1000*0.75/1000; memory: (5*1+6*0.75)/11.
		if !near(run.Fragmentation[place.DimCPU], 0.75) || !near(run.Fragmentation[place.DimMemory], 9.5/11) {
			t.Errorf("%s: fragmentation %v, want cpu 0.75 memory %v", s, run.Fragmentation, 9.5/11)
		}
		if len(run.FailureReasons) != 1 || run.FailureReasons[0].Requests != 1 || !strings.Contains(run.FailureReasons[0].Reason, "cpu") {
			t.Errorf("%s: failure reasons %+v, want one cpu shortage", s, run.FailureReasons)
		}
		if want := []ReasonTally{{Reason: "insufficient cpu", Requests: 1, Hosts: 2}}; !reflect.DeepEqual(run.FailureRules, want) {
			t.Errorf("%s: failure rules %+v, want %+v", s, run.FailureRules, want)
		}
		if len(run.Violations) != 0 {
			t.Errorf("%s: violations %v", s, run.Violations)
		}
		// Curve: after all four, 10000 of 8000 cpu arrived, 7000 placed.
		last := run.Curve[len(run.Curve)-1]
		if last.Requests != 4 || !near(last.Arrived[place.DimCPU], 1.25) || !near(last.Allocated[place.DimCPU], 0.875) {
			t.Errorf("%s: last curve point %+v", s, last)
		}
		if first := run.Curve[0]; first.Requests != 0 || first.Allocated[place.DimCPU] != 0 {
			t.Errorf("%s: first curve point %+v", s, first)
		}
		if len(run.Decisions) != 4 || run.Decisions[2].Placed || run.Decisions[2].Reason == "" {
			t.Errorf("%s: decisions %+v", s, run.Decisions)
		}
	}
}

func TestValidateFindsEveryKind(t *testing.T) {
	snap := place.Snapshot{
		Hosts: []place.Host{
			{Name: "h1", Labels: map[string]string{"rack": "r1"}, Capacity: place.Resources{place.DimCPU: 4000}, GPUs: 1, GPUModel: "T4"},
			{Name: "h2", Labels: map[string]string{"rack": "r2"}, Capacity: place.Resources{place.DimCPU: 4000}},
		},
		Placements: []place.Placement{
			{Request: place.Request{ID: "a", App: "web", Demand: place.Resources{place.DimCPU: 3000}}, Host: "h1"},
			{Request: place.Request{ID: "b", App: "web", Demand: place.Resources{place.DimCPU: 2000}, Group: "g"}, Host: "h1"},
			{Request: place.Request{ID: "c", App: "db", Demand: place.Resources{place.DimCPU: 500}, Selector: map[string]string{"rack": "r2"},
				GPU: place.GPURequest{SharedMilli: 600, Models: []string{"V100"}}}, Host: "h1", GPUIndices: []int{0}},
			{Request: place.Request{ID: "d", App: "db", GPU: place.GPURequest{SharedMilli: 600}}, Host: "h1", GPUIndices: []int{0}},
			{Request: place.Request{ID: "e", App: "x"}, Host: "h9"},
		},
	}
	prof := place.Profile{
		AntiAffinity: []place.AntiAffinity{{App: "web", Other: "db", MaxOther: 1}, {App: "web", Other: "web", MaxOther: 0}},
		Spreads:      []place.Spread{{App: "web", DomainLabel: "rack", MaxSkew: 1}},
		Quotas:       []place.Quota{{Group: "g", Limit: place.Resources{place.DimCPU: 1000}, GPUMilli: -1}},
	}
	got := Validate(snap, prof)
	var lines []string
	for _, v := range got {
		lines = append(lines, v.String())
	}
	want := []string{
		"unknown-host on h9: placement e is on a host that does not exist",
		"capacity on h1: cpu peak 5500 exceeds capacity 4000",
		"selector on h1: c needs rack=r2",
		"gpu on h1: c accepts models [V100], host has T4",
		"gpu on h1: device 0 holds 1200 milli-GPUs",
		"anti-affinity on h1: 2 instances of db next to web, at most 1",
		"anti-affinity on h1: 2 instances of web, at most 1",
		"spread: web has 2 in rack=r1 and 0 in rack=r2, skew 2 > 1",
		"quota: group g uses 2000 cpu of its own, quota 1000",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestValidateCurvesPointwise(t *testing.T) {
	// Two curved placements peak at different points: the sum of peaks
	// (8000) is above capacity but the pointwise peak (5000) is not.
	mk := func(id string, c []int64) place.Placement {
		return place.Placement{Request: place.Request{ID: id, Demand: place.Resources{place.DimCPU: 4000}, Curves: map[string][]int64{place.DimCPU: c}}, Host: "h"}
	}
	snap := place.Snapshot{Hosts: []place.Host{host("h", 6000, 1, nil)}, Placements: []place.Placement{mk("a", []int64{4000, 1000}), mk("b", []int64{1000, 4000})}}
	if v := Validate(snap, place.Profile{CurvePoints: 2}); len(v) != 0 {
		t.Fatalf("pointwise fit flagged: %v", v)
	}
	snap.Hosts[0].Capacity[place.DimCPU] = 4999
	if v := Validate(snap, place.Profile{CurvePoints: 2}); len(v) != 1 || v[0].Rule != "capacity" {
		t.Fatalf("overflow at a point not flagged: %v", v)
	}
}

func loadExample(t *testing.T) *Workload {
	t.Helper()
	f, err := os.Open("../trace/testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := trace.DecodeGeneric(f, "example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	w, err := FromGeneric(g)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestEvaluateGenericExample(t *testing.T) {
	w := loadExample(t)
	if len(w.Snapshot.Hosts) != 9 || len(w.Requests) != 34 {
		t.Fatalf("workload has %d hosts, %d requests; want 9, 34", len(w.Snapshot.Hosts), len(w.Requests))
	}
	rep, err := Evaluate(context.Background(), w, place.Strategies(), []uint64{1, 2}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Runs) != 2*len(place.Strategies()) {
		t.Fatalf("%d runs", len(rep.Runs))
	}
	for _, run := range rep.Runs {
		if len(run.Violations) != 0 {
			t.Errorf("%s/%d: violations %v", run.Strategy, run.Seed, run.Violations)
		}
		if run.Placed+run.Failed != 34 {
			t.Errorf("%s/%d: placed %d + failed %d != 34", run.Strategy, run.Seed, run.Placed, run.Failed)
		}
		// Offline's quota is 8 cpu: 16 of its 20 half-cpu batch containers
		// run as its own, the other 4 on quota borrowed from online,
		// which leaves 148 of its 200 cpu unused.
		batch, borrowed := 0, 0
		for _, p := range run.Final.Placements {
			if p.App == "batch" {
				batch++
				if p.Borrowed {
					borrowed++
				}
			}
		}
		if batch != 20 || borrowed != 4 {
			t.Errorf("%s/%d: %d batch placed, %d borrowed; want 20, 4", run.Strategy, run.Seed, batch, borrowed)
		}
		if _, ok := run.Allocation[DimGPU]; !ok {
			t.Errorf("%s: no gpu allocation in %v", run.Strategy, run.Allocation)
		}
	}
	var a, b bytes.Buffer
	if err := rep.WriteJSON(&a); err != nil {
		t.Fatal(err)
	}
	rep2, err := Evaluate(context.Background(), w, place.Strategies(), []uint64{1, 2}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep2.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("evaluate is not deterministic")
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, s := range place.Strategies() {
		if !strings.Contains(text.String(), string(s)) {
			t.Errorf("text report lacks strategy %s:\n%s", s, text.String())
		}
	}
}

func TestEvaluateV2018Small(t *testing.T) {
	dir := t.TempDir()
	cfg := trace.GenerateConfig{Seed: 3, Hosts: 20, CoresPerHost: 96, Containers: 500, DeployUnits: 80, FailureDomains: 4, MaxDeployUnitSize: 40, SpanSec: 100}
	if err := trace.WriteV2018Dir(dir, cfg); err != nil {
		t.Fatal(err)
	}
	tr, err := trace.LoadV2018(dir, trace.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := FromV2018(tr)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Profile.Spreads) == 0 {
		t.Fatal("no deploy unit spreads")
	}
	rep, err := Evaluate(context.Background(), w, []place.Strategy{place.StrategySpread, place.StrategyBestFit, place.StrategyFGDPack}, []uint64{1}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range rep.Runs {
		if len(run.Violations) != 0 {
			t.Errorf("%s: %v", run.Strategy, run.Violations)
		}
		if run.Placed == 0 || run.Failed == 0 {
			t.Errorf("%s: placed %d, failed %d; the cluster is sized to overflow", run.Strategy, run.Placed, run.Failed)
		}
		t.Logf("%s: placed %d failed %d cpu %.3f kinds %v", run.Strategy, run.Placed, run.Failed, run.Allocation[place.DimCPU], run.FailureKinds)
	}
}

func TestPreAllocate(t *testing.T) {
	w := &Workload{Name: "pa", Snapshot: place.Snapshot{Hosts: []place.Host{host("inv", 4000, 100, nil)}}}
	for i := range 5 {
		w.Requests = append(w.Requests, req("r"+string(rune('0'+i)), "a", 2000, 1))
	}
	// Five 2-CPU requests, one 4-CPU host: 2 fit, 3 remain, and 4-CPU
	// hosts take two each, so 2 more hosts are needed.
	rep, err := PreAllocate(context.Background(), w, place.StrategyBestFit, 1, host("std", 4000, 100, nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	pa := rep.PreAllocation
	if pa.Placed != 2 || pa.Unplaced != 3 || pa.ExtraHosts != 2 || len(pa.ExtraPlan) != 3 {
		t.Fatalf("pre-allocation %+v", pa)
	}
	for _, d := range pa.ExtraPlan {
		if !d.Placed || !strings.HasPrefix(d.Host, "std-new-") {
			t.Errorf("extra plan decision %+v", d)
		}
	}
	// A host type too small for the rest never suffices.
	rep, err = PreAllocate(context.Background(), w, place.StrategyBestFit, 1, host("tiny", 1000, 100, nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if pa := rep.PreAllocation; pa.ExtraHosts != -1 || len(pa.NeverFit) != 3 || pa.MaxExtraHosts != 3 {
		t.Fatalf("pre-allocation with tiny hosts %+v", pa)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "even 3 extra tiny hosts do not take the rest") {
		t.Errorf("text:\n%s", text.String())
	}
}

func TestReproduceDeterministic(t *testing.T) {
	w := loadExample(t)
	first, err := Replay(context.Background(), &Workload{Snapshot: w.Snapshot, Profile: w.Profile, Requests: w.Requests[:20]}, place.StrategyRandom, 9, Options{})
	if err != nil {
		t.Fatal(err)
	}
	prof := w.Profile
	prof.Strategy = place.StrategyRandom
	var file bytes.Buffer
	if err := WriteSnapshot(&file, &SnapshotFile{Version: SnapshotVersion, Profile: prof, Snapshot: first.Final}); err != nil {
		t.Fatal(err)
	}
	sf, err := ReadSnapshot(bytes.NewReader(file.Bytes()), "snap.json")
	if err != nil {
		t.Fatal(err)
	}
	out := func() string {
		rep, err := Reproduce(context.Background(), sf, w.Requests[20:], 4, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := rep.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		if err := WriteDecisions(&b, rep.Runs[0].Decisions); err != nil {
			t.Fatal(err)
		}
		if err := rep.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		if v := rep.Violations(); v != 0 {
			t.Fatalf("violations: %v", rep.Runs[0].Violations)
		}
		return b.String()
	}
	a, b := out(), out()
	if a != b {
		t.Fatalf("reproduce differs between two runs:\n%s\n---\n%s", a, b)
	}
	if !strings.Contains(a, `"mode": "reproduce"`) || strings.Count(a, `{"request":`) != 14 {
		t.Fatalf("unexpected output:\n%s", a)
	}
}

func TestReadSnapshotBadInput(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"version": 1, "bogus": 2}`, `snap.json: bad snapshot file: json: unknown field "bogus"`},
		{"{\"version\": 1,\n \"snapshot\": {\"Hosts\": [{\"Name\": 5}]}}", `snap.json:2: bad snapshot file: json: cannot unmarshal number into Go struct field`},
		{"{\"version\": 1,\n\n ]", `snap.json:3: bad snapshot file: invalid character ']'`},
		{`{"version": 2}`, `snap.json: bad snapshot file: version 2, want 1`},
		{`{"version": 1, "snapshot": {"Hosts": [{"Name": "h"}], "Placements": [{"ID": "a", "Host": "nope"}]}}`, `snap.json: bad snapshot file: `},
		{`{"version": 1} {}`, `trailing data`},
	}
	for _, c := range cases {
		_, err := ReadSnapshot(strings.NewReader(c.in), "snap.json")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ReadSnapshot(%s):\n got %v\nwant containing %s", c.in, err, c.want)
		}
	}
}

func FuzzReadSnapshot(f *testing.F) {
	f.Add(`{"version": 1, "snapshot": {"Hosts": [{"Name": "h", "Capacity": {"cpu": 1000}}]}}`)
	f.Add(`{"version": 1, "profile": {"Strategy": "stack"}, "requests": [{"ID": "a", "Demand": {"cpu": 5}}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		sf, err := ReadSnapshot(strings.NewReader(in), "f")
		if err != nil {
			return
		}
		if _, err := place.New(sf.Snapshot, sf.Profile); err != nil {
			t.Fatalf("accepted a snapshot place rejects: %v", err)
		}
	})
}

// parseSVG checks the document is well-formed XML and counts elements.
func parseSVG(t *testing.T, data []byte) map[string]int {
	t.Helper()
	counts := map[string]int{}
	dec := xml.NewDecoder(bytes.NewReader(data))
	depth := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("svg not well-formed: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if depth == 0 && (el.Name.Local != "svg" || el.Name.Space != "http://www.w3.org/2000/svg") {
				t.Fatalf("root is %v, want svg in the SVG namespace", el.Name)
			}
			depth++
			counts[el.Name.Local]++
		case xml.EndElement:
			depth--
		}
	}
	if depth != 0 {
		t.Fatalf("unbalanced svg")
	}
	return counts
}

func TestSVGs(t *testing.T) {
	w := loadExample(t)
	rep, err := Evaluate(context.Background(), w, []place.Strategy{place.StrategySpread, place.StrategyStack, place.StrategyFGD}, []uint64{1}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteCurvesSVG(&b, rep.Runs, place.DimCPU, "cpu <allocation> & load"); err != nil {
		t.Fatal(err)
	}
	c := parseSVG(t, b.Bytes())
	if c["polyline"] != 4 {
		t.Errorf("%d polylines, want one per run (3) and the ideal", c["polyline"])
	}
	// Each run's line has one point per curve sample, inside the plot.
	k := 0
	for _, e := range svgElements(t, b.Bytes()) {
		if e.name != "polyline" || e.class != "run" {
			continue
		}
		points := e.points
		pts := strings.Fields(points)
		if len(pts) != len(rep.Runs[k].Curve) {
			t.Errorf("run %d: %d points, want %d", k, len(pts), len(rep.Runs[k].Curve))
		}
		for _, p := range pts {
			var px, py float64
			if _, err := fmt.Sscanf(p, "%g,%g", &px, &py); err != nil || px < 70 || px > 570 || py < 40 || py > 420 {
				t.Errorf("run %d: point %q outside the plot (%v)", k, p, err)
			}
		}
		k++
	}
	if !strings.Contains(b.String(), "cpu &lt;allocation&gt; &amp; load") {
		t.Error("title not escaped")
	}
	b.Reset()
	if err := WriteHeatmapSVG(&b, rep.Runs[0], place.DimCPU, "heat"); err != nil {
		t.Fatal(err)
	}
	c = parseSVG(t, b.Bytes())
	// background + one cell per host + 11 legend swatches
	if want := 1 + len(w.Snapshot.Hosts) + 11; c["rect"] != want {
		t.Errorf("%d rects, want %d", c["rect"], want)
	}
	if heat(0) != "#ffffff" || heat(1) != "#a50026" || heat(2) != heat(1) {
		t.Errorf("heat scale ends: %s %s", heat(0), heat(1))
	}
	if os.Getenv("SIM_SVG_DIR") != "" {
		_ = os.WriteFile(filepath.Join(os.Getenv("SIM_SVG_DIR"), "heat.svg"), b.Bytes(), 0o644)
	}
}

// A request fails on a host with room because the spread rule shuts it:
// the top reason alone would hide that, the rule tally shows it.
func TestFailureRulesShowHiddenBlockers(t *testing.T) {
	rack := func(r string) map[string]string { return map[string]string{"rack": r} }
	w := &Workload{
		Snapshot: place.Snapshot{
			Hosts: []place.Host{host("h1", 8000, 10, rack("r1")), host("h2", 1000, 10, rack("r2"))},
			Placements: []place.Placement{
				{Request: req("s-0", "s", 1000, 1), Host: "h1"},
				{Request: req("x-0", "x", 1000, 1), Host: "h2"},
			},
		},
		Profile:  place.Profile{Spreads: []place.Spread{{App: "s", DomainLabel: "rack", MaxSkew: 1}}},
		Requests: []place.Request{req("s-1", "s", 2000, 1)},
	}
	run, err := Replay(context.Background(), w, place.StrategyBestFit, 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if run.Failed != 1 {
		t.Fatalf("failed %d, want 1", run.Failed)
	}
	want := []ReasonTally{{Reason: "insufficient cpu", Requests: 1, Hosts: 1}, {Reason: "spread", Requests: 1, Hosts: 1}}
	if !reflect.DeepEqual(run.FailureRules, want) {
		t.Fatalf("failure rules %+v, want %+v", run.FailureRules, want)
	}
	// Start allocation counts the existing placements: 2000 of 9000.
	if first := run.Curve[0]; !near(first.Allocated[place.DimCPU], 2.0/9) || !near(first.Arrived[place.DimCPU], 2.0/9) {
		t.Fatalf("first curve point %+v", first)
	}
}

func FuzzReadRequests(f *testing.F) {
	f.Add(`[{"ID": "a", "App": "x", "Demand": {"cpu": 5}, "Curves": {"cpu": [1, 2]}}]`)
	f.Add(`[{"ID": "a", "GPU": {"Count": 1, "Models": ["T4"]}}]`)
	f.Fuzz(func(t *testing.T, in string) {
		reqs, err := ReadRequests(strings.NewReader(in), "f")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		// Whatever decodes must be placeable or rejected cleanly.
		c, err := place.New(place.Snapshot{Hosts: []place.Host{host("h", 4000, 1<<30, nil)}}, place.Profile{CurvePoints: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range reqs {
			_, _ = c.Place(r)
		}
	})
}

// Parallel runs give the same report, in the same order, as one at a time.
func TestEvaluateParallelSameAsSequential(t *testing.T) {
	w := randomWorkload(4)
	var mu sync.Mutex
	finished := map[string]bool{}
	opts := Options{Parallel: 3, Progress: func(run string, done, total int) {
		mu.Lock()
		defer mu.Unlock()
		if done == total {
			finished[run] = true
		}
	}}
	par, err := Evaluate(context.Background(), w, place.Strategies(), []uint64{1, 2}, opts)
	if err != nil {
		t.Fatal(err)
	}
	seq, err := Evaluate(context.Background(), w, place.Strategies(), []uint64{1, 2}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := par.WriteJSON(&a); err != nil {
		t.Fatal(err)
	}
	if err := seq.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("parallel and sequential reports differ")
	}
	if len(finished) != 2*len(place.Strategies()) || !finished["fgd seed 2"] {
		t.Fatalf("progress saw %d finished runs: %v", len(finished), finished)
	}
}

func TestEvaluateCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Evaluate(ctx, randomWorkload(1), place.Strategies(), nil, Options{Parallel: 2})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestReasonKind(t *testing.T) {
	for in, want := range map[string]string{
		"insufficient cpu":              "insufficient cpu",
		"insufficient cpu over the day": "insufficient cpu over the day",
		"no gpu with enough free share": "no gpu with enough free share",
		"spread app_3 by rack":          "spread",
		"spread web: no rack label":     "spread",
		"anti-affinity web/db":          "anti-affinity",
		"quota team-a cpu":              "quota",
		"selector zone":                 "selector",
		"no host examined":              "no host examined",
	} {
		if got := reasonKind(in); got != want {
			t.Errorf("reasonKind(%q) = %q, want %q", in, got, want)
		}
	}
}

// Evicting a spread app's instance may leave it unbalanced; that is not a
// placement bug, so the run reports the eviction and no violation. The
// validator itself still sees the skew.
func TestSpreadSkewAfterEvictionIsNotAViolation(t *testing.T) {
	rack := func(r string) map[string]string { return map[string]string{"rack": r} }
	w := &Workload{
		Snapshot: place.Snapshot{Hosts: []place.Host{
			host("a1", 1000, 10, rack("r1")), host("a2", 1000, 10, rack("r1")),
			host("b1", 1000, 10, rack("r2")), host("b2", 1000, 10, rack("r2")),
			host("c1", 1000, 10, rack("r3")),
		}},
		Profile: place.Profile{Spreads: []place.Spread{{App: "s", DomainLabel: "rack", MaxSkew: 1}}},
	}
	for i := range 5 {
		r := req(fmt.Sprintf("s-%d", i), "s", 1000, 1)
		r.Priority = 1
		w.Requests = append(w.Requests, r)
	}
	x := req("x-0", "x", 1000, 1)
	x.Priority, x.Preempt, x.Selector = 10, true, rack("r3")
	w.Requests = append(w.Requests, x)
	run, err := Replay(context.Background(), w, place.StrategyBestFit, 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if run.Evicted != 1 || run.Placed != 6 {
		t.Fatalf("evicted %d placed %d, want 1 and 6", run.Evicted, run.Placed)
	}
	if len(run.Violations) != 0 {
		t.Fatalf("violations %v", run.Violations)
	}
	v := Validate(run.Final, run.Profile)
	if len(v) != 1 || v[0].Rule != "spread" || v[0].App != "s" {
		t.Fatalf("validator on the end state: %v, want the skew of s", v)
	}
}
