package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/brain/place"
	"github.com/sluicehq/sluice/brain/trace"
)

func decodeGeneric(t *testing.T, in string) *trace.Generic {
	t.Helper()
	g, err := trace.DecodeGeneric(strings.NewReader(in), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

const existingBase = `version: 1
hosts:
  - {name: h, count: 2, cpu: 4, memory: 8Gi}
  - {name: g, cpu: 8, memory: 8Gi, gpus: 2, gpu_model: T4, labels: {zone: b}}
apps:
  - {name: a, cpu: 1, memory: 1Gi}
  - {name: b, cpu: 2, memory: 1Gi, anti_affinity: [{app: a, max_together: 0}]}
  - {name: infer, cpu: 1, memory: 1Gi, gpu: {shared_milli: 600}, selector: {zone: b}}
`

// Existing placements start the run: they are in the snapshot (GPU devices
// first-fit), only the rest are requests, and the report counts them.
func TestFromGenericExistingPlacements(t *testing.T) {
	g := decodeGeneric(t, existingBase+`requests:
  - {app: a, count: 3, on: [h-0, h-0]}
  - {app: infer, count: 3, on: [g, g]}
`)
	w, err := FromGeneric(g)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range w.Snapshot.Placements {
		got = append(got, p.ID+"@"+p.Host+fmtInts(p.GPUIndices))
	}
	want := []string{"a-0@h-0", "a-1@h-0", "infer-0@g[0]", "infer-1@g[1]"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("existing placements %v, want %v", got, want)
	}
	// Two 600-milli shares fill both T4s: the third infer is beyond what
	// the cluster holds and is counted, not expanded.
	if len(w.Requests) != 1 || w.Requests[0].ID != "a-2" || len(w.Unplaceable) != 1 || w.Unplaceable[0] != (Unplaceable{App: "infer", Count: 1, Bound: 2}) {
		t.Fatalf("requests %+v, unplaceable %+v; want a-2, and one infer beyond a bound of 2", w.Requests, w.Unplaceable)
	}
	rep, err := Evaluate(context.Background(), w, []place.Strategy{place.StrategyBestFit}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	run := rep.Runs[0]
	if rep.PrePlaced != 4 || run.Placed != 1 || run.Failed != 1 || len(run.Violations) != 0 {
		t.Fatalf("pre-placed %d, placed %d, failed %d, violations %v; want 4, 1, 1, none",
			rep.PrePlaced, run.Placed, run.Failed, run.Violations)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "2 requests after 4 pre-placed") {
		t.Errorf("text report does not say what was pre-placed:\n%s", text.String())
	}
}

// An existing placement that breaks capacity, GPU, selector or a rule is
// an error naming the request and host.
func TestFromGenericRefusesInfeasibleExisting(t *testing.T) {
	cases := []struct{ requests, want string }{
		{"  - {app: a, count: 5, on: [h-1, h-1, h-1, h-1, h-1]}\n", `requests[0].on[4]: placement "a-4" on "h-1": overflows the host: insufficient cpu`},
		{"  - {app: a, count: 1, on: [h-1]}\n  - {app: b, count: 1, on: [h-1]}\n", "anti-affinity on h-1: 1 instances of a next to b, at most 0"},
		{"  - {app: infer, count: 1, on: [h-0]}\n", `requests[0].on[0]: placement "infer-0" on "h-0": gpu indices: 0 given, the request needs 1`},
		{"  - {app: infer, count: 4, on: [g, g, g, g]}\n", `requests[0].on[2]: placement "infer-2" on "g": gpu indices: 0 given`},
	}
	for _, c := range cases {
		_, err := FromGeneric(decodeGeneric(t, existingBase+"requests:\n"+c.requests))
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, trace.ErrInvalid) {
			t.Errorf("requests:\n%s got %v\nwant an ErrInvalid containing %q", c.requests, err, c.want)
		}
	}
	// A selector is checked too.
	in := strings.Replace(existingBase, "selector: {zone: b}", "selector: {zone: c}", 1)
	_, err := FromGeneric(decodeGeneric(t, in+"requests:\n  - {app: infer, count: 1, on: [g]}\n"))
	if err == nil || !strings.Contains(err.Error(), "selector on g: infer-0 needs zone=c") {
		t.Errorf("selector: got %v", err)
	}
}

// A same-app max_together N allows N instances per host, counting all of
// them: the file's doc, place's rule and the validator agree.
func TestSameAppMaxTogetherCountsEveryInstance(t *testing.T) {
	g := decodeGeneric(t, `version: 1
hosts:
  - {name: h, count: 2, cpu: 16, memory: 16Gi}
apps:
  - {name: a, cpu: 1, memory: 1Gi, anti_affinity: [{app: a, max_together: 2}]}
requests:
  - {app: a, count: 5}
`)
	w, err := FromGeneric(g)
	if err != nil {
		t.Fatal(err)
	}
	run, err := Replay(context.Background(), w, place.StrategyBestFit, 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Two hosts of two: the fifth cannot fit even an empty cluster.
	if len(w.Requests) != 4 || len(w.Unplaceable) != 1 || w.Unplaceable[0] != (Unplaceable{App: "a", Count: 1, Bound: 4}) {
		t.Fatalf("requests %d, unplaceable %+v; want 4 and one beyond the bound of 4", len(w.Requests), w.Unplaceable)
	}
	perHost := map[string]int{}
	for _, p := range run.Final.Placements {
		perHost[p.Host]++
	}
	if run.Placed != 4 || run.Failed != 1 || perHost["h-0"] != 2 || perHost["h-1"] != 2 {
		t.Fatalf("placed %d failed %d per host %v; want 2 on each host and one failure", run.Placed, run.Failed, perHost)
	}
	// Three on one host is what the validator calls a violation.
	snap := run.Final
	extra := w.Requests[3]
	extra.ID = "a-4"
	snap.Placements = append(snap.Placements, place.Placement{Request: extra, Host: "h-0"})
	vs := Validate(snap, w.Profile)
	if len(vs) != 1 || vs[0].Detail != "3 instances of a, at most 2" {
		t.Fatalf("validator: %v", vs)
	}
	// An existing third one is refused.
	g.Requests[0].On = []string{"h-0", "h-0", "h-0"}
	if _, err := FromGeneric(g); err == nil || !strings.Contains(err.Error(), "3 instances of a, at most 2") {
		t.Fatalf("three existing on one host: %v", err)
	}
}

func fmtInts(v []int) string {
	if len(v) == 0 {
		return ""
	}
	return fmt.Sprint(v)
}

// Existing placements survive trace -> workload -> snapshot file -> back,
// curves stored once per app, and a replay from the read-back snapshot
// decides as one from the workload does.
func TestExistingPlacementsRoundTrip(t *testing.T) {
	g, err := GenerateCluster(ClusterConfig{Seed: 5, Hosts: 40, Apps: 30, Containers: 200, Rules: 60, CurvePoints: 24, Existing: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	var yaml bytes.Buffer
	if err := trace.EncodeGeneric(&yaml, g); err != nil {
		t.Fatal(err)
	}
	g2, err := trace.DecodeGeneric(&yaml, "cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	w, err := FromGeneric(g2)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Snapshot.Placements) < 150 {
		t.Fatalf("%d existing placements, want about 180", len(w.Snapshot.Placements))
	}
	prof := w.Profile
	prof.Strategy = place.StrategyBestFit
	sf := &SnapshotFile{Version: SnapshotVersion, Profile: prof, Snapshot: w.Snapshot, Requests: w.Requests}
	var file bytes.Buffer
	if err := WriteSnapshot(&file, sf); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(file.String(), `"cpu": [`) + strings.Count(file.String(), `"cpu":[`); n != len(g.Apps) {
		t.Errorf("cpu curves written %d times, want once per app (%d)", n, len(g.Apps))
	}
	back, err := ReadSnapshot(&file, "snap.json")
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range back.Snapshot.Hosts {
		o := sf.Snapshot.Hosts[i]
		if h.Name != o.Name || !maps.Equal(h.Labels, o.Labels) || !maps.Equal(h.Capacity, o.Capacity) || h.GPUs != o.GPUs {
			t.Fatalf("host %d: %+v, wrote %+v", i, h, o)
		}
	}
	if len(back.Snapshot.Placements) != len(sf.Snapshot.Placements) || len(back.Requests) != len(sf.Requests) {
		t.Fatalf("%d placements, %d requests back; wrote %d, %d", len(back.Snapshot.Placements), len(back.Requests), len(sf.Snapshot.Placements), len(sf.Requests))
	}
	for i, p := range back.Snapshot.Placements {
		q := sf.Snapshot.Placements[i]
		if p.ID != q.ID || p.Host != q.Host || !reflect.DeepEqual(p.Curves, q.Curves) || !reflect.DeepEqual(p.Demand, q.Demand) {
			t.Fatalf("placement %d: %+v, wrote %+v", i, p, q)
		}
	}
	want, err := Replay(context.Background(), w, place.StrategyBestFit, 3, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Reproduce(context.Background(), back, nil, 3, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Runs[0].Decisions, want.Decisions) {
		t.Fatal("replay from the read-back snapshot decided differently")
	}
	if got.PrePlaced != len(w.Snapshot.Placements) {
		t.Errorf("reproduce reports %d pre-placed, want %d", got.PrePlaced, len(w.Snapshot.Placements))
	}
}
