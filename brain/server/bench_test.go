package server

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
)

// benchFleet registers n hosts through the handlers (no network).
func benchFleet(b *testing.B, tb *testBrain, n int) {
	b.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_, err := tb.brain.Register(ctx, connect.NewRequest(&brainv1.RegisterRequest{
				NodeId: fmt.Sprintf("node-%d", i), Name: fmt.Sprintf("sim-%04d", i), FailureDomain: fmt.Sprintf("rack-%d", i%20),
				Capacity: &brainv1.Resources{Amounts: map[string]int64{"cpu": 32000, "memory": 128 << 30}},
			}))
			if err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
}

// BenchmarkSubmitConcurrent submits one-replica jobs from 1,000 concurrent
// callers against 1,000 hosts on a real embedded etcd; each submission
// returns once its placement is committed. Reports placements/s.
func BenchmarkSubmitConcurrent(b *testing.B) {
	tb := startBrain(b, b.TempDir(), nil, DefaultLiveness())
	benchFleet(b, tb, 1000)
	ctx := context.Background()
	const clients = 1000
	b.ResetTimer()
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				file := fmt.Sprintf("version: 1\napps:\n  - {name: j%d, cpu: 100m, memory: 64Mi, image: busybox}\nrequests:\n  - {app: j%d, count: 1}\n", i, i)
				if _, err := tb.brain.SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: []byte(file)})); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for i := range b.N {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "placements/s")
	logPasses(b, tb)
}

func logPasses(b *testing.B, tb *testBrain) {
	mfs, _ := tb.reg.Gather()
	for _, mf := range mfs {
		switch mf.GetName() {
		case "sluice_brain_reconcile_passes_total":
			b.Logf("passes %v", mf.GetMetric()[0].GetCounter().GetValue())
		case "sluice_brain_etcd_txn_seconds":
			for _, m := range mf.GetMetric() {
				h := m.GetHistogram()
				b.Logf("txn %v: n=%d sum=%.3fs", m.GetLabel(), h.GetSampleCount(), h.GetSampleSum())
			}
		}
	}
}
