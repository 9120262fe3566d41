package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sluicehq/sluice/brain/server"
	"github.com/sluicehq/sluice/brain/store"
)

// failoverKills is how many leaders the failover benchmark kills.
const failoverKills = 20

// BenchmarkFailover kills the leader of three brain processes with
// SIGKILL failoverKills times while a client keeps submitting jobs, and
// measures from the kill to the first placement the next leader commits
// (seen in etcd: a transaction with a placement, stamped with another
// epoch). The lease is server.DefaultLeaseTTL. Run with -benchtime=1x:
// one iteration is all the kills.
//
//	go test -run '^$' -bench Failover -benchtime=1x ./cmd/sluice-brain/
func BenchmarkFailover(b *testing.B) {
	for range b.N {
		c := newHACluster(b, 3)
		startAgents(b, c.urls(), 3)
		s := newSubmitter(c.urls())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// A steady stream of new jobs, so the next leader has work the
		// moment it leads.
		go func() {
			for i := 0; ctx.Err() == nil; i++ {
				s.submit(ctx, fmt.Sprintf("f%d", i), i)
			}
		}()
		var took []time.Duration
		for k := range failoverKills {
			old := c.leader(time.Minute)
			oldEpoch := strconv.FormatInt(c.epoch(), 10)
			now, err := c.cli.Get(ctx, "failover")
			if err != nil {
				b.Fatal(err)
			}
			wctx, wcancel := context.WithTimeout(ctx, time.Minute)
			w := c.cli.Watch(wctx, strings.TrimSuffix(store.DefaultPrefix, "/"), clientv3.WithPrefix(), clientv3.WithRev(now.Header.Revision+1))
			c.kill(old)
			t0 := time.Now()
			var t1 time.Time
			for wr := range w {
				placed, by := false, ""
				for _, ev := range wr.Events {
					key := string(ev.Kv.Key)
					if strings.HasPrefix(key, store.DefaultPrefix+"placements/") && ev.Type == clientv3.EventTypePut {
						placed = true
					}
					if key == store.WriterKey("") {
						by = string(ev.Kv.Value)
					}
				}
				if placed && by != "" && by != oldEpoch {
					t1 = time.Now()
					break
				}
			}
			wcancel()
			if t1.IsZero() {
				b.Fatalf("kill %d: no placement by a new leader within a minute", k)
			}
			took = append(took, t1.Sub(t0))
			c.start(old)
			c.leader(time.Minute)
		}
		cancel()
		slices.Sort(took)
		p := func(q float64) time.Duration { return took[min(len(took)-1, int(q*float64(len(took))))] }
		b.ReportMetric(p(0.5).Seconds(), "p50-s")
		b.ReportMetric(p(0.99).Seconds(), "p99-s")
		b.ReportMetric(took[0].Seconds(), "min-s")
		b.Logf("lease %s, %d kills: p50 %s p99 %s min %s max %s", server.DefaultLeaseTTL, len(took), p(0.5), p(0.99), took[0], took[len(took)-1])
	}
}
