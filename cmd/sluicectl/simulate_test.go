package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func simulate(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runSimulate(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

const example = "../../brain/trace/testdata/example.yaml"

func readReport(t *testing.T, dir string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestSimulateGenerateAndEvaluateV2018(t *testing.T) {
	dir := t.TempDir()
	tr := filepath.Join(dir, "trace")
	code, out, errs := simulate(t, "generate-v2018", "-out", tr, "-seed", "5", "-hosts", "30", "-containers", "400", "-deploy-units", "60")
	if code != 0 {
		t.Fatalf("generate: %d %s %s", code, out, errs)
	}
	outDir := filepath.Join(dir, "out")
	code, out, errs = simulate(t, "evaluate", "-format", "v2018", "-in", tr, "-strategies", "spread,best-fit", "-out", outDir)
	if code != 0 {
		t.Fatalf("evaluate: %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "workload v2018: 30 hosts, 400 requests") {
		t.Errorf("text report:\n%s", out)
	}
	rep := readReport(t, outDir)
	if runs := rep["runs"].([]any); len(runs) != 2 {
		t.Fatalf("%d runs, want 2", len(runs))
	}
	for _, f := range []string{"report.txt", "curves-cpu.svg", "curves-memory.svg", "heatmap-cpu-spread-1.svg", "heatmap-cpu-best-fit-1.svg"} {
		if _, err := os.Stat(filepath.Join(outDir, f)); err != nil {
			t.Errorf("missing output: %v", err)
		}
	}
	// A budget below the estimate refuses the trace before reading it.
	code, _, errs = simulate(t, "evaluate", "-format", "v2018", "-in", tr, "-memory-budget", "1000")
	if code != 1 || !strings.Contains(errs, "trace too large for memory budget") {
		t.Errorf("over budget: %d %s", code, errs)
	}
}

func TestSimulateEvaluateGenericSeeds(t *testing.T) {
	out := t.TempDir()
	code, text, errs := simulate(t, "evaluate", "-in", example, "-strategies", "stack,fgd", "-seeds", "1,2", "-out", out, "-progress", "-parallel", "3")
	if code != 0 {
		t.Fatalf("%d\n%s\n%s", code, text, errs)
	}
	if !strings.Contains(errs, "100% runs 4/4") {
		t.Errorf("progress bar did not finish at 4/4 runs: %q", errs)
	}
	if runs := readReport(t, out)["runs"].([]any); len(runs) != 4 {
		t.Fatalf("%d runs, want 4", len(runs))
	}
	if _, err := os.Stat(filepath.Join(out, "heatmap-gpu-fgd-2.svg")); err != nil {
		t.Error(err)
	}
}

func TestSimulatePreAllocate(t *testing.T) {
	out := t.TempDir()
	code, text, errs := simulate(t, "pre-allocate", "-in", example, "-strategies", "best-fit", "-host-type", "cpu=4,memory=8Gi,label.zone=b,label.rack=r9", "-out", out)
	if code != 0 {
		t.Fatalf("%d\n%s\n%s", code, text, errs)
	}
	if !strings.Contains(text, "pre-allocation:") {
		t.Errorf("text:\n%s", text)
	}
	if _, err := os.Stat(filepath.Join(out, "decisions.jsonl")); err != nil {
		t.Error(err)
	}
	code, _, errs = simulate(t, "pre-allocate", "-in", example, "-host-type", "nosuch")
	if code != 2 || !strings.Contains(errs, `no host entry of that name`) {
		t.Errorf("unknown host type: %d %s", code, errs)
	}
}

func TestSimulateReproduceTwiceSameOutput(t *testing.T) {
	dir := t.TempDir()
	code, text, errs := simulate(t, "evaluate", "-in", example, "-strategies", "random", "-seeds", "3", "-out", dir, "-save-snapshot")
	if code != 0 {
		t.Fatalf("%d\n%s\n%s", code, text, errs)
	}
	snap := filepath.Join(dir, "snapshot-random-3.json")
	reqs := filepath.Join(dir, "reqs.json")
	if err := os.WriteFile(reqs, []byte(`[{"ID": "late-0", "App": "batch", "Demand": {"cpu": 500, "memory": 1073741824}},
 {"ID": "late-1", "App": "batch", "Demand": {"cpu": 500, "memory": 1073741824}}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(out string) (string, string) {
		code, text, errs := simulate(t, "reproduce", "-snapshot", snap, "-requests", reqs, "-seeds", "7", "-out", out)
		if code != 0 {
			t.Fatalf("%d\n%s\n%s", code, text, errs)
		}
		d, err := os.ReadFile(filepath.Join(out, "decisions.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		return string(d), text
	}
	d1, t1 := run(filepath.Join(dir, "r1"))
	d2, t2 := run(filepath.Join(dir, "r2"))
	if d1 != d2 || d1 == "" {
		t.Fatalf("decisions differ:\n%s\n---\n%s", d1, d2)
	}
	strip := func(s string) string { // run times differ; nothing else may
		var keep []string
		for _, l := range strings.Split(s, "\n") {
			if !strings.HasPrefix(l, "run time") && !strings.HasPrefix(l, "wrote") {
				keep = append(keep, l[:max(0, strings.LastIndex(l, "  "))])
			}
		}
		return strings.Join(keep, "\n")
	}
	if strip(t1) != strip(t2) {
		t.Fatalf("reports differ:\n%s\n---\n%s", t1, t2)
	}
	if strings.Count(d1, "\n") != 2 {
		t.Fatalf("want two decisions:\n%s", d1)
	}
}

func TestSimulateBadUsage(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage: sluicectl simulate MODE"},
		{[]string{"bogus"}, 2, `unknown mode "bogus"`},
		{[]string{"evaluate"}, 2, "need -in"},
		{[]string{"evaluate", "-in", example, "-strategies", "nope"}, 2, "-strategies"},
		{[]string{"evaluate", "-in", example, "-seeds", "x"}, 2, `-seeds: "x"`},
		{[]string{"evaluate", "-in", example, "-format", "csv"}, 2, `unknown -format "csv"`},
		{[]string{"evaluate", "-in", "/nonexistent.yaml"}, 1, "no such file"},
		{[]string{"reproduce"}, 2, "need -snapshot"},
		{[]string{"generate-v2018"}, 2, "need -out"},
		{[]string{"pre-allocate", "-in", example, "-strategies", "stack,spread", "-host-type", "cpu=1"}, 2, "one strategy"},
	}
	for _, c := range cases {
		code, _, errs := simulate(t, c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d containing %q", c.args, code, errs, c.code, c.want)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\nhosts: []\napps: []\nrequests: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := simulate(t, "evaluate", "-in", bad)
	if code != 1 || !strings.Contains(errs, bad+":2: hosts: no hosts") {
		t.Errorf("bad generic file: %d %s", code, errs)
	}
}

// Issue 15's minimal curve file: exit 0, cpu used 50% with 100% requested.
func TestSimulateEvaluateAccountingFile(t *testing.T) {
	in := filepath.Join(t.TempDir(), "accounting.yaml")
	yaml := "version: 1\ncurve_points: 2\nhosts:\n  - {name: h, cpu: 4, memory: 4Gi}\napps:\n" +
		"  - {name: day, cpu: 2, memory: 1Gi, curves: {cpu: [1, 0]}}\n  - {name: night, cpu: 2, memory: 1Gi, curves: {cpu: [0, 1]}}\n" +
		"requests:\n  - {app: day, count: 1}\n  - {app: night, count: 1}\n"
	if err := os.WriteFile(in, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	code, text, errs := simulate(t, "evaluate", "-in", in, "-strategies", "best-fit", "-out", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, text, errs)
	}
	run := readReport(t, out)["runs"].([]any)[0].(map[string]any)
	used := run["allocation_rate"].(map[string]any)["cpu"].(float64)
	requested := run["requested_rate"].(map[string]any)["cpu"].(float64)
	if used != 0.5 || requested != 1 {
		t.Fatalf("cpu used %v requested %v, want 0.5 and 1\n%s", used, requested, text)
	}
	if strings.Contains(text, "VIOLATION") {
		t.Fatalf("violation reported:\n%s", text)
	}
	for _, name := range []string{"band-cpu-best-fit-1.svg", "band-memory-best-fit-1.svg", "hosts-by-shape.svg"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Error(err)
		}
	}
}

// generate writes a cluster file that evaluate reads, the same bytes for
// the same seed.
func TestSimulateGenerateCluster(t *testing.T) {
	dir := t.TempDir()
	small := []string{"-hosts", "60", "-apps", "40", "-containers", "300", "-rules", "80", "-curve-points", "24"}
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	for _, out := range []string{a, b} {
		code, text, errs := simulate(t, append([]string{"generate", "-out", out, "-seed", "4"}, small...)...)
		if code != 0 || !strings.Contains(text, "60 hosts, 40 apps, 300 containers (270 placed)") {
			t.Fatalf("generate: exit %d\n%s\n%s", code, text, errs)
		}
	}
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if len(da) == 0 || !bytes.Equal(da, db) {
		t.Fatal("the same seed wrote different files")
	}
	code, text, errs := simulate(t, "evaluate", "-in", a, "-strategies", "best-fit,spread")
	if code != 0 || !strings.Contains(text, "30 requests after 270 pre-placed") {
		t.Fatalf("evaluate: exit %d\n%s\n%s", code, text, errs)
	}
}
