package sim

import (
	"bytes"
	"context"
	"testing"

	"github.com/sluicehq/sluice/brain/place"
	"github.com/sluicehq/sluice/brain/trace"
)

func smallCluster(seed uint64) ClusterConfig {
	return ClusterConfig{Seed: seed, Hosts: 120, Apps: 90, Containers: 680, Rules: 330, CurvePoints: 24, Existing: 0.9}
}

// The same seed writes the same file; another seed another one.
func TestGenerateClusterDeterministic(t *testing.T) {
	encode := func(cfg ClusterConfig) []byte {
		g, err := GenerateCluster(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := trace.EncodeGeneric(&b, g); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	a, b, c := encode(smallCluster(1)), encode(smallCluster(1)), encode(smallCluster(2))
	if !bytes.Equal(a, b) {
		t.Fatal("same seed, different files")
	}
	if bytes.Equal(a, c) {
		t.Fatal("different seeds, same file")
	}
}

// The generated file has the asked shape, decodes, and its existing
// placements are feasible: the workload builds and a run from it breaks
// nothing.
func TestGenerateClusterShape(t *testing.T) {
	cfg := smallCluster(3)
	g, err := GenerateCluster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := trace.EncodeGeneric(&buf, g); err != nil {
		t.Fatal(err)
	}
	g, err = trace.DecodeGeneric(&buf, "generated.yaml")
	if err != nil {
		t.Fatal(err)
	}
	containers, existing, rules, zero, same := 0, 0, 0, 0, 0
	for _, r := range g.Requests {
		containers += r.Count
		existing += len(r.On)
	}
	shapes := map[string]bool{}
	for _, a := range g.Apps {
		if len(a.Curves["cpu"]) != cfg.CurvePoints || len(a.Curves["memory"]) != cfg.CurvePoints {
			t.Fatalf("app %s: curves %v", a.Name, a.Curves)
		}
		shapes[curveShape(a.Curves["cpu"])] = true
		for _, aa := range a.AntiAffinity {
			rules++
			if aa.App == a.Name {
				same++
			} else if aa.MaxTogether == 0 {
				zero++
			}
		}
	}
	if len(g.Hosts) != 2 || g.Hosts[0].Count+g.Hosts[1].Count != cfg.Hosts || g.Hosts[1].UnitCost() <= g.Hosts[0].UnitCost() {
		t.Errorf("hosts %+v", g.Hosts)
	}
	if len(g.Apps) != cfg.Apps || containers != cfg.Containers || rules != cfg.Rules || same == 0 || zero == 0 {
		t.Errorf("apps %d containers %d rules %d (same-app %d, zero %d)", len(g.Apps), containers, rules, same, zero)
	}
	if want := int(float64(cfg.Containers) * cfg.Existing); existing < want*95/100 {
		t.Errorf("%d existing placements, want about %d", existing, want)
	}
	if !shapes["day"] || !shapes["night"] {
		t.Errorf("curve shapes %v: want day and night ones", shapes)
	}
	w, err := FromGeneric(g)
	if err != nil {
		t.Fatalf("generated existing placements are not feasible: %v", err)
	}
	run, err := Replay(context.Background(), w, place.StrategyBestFit, 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Violations) != 0 || run.Placed+run.Failed != containers-existing {
		t.Fatalf("placed %d failed %d violations %v", run.Placed, run.Failed, run.Violations)
	}
}

// curveShape tells a day curve (higher in the middle of the day) from a
// night one (higher at its ends).
func curveShape(c trace.Curve) string {
	n := len(c)
	mid := c[n/2] + c[n/2-1]
	ends := c[0] + c[n-1]
	switch {
	case mid > ends+0.5:
		return "day"
	case ends > mid+0.5:
		return "night"
	}
	return "other"
}
