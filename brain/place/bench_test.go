package place

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchCluster builds 10,000 hosts (half with 8 GPUs) holding 100,000
// containers of 1,000 apps, with 300 anti-affinity rules and per-host caps.
func benchCluster(b *testing.B, strat Strategy, sample int) (*Cluster, []string) {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	const nHosts, nPods, nApps = 10000, 100000, 1000
	hosts := make([]Host, nHosts)
	for i := range hosts {
		hosts[i] = Host{
			Name:     fmt.Sprintf("host-%05d", i),
			Labels:   map[string]string{"rack": fmt.Sprintf("r%03d", i/40)},
			Capacity: Resources{DimCPU: 96000, DimMemory: 384 << 30, DimDisk: 2 << 40},
		}
		if i%2 == 0 {
			hosts[i].GPUs, hosts[i].GPUModel = 8, []string{"T4", "V100", "A100"}[i%3]
		}
	}
	apps := make([]string, nApps)
	for i := range apps {
		apps[i] = fmt.Sprintf("app-%04d", i)
	}
	prof := Profile{Strategy: strat, SampleFeasible: sample}
	for i := 0; i < 300; i++ {
		prof.AntiAffinity = append(prof.AntiAffinity, AntiAffinity{App: apps[r.IntN(100)], Other: apps[r.IntN(100)], MaxOther: r.IntN(2)})
	}
	for i := 0; i < 100; i++ {
		prof.AntiAffinity = append(prof.AntiAffinity, AntiAffinity{App: apps[i], Other: apps[i], MaxOther: 1})
	}
	c, err := New(Snapshot{Hosts: hosts}, prof)
	if err != nil {
		b.Fatal(err)
	}
	// Fill through Add (what already runs), round robin with jitter,
	// keeping clear of the rules so the snapshot is consistent.
	for i := 0; i < nPods; i++ {
		app := apps[100+r.IntN(nApps-100)]
		h := (i*7 + r.IntN(5)) % nHosts
		p := Placement{Request: Request{ID: fmt.Sprintf("pod-%06d", i), App: app, Priority: r.IntN(10),
			Demand: Resources{DimCPU: int64(500 * (1 + r.IntN(8))), DimMemory: int64(1+r.IntN(16)) << 30}}, Host: hosts[h].Name}
		if hosts[h].GPUs > 0 && r.IntN(3) == 0 {
			p.GPU.SharedMilli = int64(100 * (1 + r.IntN(5)))
			p.GPUIndices = []int{r.IntN(8)}
		}
		err := c.Add(p)
		for g := 0; err != nil && p.GPU.SharedMilli > 0 && g < 8; g++ {
			p.GPUIndices = []int{g} // that device is full: try the others
			err = c.Add(p)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	return c, apps
}

// BenchmarkPlace measures placements per second at 10k hosts / 100k
// containers with anti-affinity: each iteration places one request (an
// app under the rules) and removes it again, so the cluster stays the same
// size. Run with -cpu 1.
func BenchmarkPlace(b *testing.B) {
	for _, bc := range []struct {
		strat  Strategy
		sample int
	}{
		{StrategyDefault, 64}, {StrategyDefault, 16}, {StrategyDefault, 0}, {StrategyBestFit, 64}, {StrategySpread, 64}, {StrategyBestFit, 0},
	} {
		b.Run(fmt.Sprintf("%s/sample=%d", bc.strat, bc.sample), func(b *testing.B) {
			c, apps := benchCluster(b, bc.strat, bc.sample)
			r := rand.New(rand.NewPCG(3, 4))
			reqs := make([]Request, 1024)
			for i := range reqs {
				reqs[i] = Request{ID: fmt.Sprintf("new-%d", i), App: apps[r.IntN(100)], Priority: 5,
					Demand: Resources{DimCPU: int64(500 * (1 + r.IntN(8))), DimMemory: 4 << 30}, Seed: uint64(i)}
				switch i % 4 {
				case 0:
					reqs[i].GPU.SharedMilli = 250
				case 1:
					reqs[i].GPU.Count = 1
				}
			}
			placed := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rq := reqs[i%len(reqs)]
				d, err := c.Place(rq)
				if err != nil {
					b.Fatal(err)
				}
				if d.Placed {
					placed++
					if _, err := c.Remove(rq.ID); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			if placed < b.N*9/10 {
				b.Fatalf("only %d of %d requests placed", placed, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "placements/s")
		})
	}
}
