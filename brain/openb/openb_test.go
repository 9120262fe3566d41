package openb

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/brain/place"
	"github.com/sluicehq/sluice/test/openbdata"
)

const podHeader = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n"

func TestParsePodsErrors(t *testing.T) {
	cases := []struct {
		in   string
		want string
	}{
		{"name,cpu_milli\n", "pods.csv:1: missing columns memory_mib, num_gpu, gpu_milli"},
		{"", "pods.csv:1: empty file: no header"},
		{podHeader + "p0,-1,10,0,0,,LS,Running,0,0,0\n", "pods.csv:2: cpu_milli: negative value -1"},
		{podHeader + "p0,1000,10,0,0,,LS,Running,0,0,0\np1,abc,10,0,0,,LS,Running,0,0,0\n", `pods.csv:3: cpu_milli: malformed number "abc"`},
		{podHeader + "p0,1000,10,1,1500,,LS,Running,0,0,0\n", "pods.csv:2: gpu_milli: 1500 exceeds one GPU"},
		{podHeader + "p0,1000,10,2,500,,LS,Running,0,0,0\n", "pods.csv:2: gpu_milli: 500: only single-GPU pods may share"},
		{podHeader + "p0,1000,10,0,300,,LS,Running,0,0,0\n", "pods.csv:2: gpu_milli: 300 with num_gpu 0"},
		{podHeader + "p0,1000,10,1,300,T4||V100,LS,Running,0,0,0\n", `pods.csv:2: gpu_spec: empty model in "T4||V100"`},
		{podHeader + "p0,1000,10,0,0,,LS,Running,0,0,0\np0,1,1,0,0,,LS,Running,0,0,0\n", `pods.csv:3: name: duplicate pod "p0" (first on line 2)`},
		{podHeader + "p0,1000,,0,0,,LS,Running,0,0,0\n", "pods.csv:2: memory_mib: empty"},
		{podHeader + "p0,1000\n", "pods.csv:2: memory_mib: missing value (row has 2 fields)"},
		{podHeader + "p0,\"1000,10,0,0,,LS,Running,0,0,0\n", "pods.csv:2:"},
	}
	for _, tc := range cases {
		_, err := ParsePods("pods.csv", strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("input %q: error %v, want %q", tc.in, err, tc.want)
		}
		var pe *ParseError
		if err != nil && !errors.As(err, &pe) {
			t.Errorf("input %q: error %v is not a *ParseError", tc.in, err)
		}
	}
}

func TestParseNodesAndModels(t *testing.T) {
	nodes, err := ParseNodes("nodes.csv", strings.NewReader("sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,P100\nn1,32000,131072,0,\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Node{{"n0", 64000, 262144, 2, "P100"}, {"n1", 32000, 131072, 0, ""}}
	if !reflect.DeepEqual(nodes, want) {
		t.Fatalf("nodes %+v, want %+v", nodes, want)
	}
	for in, msg := range map[string]string{
		"sn,cpu_milli,memory_mib,gpu,model\nn0,1,1,2,\n":                "nodes.csv:2: model: empty for a host with 2 GPUs",
		"sn,cpu_milli,memory_mib,gpu,model\nn0,1,1,0,T4\n":              `nodes.csv:2: model: "T4" on a host without GPUs`,
		"sn,cpu_milli,memory_mib,gpu,model\nn0,1,1,x,T4\n":              `nodes.csv:2: gpu: malformed number "x"`,
		"sn,cpu_milli,memory_mib,model\nn0,1,1,T4\n":                    "nodes.csv:1: missing columns gpu",
		"sn,cpu_milli,memory_mib,gpu,model\nn0,1,1,1,T4\nn0,1,1,1,T4\n": `nodes.csv:3: sn: duplicate host "n0"`,
	} {
		if _, err := ParseNodes("nodes.csv", strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: error %v, want %q", in, err, msg)
		}
	}
	pods, err := ParsePods("pods.csv", strings.NewReader(podHeader+"p0,1000,10,1,500,P100|A100,LS,Running,0,0,0\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = CheckModels(nodes, pods, "pods.csv")
	if err == nil || !strings.Contains(err.Error(), `pods.csv:2: gpu_spec: pod p0: unknown GPU model "A100"`) {
		t.Fatalf("check models: %v", err)
	}
}

func TestPodConversion(t *testing.T) {
	share := Pod{Name: "s", CPUMilli: 6000, MemoryMiB: 1024, NumGPU: 1, GPUMilli: 460, GPUSpec: []string{"T4"}}
	if g := share.GPURequest(); g.SharedMilli != 460 || g.Count != 0 || g.Models[0] != "T4" {
		t.Fatalf("shared pod: %+v", g)
	}
	whole := Pod{Name: "w", NumGPU: 8, GPUMilli: 1000}
	if g := whole.GPURequest(); g.Count != 8 || g.SharedMilli != 0 {
		t.Fatalf("whole pod: %+v", g)
	}
	if r := share.Request("id", 1); r.Demand[place.DimMemory] != 1024<<20 || r.Demand[place.DimCPU] != 6000 {
		t.Fatalf("request demand %+v", r.Demand)
	}
}

func TestLoadRealTraces(t *testing.T) {
	dir := openbdata.Dir(t)
	for _, name := range Traces {
		tr, err := LoadTrace(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		gpus := 0
		for _, n := range tr.Nodes {
			gpus += n.GPUs
		}
		if len(tr.Nodes) != 1213 || gpus != 6212 {
			t.Fatalf("%s: %d nodes, %d GPUs; the README says 1213 and 6212", name, len(tr.Nodes), gpus)
		}
		if name == "default" && len(tr.Pods) != 8152 {
			t.Fatalf("default: %d pods, want 8152", len(tr.Pods))
		}
	}
}

// TestShortReplay runs one seed of the default trace and checks the
// invariants of the result: nothing over capacity, allocation within
// bounds and equal to what the cluster holds, a monotone curve, and the
// same answer twice.
func TestShortReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("replays 1213 hosts")
	}
	tr, err := LoadTrace(openbdata.Dir(t), "default")
	if err != nil {
		t.Fatal(err)
	}
	for _, strat := range []place.Strategy{place.StrategyDefault, place.StrategyBestFit} {
		res, err := Run(tr, strat, 42)
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, tr, res)
		again, err := Run(tr, strat, 42)
		if err != nil {
			t.Fatal(err)
		}
		if again.GPUMilliAllocated != res.GPUMilliAllocated || again.Placed != res.Placed || !reflect.DeepEqual(again.Final, res.Final) {
			t.Fatalf("%s: two runs with seed 42 differ", strat)
		}
		t.Logf("%s seed 42: %.1f%% of GPU allocated, %d placed, %d failed, fragmented at 90%%: %.1f%%",
			strat, 100*res.Allocated, res.Placed, res.Failed, 100*res.FragAt90)
	}
}

func checkResult(t *testing.T, tr Trace, res Result) {
	t.Helper()
	if res.Allocated <= 0.5 || res.Allocated > 1 {
		t.Fatalf("allocated share %.3f out of bounds", res.Allocated)
	}
	if res.Placed+res.Failed != res.Arrived || len(res.Curve) != res.Arrived || len(res.Final.Placements) != res.Placed {
		t.Fatalf("counts disagree: %d placed + %d failed vs %d arrived, %d curve points, %d final placements",
			res.Placed, res.Failed, res.Arrived, len(res.Curve), len(res.Final.Placements))
	}
	last := res.Curve[len(res.Curve)-1]
	if last.AllocatedGPUMilli != res.GPUMilliAllocated || float64(last.ArrivedGPUMilli) > 1.3*float64(res.GPUMilliCapacity) {
		t.Fatalf("curve end %+v vs allocated %d, capacity %d", last, res.GPUMilliAllocated, res.GPUMilliCapacity)
	}
	for i := 1; i < len(res.Curve); i++ {
		a, b := res.Curve[i-1], res.Curve[i]
		if b.ArrivedGPUMilli < a.ArrivedGPUMilli || b.AllocatedGPUMilli < a.AllocatedGPUMilli || b.AllocatedGPUMilli > b.ArrivedGPUMilli {
			t.Fatalf("curve not monotone at %d: %+v -> %+v", i, a, b)
		}
	}
	// Recount every host from the final placements.
	nodes := map[string]Node{}
	for _, n := range tr.Nodes {
		nodes[n.Name] = n
	}
	cpu := map[string]int64{}
	mem := map[string]int64{}
	gpu := map[string][]int64{}
	var gpuSum int64
	for _, p := range res.Final.Placements {
		n := nodes[p.Host]
		cpu[p.Host] += p.Demand[place.DimCPU]
		mem[p.Host] += p.Demand[place.DimMemory]
		if gpu[p.Host] == nil {
			gpu[p.Host] = make([]int64, n.GPUs)
		}
		per := int64(1000)
		if p.GPU.SharedMilli > 0 {
			per = p.GPU.SharedMilli
		}
		for _, i := range p.GPUIndices {
			gpu[p.Host][i] += per
			gpuSum += per
		}
		if len(p.GPU.Models) > 0 && !contains(p.GPU.Models, n.Model) {
			t.Fatalf("%s on %s: model %s not in %v", p.ID, p.Host, n.Model, p.GPU.Models)
		}
	}
	for h, n := range nodes {
		if cpu[h] > n.CPUMilli || mem[h] > n.MemoryMiB<<20 {
			t.Fatalf("host %s over capacity: cpu %d/%d memory %d/%d", h, cpu[h], n.CPUMilli, mem[h], n.MemoryMiB<<20)
		}
		for i, g := range gpu[h] {
			if g > 1000 {
				t.Fatalf("host %s gpu %d holds %d milli", h, i, g)
			}
		}
	}
	if gpuSum != res.GPUMilliAllocated {
		t.Fatalf("placements hold %d milli-GPU, result says %d", gpuSum, res.GPUMilliAllocated)
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func FuzzParsePods(f *testing.F) {
	f.Add(podHeader + "p0,12000,16384,1,1000,,LS,Running,0,12537496,0\np1,6000,12288,1,460,T4|P100,LS,Running,427061,12902960,427061\n")
	f.Add("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,8,1000\n")
	f.Add(podHeader + "p0,\"1\",1,0,0,,,,,,\n")
	f.Fuzz(func(t *testing.T, in string) {
		pods, err := ParsePods("f.csv", strings.NewReader(in))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.File != "f.csv" || pe.Line < 1 {
				t.Fatalf("error %v does not locate the problem", err)
			}
			return
		}
		for _, p := range pods {
			if p.CPUMilli < 0 || p.MemoryMiB < 0 || p.GPUMilli < 0 || p.GPUMilli > 1000 || (p.NumGPU > 1 && p.GPUMilli != 1000) || p.Name == "" {
				t.Fatalf("accepted a bad pod %+v", p)
			}
			g := p.GPURequest()
			if g.SharedMilli >= 1000 || (g.Count > 0 && g.SharedMilli > 0) {
				t.Fatalf("bad conversion %+v -> %+v", p, g)
			}
		}
	})
}

func FuzzParseNodes(f *testing.F) {
	f.Add("sn,cpu_milli,memory_mib,gpu,model\nopenb-node-0000,64000,262144,2,P100\nn1,1,1,0,\n")
	f.Fuzz(func(t *testing.T, in string) {
		nodes, err := ParseNodes("n.csv", strings.NewReader(in))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a ParseError", err)
			}
			return
		}
		if _, err := place.New(place.Snapshot{Hosts: Hosts(nodes)}, place.Profile{}); err != nil {
			t.Fatalf("accepted nodes the placement core rejects: %v", err)
		}
	})
}

// A pod list path that names an endless device stops at the limit, named.
func TestLoadPodsBoundsWhatItReads(t *testing.T) {
	if _, err := LoadPods("/dev/zero"); err == nil || !strings.Contains(err.Error(), "a line longer than") {
		t.Errorf("/dev/zero: %v, want the row limit named", err)
	}
}
