package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The stalls subcommand asks whether this machine takes a CPU away from
// the guest when the guest's other CPUs are busy, which no guest signal
// shows when the hypervisor reports no steal time:
//
//	go run ./test/colo stalls -cpu 0 -duration 10s -rounds 4
//
// A probe thread pinned to -cpu reads the monotonic clock in a tight loop
// for -duration and records every gap between two reads (normally tens of
// nanoseconds; an interrupt is microseconds; a gap of milliseconds is time
// the CPU did not run the guest). It runs with every other CPU idle and
// with every other CPU busy (a pinned busy loop each), alternating which
// comes first from round to round, and prints both.
//
// The probe is one goroutine on a locked thread; the Go runtime would
// preempt it every 10 ms (a signal and a thread hand-off, themselves
// gaps), so the subcommand re-executes itself with asynchronous
// preemption off.

// gapBounds are the lower edges of the gap histogram's buckets.
var gapBounds = [...]time.Duration{
	20 * time.Microsecond, 100 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 4 * time.Millisecond, 10 * time.Millisecond,
}

// gapHist counts gaps between clock reads of at least gapBounds[0], and
// the time they lost, per bucket.
type gapHist struct {
	count [len(gapBounds)]int
	lost  [len(gapBounds)]time.Duration
	max   time.Duration
	span  time.Duration // the probe's whole run
}

func (h *gapHist) add(gap time.Duration) {
	i := len(gapBounds) - 1
	for i >= 0 && gap < gapBounds[i] {
		i--
	}
	if i < 0 {
		return
	}
	h.count[i]++
	h.lost[i] += gap
	h.max = max(h.max, gap)
}

// atLeast sums the buckets from the one whose lower edge is d.
func (h gapHist) atLeast(d time.Duration) (n int, lost time.Duration) {
	for i, b := range gapBounds {
		if b >= d {
			n += h.count[i]
			lost += h.lost[i]
		}
	}
	return n, lost
}

type stallsOptions struct {
	cpu      int
	duration time.Duration
	rounds   int
}

func parseStallsFlags(args []string) (stallsOptions, error) {
	var o stallsOptions
	fs := flag.NewFlagSet("stalls", flag.ContinueOnError)
	fs.IntVar(&o.cpu, "cpu", 0, "CPU the probe runs on; every other CPU is idle or busy")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "probe run per condition and round")
	fs.IntVar(&o.rounds, "rounds", 4, "rounds, each probing with the other CPUs idle and busy")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if n := runtime.NumCPU(); o.cpu < 0 || o.cpu >= n || n < 2 {
		return o, fmt.Errorf("-cpu %d: want one of this machine's %d CPUs, and at least two", o.cpu, n)
	}
	if o.duration < 100*time.Millisecond || o.rounds < 1 {
		return o, fmt.Errorf("-duration %v -rounds %d: want at least 100ms and one round", o.duration, o.rounds)
	}
	return o, nil
}

// withoutAsyncPreemption re-executes this binary with the Go runtime's
// asynchronous preemption off, unless it already is; it returns only if
// nothing needs doing or the exec failed.
func withoutAsyncPreemption() error {
	const setting = "asyncpreemptoff=1"
	godebug := os.Getenv("GODEBUG")
	if slices.Contains(strings.Split(godebug, ","), setting) {
		return nil
	}
	if godebug != "" {
		godebug += ","
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	env := append(os.Environ(), "GODEBUG="+godebug+setting)
	return syscall.Exec(self, os.Args, env)
}

// pin locks the calling goroutine to its thread and the thread to cpu.
func pin(cpu int) error {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin to CPU %d: %w", cpu, err)
	}
	return nil
}

// probeGaps reads the clock on cpu for d and returns the gaps it saw.
func probeGaps(cpu int, d time.Duration) (gapHist, error) {
	var h gapHist
	errc := make(chan error, 1)
	go func() {
		defer runtime.UnlockOSThread()
		if err := pin(cpu); err != nil {
			errc <- err
			return
		}
		start := time.Now()
		prev := start
		for {
			now := time.Now()
			h.add(now.Sub(prev))
			prev = now
			if now.Sub(start) >= d {
				break
			}
		}
		h.span = prev.Sub(start)
		errc <- nil
	}()
	return h, <-errc
}

// spinOthers keeps every CPU but cpu busy until stop is called.
func spinOthers(cpu int) (stop func(), err error) {
	var done atomic.Bool
	var wg sync.WaitGroup
	errc := make(chan error, runtime.NumCPU())
	for c := range runtime.NumCPU() {
		if c == cpu {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer runtime.UnlockOSThread()
			err := pin(c)
			errc <- err
			for err == nil && !done.Load() {
			}
		}()
	}
	for range runtime.NumCPU() - 1 {
		if err = <-errc; err != nil {
			break
		}
	}
	stop = func() { done.Store(true); wg.Wait() }
	if err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

func runStalls(ctx context.Context, o stallsOptions, w io.Writer) error {
	if err := withoutAsyncPreemption(); err != nil {
		return fmt.Errorf("re-execute without asynchronous preemption: %w", err)
	}
	runtime.GOMAXPROCS(runtime.NumCPU() + 1)
	type result struct{ n1, n4, max []float64 }
	res := map[string]*result{"idle": {}, "busy": {}}
	fmt.Fprintf(w, "probe on CPU %d, %v per run; gaps between clock reads\n", o.cpu, o.duration)
	fmt.Fprintf(w, "%-5s %-5s %8s %14s %8s %14s %8s\n", "round", "other", ">=0.5ms", "lost", ">=1ms", "lost", "max")
	for r := range o.rounds {
		order := []string{"idle", "busy"}
		if r%2 == 1 {
			order = []string{"busy", "idle"}
		}
		for _, cond := range order {
			if err := ctx.Err(); err != nil {
				return err
			}
			stop := func() {}
			if cond == "busy" {
				var err error
				if stop, err = spinOthers(o.cpu); err != nil {
					return err
				}
			}
			h, err := probeGaps(o.cpu, o.duration)
			stop()
			if err != nil {
				return err
			}
			n05, l05 := h.atLeast(500 * time.Microsecond)
			n1, l1 := h.atLeast(time.Millisecond)
			n4, _ := h.atLeast(4 * time.Millisecond)
			fmt.Fprintf(w, "%-5d %-5s %8d %11.1f ms %8d %11.1f ms %5.2f ms\n", r+1, cond, n05, ms(l05), n1, ms(l1), ms(h.max))
			res[cond].n1 = append(res[cond].n1, float64(n1))
			res[cond].n4 = append(res[cond].n4, float64(n4))
			res[cond].max = append(res[cond].max, ms(h.max))
		}
	}
	fmt.Fprintf(w, "\nmedian [IQR] over %d rounds, per %v: gaps >= 1 ms, gaps >= 4 ms, longest gap (ms)\n", o.rounds, o.duration)
	for _, cond := range []string{"idle", "busy"} {
		fmt.Fprintf(w, "other CPUs %s: %s, %s, %s\n", cond, iqr(res[cond].n1, "%.0f"), iqr(res[cond].n4, "%.0f"), iqr(res[cond].max, "%.2f"))
	}
	return nil
}
