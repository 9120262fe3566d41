// Command rdtbench measures what cache and memory-bandwidth partitioning
// does for an online service's tail latency (make bench-rdt).
//
// On a host with resctrl it runs redis (online) in three phases: alone,
// beside a cache-thrashing stress-ng job without partitioning, and beside
// the same job with Sluice's dynamic partitioning (rdt.Decide driving
// resctrl.Enforcer from redis-benchmark's p99 and the MBM counters), and
// prints each phase's p99. On a host without resctrl it refuses and says
// why. With -fake it runs the whole path against a fake resctrl mount
// whose scripted counters and online latency respond to the schemata
// written: signal -> decision -> schemata -> counters -> decision, and
// reports the decision latency.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// realConfig sets the run on an RDT host.
type realConfig struct {
	Root     string
	Slices   int
	Requests int
	Stress   string
	Target   time.Duration
	Log      *slog.Logger
}

func main() {
	fake := flag.Bool("fake", false, "run against a fake resctrl mount with scripted counters")
	root := flag.String("resctrl", "/sys/fs/resctrl", "resctrl mount point (real mode)")
	slices := flag.Int("slices", 20, "redis-benchmark runs per phase (real mode)")
	requests := flag.Int("requests", 50000, "requests per redis-benchmark run (real mode)")
	stressArgs := flag.String("stress", "--cache 2", "stress-ng arguments of the offline job (real mode)")
	target := flag.Duration("target", 2*time.Millisecond, "online p99 target that judges harm")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if *fake {
		rep, err := runFake(fakeConfig{Target: *target, Log: log})
		if err != nil {
			fmt.Fprintln(os.Stderr, "rdtbench:", err)
			os.Exit(1)
		}
		fmt.Print(rep.String())
		return
	}
	err := runReal(ctx, realConfig{Root: *root, Slices: *slices, Requests: *requests, Stress: *stressArgs, Target: *target, Log: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "rdtbench:", err)
		os.Exit(2)
	}
}
