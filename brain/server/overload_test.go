package server

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Under overload the brain sheds heartbeat detail first, then liveness,
// and while liveness is shed it marks no host down; placement goes on.
func TestOverloadShedsDetailThenLivenessAndMarksNoHostDown(t *testing.T) {
	clk := newClock()
	tb := startBrain(t, t.TempDir(), clk, testLiveness) // TTL 15 s
	ctx := context.Background()
	agents := map[string]*simAgent{}
	for _, name := range []string{"a", "b", "c"} {
		a := newSimAgent(t, tb.url, name, "node-"+name, nil)
		if err := a.register(ctx, 8000, 16*gib, ""); err != nil {
			t.Fatal(err)
		}
		if err := a.heartbeat(ctx, 500, gib); err != nil {
			t.Fatal(err)
		}
		agents[name] = a
	}
	b := tb.brain
	b.shed.cfg = Overload{DetailInFlight: 1, LivenessInFlight: 2}
	start := clk.Now()
	clk.Advance(14 * time.Second)

	// Hold the brain's lock, as a brain that has fallen behind would:
	// a's heartbeat waits with one RPC in flight (nothing shed), b's with
	// two (detail shed), c's is the third and is shed whole, answered at
	// once.
	b.mu.Lock()
	errs := make(chan error, 2)
	go func() { errs <- agents["a"].heartbeat(ctx, 1000, 2*gib) }()
	eventually(t, "a's heartbeat in flight", func() bool { return b.shed.inFlight.Load() == 1 })
	go func() { errs <- agents["b"].heartbeat(ctx, 2000, 3*gib) }()
	eventually(t, "b's heartbeat in flight", func() bool { return b.shed.inFlight.Load() == 2 })
	if err := agents["c"].heartbeat(ctx, 3000, 4*gib); err != nil {
		b.mu.Unlock()
		t.Fatalf("a shed heartbeat is answered, not failed: %v", err)
	}
	if got := testutil.ToFloat64(b.shed.level); got != float64(shedLiveness) {
		t.Errorf("overload level %v, want %d", got, shedLiveness)
	}
	b.mu.Unlock()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if d, l := testutil.ToFloat64(b.shed.shed.WithLabelValues("heartbeat_detail")), testutil.ToFloat64(b.shed.shed.WithLabelValues("liveness")); d != 1 || l != 1 {
		t.Errorf("shed detail %v, liveness %v; want 1 and 1", d, l)
	}
	type seen struct {
		lastSeen     time.Time
		lentCPUMilli int64
	}
	b.mu.Lock()
	la, lb, lc := seen{b.live["a"].lastSeen, b.live["a"].lentCPUMilli}, seen{b.live["b"].lastSeen, b.live["b"].lentCPUMilli}, seen{b.live["c"].lastSeen, b.live["c"].lentCPUMilli}
	b.mu.Unlock()
	now := clk.Now()
	switch {
	case !la.lastSeen.Equal(now) || la.lentCPUMilli != 1000:
		t.Errorf("a (nothing shed): last seen %v lends %d, want %v and 1000", la.lastSeen, la.lentCPUMilli, now)
	case !lb.lastSeen.Equal(now) || lb.lentCPUMilli != 500:
		t.Errorf("b (detail shed): last seen %v lends %d, want %v and the old 500", lb.lastSeen, lb.lentCPUMilli, now)
	case !lc.lastSeen.Equal(start) || lc.lentCPUMilli != 500:
		t.Errorf("c (shed whole): last seen %v lends %d, want the old %v and 500", lc.lastSeen, lc.lentCPUMilli, start)
	}

	// 20 s after c was last recorded (TTL 15 s) it is not marked down: its
	// heartbeat was dropped by the brain, not missed by the host.
	clk.Advance(6 * time.Second)
	if down := markDownNow(b); len(down) != 0 {
		t.Errorf("hosts marked down while their heartbeats were being shed: %v", down)
	}
	// Once the TTL has passed since the last shed heartbeat too, silent
	// hosts go down as usual.
	clk.Advance(10 * time.Second)
	eventually(t, "silent hosts down after the TTL", func() bool {
		st, err := tb.store.Load(ctx)
		return err == nil && st.Hosts["a"].Down && st.Hosts["b"].Down && st.Hosts["c"].Down
	})
}

// markDownNow runs the liveness check on the brain's current state and
// returns the hosts it would mark down.
func markDownNow(b *Brain) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := &work{hosts: maps.Clone(b.st.Hosts), live: b.liveSnapshot(), dirty: map[string]bool{}, dirtyHosts: map[string]bool{}}
	b.markDown(w)
	var down []string
	for name, h := range w.hosts {
		if h.Down && !b.st.Hosts[name].Down {
			down = append(down, name)
		}
	}
	return down
}
