package server

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
)

// Extended resources and GPUs a host registers are what placement fits
// jobs' requests against.
func TestExtendedResourcesAndGPUsBoundPlacement(t *testing.T) {
	tb := startBrain(t, t.TempDir(), newClock(), testLiveness)
	ctx := context.Background()
	var agents []*simAgent
	for i, extra := range []map[string]int64{{"fpga": 2}, nil} {
		a := newSimAgent(t, tb.url, fmt.Sprintf("host-%d", i), fmt.Sprintf("node-%d", i), nil)
		capacity := map[string]int64{"cpu": 8000, "memory": 16 * gib}
		gpus, model := int32(0), ""
		for k, v := range extra {
			capacity[k] = v
			gpus, model = 2, "NVIDIA A100-SXM4-40GB"
		}
		_, err := a.client.Register(ctx, connect.NewRequest(&brainv1.RegisterRequest{
			NodeId: a.nodeID, Name: a.name, Capacity: &brainv1.Resources{Amounts: capacity}, Gpus: gpus, GpuModel: model,
		}))
		if err != nil {
			t.Fatal(err)
		}
		agents = append(agents, a.join(t))
	}
	submit(t, tb, []byte("version: 1\napps:\n  - {name: accel, cpu: 1, memory: 1Gi, extended: {fpga: 1}, image: b}\n"+
		"  - {name: train, cpu: 1, memory: 1Gi, gpu: {count: 2}, image: b}\n"+
		"requests:\n  - {app: accel, count: 3}\n  - {app: train, count: 1}\n"))
	p, st := stored(t, tb)
	if p["accel-0"] != "host-0" || p["accel-1"] != "host-0" || p["accel-2"] != "" {
		t.Errorf("accel placed %v: want two on the host with 2 fpga, the third pending", p)
	}
	if p["train-0"] != "host-0" {
		t.Errorf("train placed on %q, want the GPU host", p["train-0"])
	}
	for _, pl := range st.Placements {
		if pl.Job == "train" && len(pl.GPUIndices) != 2 {
			t.Errorf("train holds GPUs %v, want both", pl.GPUIndices)
		}
	}
	if j := getJob(t, tb, "accel"); !strings.Contains(j.GetPendingReason(), "fpga") {
		t.Errorf("pending reason %q does not name the resource short", j.GetPendingReason())
	}
	agentsAgree(t, tb, agents)
}
