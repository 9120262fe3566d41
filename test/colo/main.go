package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/procfs"

	"github.com/sluicehq/sluice/qos"
)

type options struct {
	agentBin      string
	cgroupRoot    string
	rounds        int
	requests      int
	clients       int
	dataBytes     int
	keyspace      int
	cpuWorkers    int
	vmWorkers     int
	vmBytes       string
	warmup        time.Duration
	highWater     string
	rampPerSecond string
	growHold      string
	runqP99       time.Duration
	keep          bool
}

func main() {
	var o options
	flag.StringVar(&o.agentBin, "agent", "bin/sluice-agent", "sluice-agent binary (make build)")
	flag.StringVar(&o.cgroupRoot, "cgroup-root", "/sys/fs/cgroup", "cgroup mount root (v1 cpu, cpuacct, memory hierarchies below it)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of the three phases; odd rounds run them in reverse order")
	flag.IntVar(&o.requests, "n", 300000, "redis-benchmark requests per test (GET and SET) and phase")
	flag.IntVar(&o.clients, "c", 50, "redis-benchmark parallel connections")
	flag.IntVar(&o.dataBytes, "d", 64, "redis value size in bytes")
	flag.IntVar(&o.keyspace, "r", 100000, "redis-benchmark random keyspace")
	flag.IntVar(&o.cpuWorkers, "cpu", 0, "stress-ng --cpu workers; 0 means one per online CPU")
	flag.IntVar(&o.vmWorkers, "vm", 1, "stress-ng --vm workers")
	flag.StringVar(&o.vmBytes, "vm-bytes", "1g", "stress-ng --vm-bytes per vm worker")
	flag.DurationVar(&o.warmup, "warmup", 8*time.Second, "burners (and agent) run this long before a phase's measurement starts")
	flag.StringVar(&o.highWater, "high-water", "95%", "policy cpu.highWater for the with-Sluice phase")
	flag.StringVar(&o.rampPerSecond, "ramp", "20%", "policy cpu.rampPerSecond")
	flag.StringVar(&o.growHold, "grow-hold", "2s", "policy cpu.growHold")
	flag.DurationVar(&o.runqP99, "runq-p99", 0, "policy cpu.onlineRunqLatencyP99 (0 = off; effective only where the agent measures run-queue latency with eBPF)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp dir (agent log, policy, raw outputs)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		fmt.Fprintf(os.Stderr, "colo: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, log *slog.Logger) (err error) {
	if os.Geteuid() != 0 {
		return fmt.Errorf("must run as root: it makes v1 cgroups and runs sluice-agent (euid %d)", os.Geteuid())
	}
	for _, b := range []string{"redis-server", "redis-benchmark", "stress-ng"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%s not found (Debian packages redis-server, redis-tools, stress-ng): %w", b, err)
		}
	}
	if _, err := os.Stat(o.agentBin); err != nil {
		return fmt.Errorf("sluice-agent binary (run make build, or pass -agent): %w", err)
	}
	if o.rounds < 1 || o.requests < 1000 || o.clients < 1 {
		return fmt.Errorf("-rounds %d, -n %d, -c %d: need at least 1 round, 1000 requests and 1 client", o.rounds, o.requests, o.clients)
	}
	pfs, err := procfs.NewFS("/proc")
	if err != nil {
		return err
	}
	h, err := readHostCPU(pfs)
	if err != nil {
		return err
	}
	if o.cpuWorkers == 0 {
		o.cpuWorkers = h.cpus
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	t := tree{root: o.cgroupRoot, base: "/sluice-colo-" + hex.EncodeToString(rnd[:])}
	// Check the policy flags now rather than minutes later, when the first
	// with-Sluice phase starts the agent.
	if _, err := qos.ParsePolicy("policy from -high-water, -ramp, -grow-hold", []byte(agentPolicy(t, o))); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "sluice-colo-")
	if err != nil {
		return err
	}
	defer func() {
		// A failed run keeps the agent log, policy and raw outputs its
		// error may point at.
		if o.keep || err != nil {
			log.Info("raw outputs kept", "dir", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()

	// Cleanup runs on every exit path, Ctrl-C included (the signal cancels
	// ctx, the phases return, and these run before main exits).
	defer func() {
		if kerr := t.killAll(10 * time.Second); kerr != nil {
			err = errors.Join(err, kerr)
		}
		if rerr := t.remove(); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	if err := t.create(); err != nil {
		return err
	}
	log.Info("cgroups made", "parent", t.base)

	b := bench{o: o, t: t, fs: pfs, dir: dir, log: log}
	if err := b.startRedis(ctx); err != nil {
		return err
	}
	defer b.stopRedis()

	started := time.Now()
	var results []phaseResult
	for round := range o.rounds {
		order := []phaseKind{phaseAlone, phaseBurners, phaseSluice}
		if round%2 == 1 {
			order = []phaseKind{phaseSluice, phaseBurners, phaseAlone}
		}
		for _, k := range order {
			r, err := b.phase(ctx, k, round)
			if err != nil {
				return fmt.Errorf("round %d, phase %s: %w", round+1, k, err)
			}
			log.Info("phase done", "round", round+1, "phase", k, "window", r.window().Round(time.Millisecond), "tests", r.tests)
			results = append(results, r)
		}
	}
	report(os.Stdout, o, results, time.Since(started))
	return nil
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// pingRedis sends one PING and expects +PONG.
func pingRedis(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 7)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != "+PONG\r\n" {
		return fmt.Errorf("redis at %s answered %q to PING", addr, buf[:n])
	}
	return nil
}
