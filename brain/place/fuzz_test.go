package place

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// FuzzPlace feeds arbitrary requests (the brain's user input) to a small
// random cluster: Place must either reject them with an error and change
// nothing, or decide, and every placement it makes must satisfy the
// brute-force oracle.
func FuzzPlace(f *testing.F) {
	f.Add(uint64(1), int64(1000), int64(1<<30), 0, int64(0), "a0", "g0", 3, true, int64(500))
	f.Add(uint64(2), int64(-1), int64(0), 2, int64(0), "", "", 0, false, int64(0))
	f.Add(uint64(3), int64(0), int64(0), 0, int64(999), "a1", "g1", 1, true, int64(-3))
	f.Fuzz(func(t *testing.T, seed uint64, cpu, mem int64, count int, share int64, app, group string, prio int, preempt bool, curvePeak int64) {
		r := rand.New(rand.NewPCG(seed, 3))
		hosts, prof := randomCluster(r)
		c, err := New(Snapshot{Hosts: hosts}, prof)
		if err != nil {
			t.Fatal(err)
		}
		o := &oracle{hosts: hosts, prof: prof}
		for i := 0; i < 10; i++ {
			checkOne(t, "warm-up", c, o, randomRequest(r, i))
		}
		req := Request{ID: "fuzz", App: app, Group: group, Priority: prio, Preempt: preempt,
			Demand: Resources{DimCPU: cpu, DimMemory: mem}, GPU: GPURequest{Count: count, SharedMilli: share}}
		if curvePeak != 0 {
			pts := make([]int64, curvePoints)
			pts[int(seed%curvePoints)] = curvePeak
			req.Curves = map[string][]int64{DimCPU: pts}
			delete(req.Demand, DimCPU)
		}
		before := placementKeys(c.Snapshot().Placements)
		if _, err := c.Try(req); err != nil {
			if after := placementKeys(c.Snapshot().Placements); !slices.Equal(before, after) {
				t.Fatalf("a rejected request changed the cluster")
			}
			return
		}
		checkOne(t, "fuzzed request", c, o, req)
	})
}
