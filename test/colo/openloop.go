package main

import (
	"context"
	"errors"
	"sync"
	"time"
)

// clock is the driver's time source; tests pass a fake to check the
// schedule without sleeping.
type clock interface {
	Now() time.Time
	// Sleep returns after d or when ctx ends, whichever is first.
	Sleep(ctx context.Context, d time.Duration)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) Sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// schedule is an open-loop arrival plan: request i is due at start +
// i/rate, whatever became of the requests before it. Measuring latency
// from these times, not from when a request could finally be sent, is
// what keeps a stalled server from hiding its stall (coordinated
// omission): requests that waited behind it carry the wait.
type schedule struct {
	start      time.Time
	ratePerSec float64
}

func (s schedule) at(i int64) time.Time {
	return s.start.Add(time.Duration(float64(i) * float64(time.Second) / s.ratePerSec))
}

// due is how many requests are due at now (indices 0..due-1).
func (s schedule) due(now time.Time) int64 {
	if now.Before(s.start) {
		return 0
	}
	n := int64(now.Sub(s.start).Seconds()*s.ratePerSec) + 1
	// Float rounding may put the last one a nanosecond off: trust at().
	for n > 0 && s.at(n-1).After(now) {
		n--
	}
	for !s.at(n).After(now) {
		n++
	}
	return n
}

// ticket is one request handed from the dispatcher to a worker.
type ticket struct {
	index int64
	at    time.Time     // scheduled send time
	lag   time.Duration // how late the dispatcher handed it out: driver starvation
}

// dispatch hands out every request of s scheduled before until, in order,
// each as soon as it is due, and closes out. When the dispatcher wakes
// late (its CPU was taken), all requests due by then go out at once, each
// with its lag recorded. It stops early when ctx ends.
func dispatch(ctx context.Context, clk clock, s schedule, until time.Time, out chan<- ticket) {
	defer close(out)
	var next int64
	for ctx.Err() == nil {
		at := s.at(next)
		if !at.Before(until) {
			return
		}
		now := clk.Now()
		if at.After(now) {
			clk.Sleep(ctx, at.Sub(now))
			continue
		}
		for n := s.due(now); next < n; next++ {
			at := s.at(next)
			if !at.Before(until) {
				return
			}
			select {
			case out <- ticket{index: next, at: at, lag: now.Sub(at)}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// doer sends one request and waits for its answer. Each worker owns one
// doer (one connection), so a doer need not be safe for concurrent use.
type doer interface {
	do(ctx context.Context, index int64) error
}

// outcome is one request's record.
type outcome struct {
	at      time.Time
	lag     time.Duration // dispatcher lateness
	latency time.Duration // answer time - scheduled time
	err     error
}

// runOpenLoop sends requests at ratePerSec from start until end through
// one worker per doer, and returns the outcomes of those scheduled at or
// after measureFrom (earlier ones are warm-up). A request still unanswered
// drain after end is counted as an error with the latency it had reached.
func runOpenLoop(ctx context.Context, clk clock, doers []doer, ratePerSec float64, start, measureFrom, end time.Time, drain time.Duration) []outcome {
	s := schedule{start: start, ratePerSec: ratePerSec}
	// A deep queue keeps the dispatcher from blocking on busy workers: a
	// slow server must show up as latency, not as dispatcher lag.
	tickets := make(chan ticket, 1<<16)
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go dispatch(dctx, clk, s, end, tickets)

	var mu sync.Mutex
	var out []outcome
	record := func(o outcome) {
		if o.at.Before(measureFrom) {
			return
		}
		mu.Lock()
		out = append(out, o)
		mu.Unlock()
	}
	deadline := end.Add(drain)
	rctx, rcancel := context.WithDeadline(ctx, deadline)
	defer rcancel()
	var wg sync.WaitGroup
	for _, d := range doers {
		wg.Go(func() {
			for t := range tickets {
				if rctx.Err() != nil {
					record(outcome{at: t.at, lag: t.lag, latency: deadline.Sub(t.at), err: errUnanswered})
					continue
				}
				err := d.do(rctx, t.index)
				record(outcome{at: t.at, lag: t.lag, latency: clk.Now().Sub(t.at), err: err})
			}
		})
	}
	wg.Wait()
	return out
}

var errUnanswered = errors.New("no answer before the drain deadline")
