package main

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock advances only when the dispatcher sleeps; oversleep adds a
// delay to chosen sleeps, as a starved process would see.
type fakeClock struct {
	mu        sync.Mutex
	now       time.Time
	sleeps    int
	oversleep map[int]time.Duration // sleep number -> extra delay
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(_ context.Context, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d + c.oversleep[c.sleeps])
	c.sleeps++
}

func TestScheduleMath(t *testing.T) {
	t0 := time.Unix(100, 0)
	s := schedule{start: t0, ratePerSec: 1000}
	if got := s.at(3); !got.Equal(t0.Add(3 * time.Millisecond)) {
		t.Errorf("at(3) = %v, want start+3ms", got.Sub(t0))
	}
	for _, tc := range []struct {
		now  time.Duration
		want int64
	}{{-time.Millisecond, 0}, {0, 1}, {999 * time.Microsecond, 1}, {time.Millisecond, 2}, {2500 * time.Microsecond, 3}, {time.Second, 1001}} {
		if got := s.due(t0.Add(tc.now)); got != tc.want {
			t.Errorf("due(start%+v) = %d, want %d", tc.now, got, tc.want)
		}
	}
	// A rate whose interval is not a whole number of nanoseconds.
	s3 := schedule{start: t0, ratePerSec: 3}
	if got := s3.due(t0.Add(time.Second)); got != 4 {
		t.Errorf("3/s: due(start+1s) = %d, want 4 (0, 1/3, 2/3, 1 s)", got)
	}
}

func collect(ch <-chan ticket) []ticket {
	var out []ticket
	for tk := range ch {
		out = append(out, tk)
	}
	return out
}

func TestDispatchOnSchedule(t *testing.T) {
	t0 := time.Unix(100, 0)
	clk := &fakeClock{now: t0}
	ch := make(chan ticket, 1000)
	dispatch(context.Background(), clk, schedule{start: t0, ratePerSec: 100}, t0.Add(time.Second), ch)
	got := collect(ch)
	if len(got) != 100 {
		t.Fatalf("%d tickets in 1 s at 100/s, want 100", len(got))
	}
	for i, tk := range got {
		if tk.index != int64(i) || !tk.at.Equal(t0.Add(time.Duration(i)*10*time.Millisecond)) || tk.lag != 0 {
			t.Fatalf("ticket %d = %+v (at start%+v), want index %d at start+%dms, no lag", i, tk, tk.at.Sub(t0), i, 10*i)
		}
	}
}

func TestDispatchRecordsLagWhenStarved(t *testing.T) {
	t0 := time.Unix(100, 0)
	// The first sleep (until request 1 at 10 ms) overshoots by 35 ms: the
	// dispatcher wakes at 45 ms with requests 1..4 due.
	clk := &fakeClock{now: t0, oversleep: map[int]time.Duration{0: 35 * time.Millisecond}}
	ch := make(chan ticket, 1000)
	dispatch(context.Background(), clk, schedule{start: t0, ratePerSec: 100}, t0.Add(100*time.Millisecond), ch)
	got := collect(ch)
	if len(got) != 10 {
		t.Fatalf("%d tickets, want 10: a late dispatcher still sends every scheduled request", len(got))
	}
	wantLag := []time.Duration{0, 35, 25, 15, 5, 0, 0, 0, 0, 0}
	for i, tk := range got {
		if tk.lag != wantLag[i]*time.Millisecond {
			t.Errorf("ticket %d lag %v, want %v", i, tk.lag, wantLag[i]*time.Millisecond)
		}
		if !tk.at.Equal(t0.Add(time.Duration(i) * 10 * time.Millisecond)) {
			t.Errorf("ticket %d scheduled at start%+v: lateness must not move the schedule", i, tk.at.Sub(t0))
		}
	}
}

type countDoer struct{ n int }

func (d *countDoer) do(context.Context, int64) error { d.n++; return nil }

func TestRunOpenLoopMeasuresOnlyTheWindow(t *testing.T) {
	start := time.Now().Add(5 * time.Millisecond)
	ds := []doer{&countDoer{}, &countDoer{}, &countDoer{}}
	// 2000/s: requests every 0.5 ms; warm-up [0, 50 ms) holds 100 of them,
	// the window [50, 150 ms) holds 200, whatever the timing.
	outs := runOpenLoop(context.Background(), realClock{}, ds, 2000, start, start.Add(50*time.Millisecond), start.Add(150*time.Millisecond), 5*time.Second)
	if len(outs) != 200 {
		t.Fatalf("%d outcomes in the window, want 200", len(outs))
	}
	total := 0
	for _, d := range ds {
		total += d.(*countDoer).n
	}
	if total != 300 {
		t.Fatalf("%d requests sent, want 300 (warm-up included)", total)
	}
}

func TestSummarize(t *testing.T) {
	var outs []outcome
	for i := 1; i <= 1000; i++ {
		o := outcome{latency: time.Duration(i) * time.Millisecond, lag: time.Duration(i) * time.Microsecond}
		if i > 990 {
			o.err = errUnanswered
		}
		outs = append(outs, o)
	}
	r := summarize("redis", 100, 10*time.Second, outs)
	if r.P50 != 500*time.Millisecond || r.P99 != 990*time.Millisecond || r.P999 != 999*time.Millisecond {
		t.Errorf("p50/p99/p99.9 = %v/%v/%v, want 500ms/990ms/999ms", r.P50, r.P99, r.P999)
	}
	if r.Errors != 10 || r.FirstError == "" || r.AchievedPerSec != 99 || r.Requests != 1000 {
		t.Errorf("errors %d (%q), achieved %v/s, requests %d; want 10, an error text, 99/s, 1000", r.Errors, r.FirstError, r.AchievedPerSec, r.Requests)
	}
	if r.LagP99 != 990*time.Microsecond || r.LagMax != time.Millisecond {
		t.Errorf("lag p99 %v max %v, want 990µs, 1ms", r.LagP99, r.LagMax)
	}
	if !starved(r, 500*time.Microsecond) || starved(r, time.Millisecond) {
		t.Errorf("starved: lag p99 %v should exceed 500µs and not 1ms", r.LagP99)
	}
	if e := summarize("x", 1, time.Second, nil); e.P99 != 0 || e.Requests != 0 {
		t.Errorf("no outcomes: %+v", e)
	}
}

func TestQuartiles(t *testing.T) {
	for _, tc := range []struct {
		in          []float64
		q1, med, q3 float64
	}{
		{[]float64{5, 1, 4, 2, 3}, 2, 3, 4},
		{[]float64{4, 3, 2, 1}, 1.75, 2.5, 3.25},
		{[]float64{7}, 7, 7, 7},
	} {
		q1, m, q3 := quartiles(tc.in)
		if math.Abs(q1-tc.q1) > 1e-9 || math.Abs(m-tc.med) > 1e-9 || math.Abs(q3-tc.q3) > 1e-9 {
			t.Errorf("quartiles(%v) = %v %v %v, want %v %v %v", tc.in, q1, m, q3, tc.q1, tc.med, tc.q3)
		}
	}
	if q1, _, _ := quartiles(nil); !math.IsNaN(q1) {
		t.Errorf("quartiles(nil) = %v, want NaN", q1)
	}
}

func TestOfflineShareFormula(t *testing.T) {
	// 10 s on 2 CPUs = 20 CPU s. Host busy 17: online 4, loadgen 2,
	// offline 10, so system = 1. Left for offline: 20-4-1-2 = 13.
	w := cpuWindow{capacity: 20, host: 17, online: 4, loadgen: 2, offline: 10}
	if got := w.system(); math.Abs(got-1) > 1e-9 {
		t.Errorf("system = %v, want 1", got)
	}
	if got := w.offlineShare(); math.Abs(got-10.0/13) > 1e-9 {
		t.Errorf("share = %v, want 10/13", got)
	}
	// A spinner's time is neither system nor used: it fills idle time.
	w2 := cpuWindow{capacity: 20, host: 20, online: 4, loadgen: 2, spinner: 13}
	if got := w2.system(); math.Abs(got-1) > 1e-9 {
		t.Errorf("with spinner: system = %v, want 1", got)
	}
	// Online, system and load generator take everything: undefined.
	if got := (cpuWindow{capacity: 20, host: 20, online: 15, loadgen: 5}).offlineShare(); !math.IsNaN(got) {
		t.Errorf("nothing left: share = %v, want NaN", got)
	}
}

// manualClock moves only when the test sets it; Sleep blocks until then.
type manualClock struct {
	mu   sync.Mutex
	cond *sync.Cond
	now  time.Time
}

func newManualClock(t0 time.Time) *manualClock {
	c := &manualClock{now: t0}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Sleep(ctx context.Context, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for target := c.now.Add(d); c.now.Before(target) && ctx.Err() == nil; {
		c.cond.Wait()
	}
}

func (c *manualClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
	c.cond.Broadcast()
}

// stallDoer blocks request 0 until released; the others answer at once.
type stallDoer struct{ entered, release chan struct{} }

func (d *stallDoer) do(_ context.Context, i int64) error {
	if i == 0 {
		close(d.entered)
		<-d.release
	}
	return nil
}

// TestRunOpenLoopNoCoordinatedOmission: one connection, 100 requests/s,
// the service stalls on the first request for 100 ms. The four requests
// due meanwhile wait behind it and are charged that wait: latency runs
// from their scheduled time, not from when the connection was free.
func TestRunOpenLoopNoCoordinatedOmission(t *testing.T) {
	t0 := time.Now()
	clk := newManualClock(t0)
	d := &stallDoer{entered: make(chan struct{}), release: make(chan struct{})}
	done := make(chan []outcome)
	go func() {
		done <- runOpenLoop(context.Background(), clk, []doer{d}, 100, t0, t0, t0.Add(50*time.Millisecond), time.Hour)
	}()
	<-d.entered
	clk.set(t0.Add(100 * time.Millisecond)) // requests 1..4 (10..40 ms) are due now
	close(d.release)
	outs := <-done
	if len(outs) != 5 {
		t.Fatalf("%d outcomes, want 5 (0..40 ms)", len(outs))
	}
	slices.SortFunc(outs, func(a, b outcome) int { return a.at.Compare(b.at) })
	for i, o := range outs {
		want := time.Duration(100-10*i) * time.Millisecond
		if o.latency != want || o.err != nil {
			t.Errorf("request %d: latency %v (err %v), want %v: the time it waited behind the stall counts", i, o.latency, o.err, want)
		}
	}
}
