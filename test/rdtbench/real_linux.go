package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/rdt"
	"github.com/sluicehq/sluice/rdt/resctrl"
)

// runReal runs the three phases on a host with resctrl, or refuses.
func runReal(ctx context.Context, cfg realConfig) error {
	host, err := prepareReal(cfg)
	if err != nil {
		return err
	}
	cg, err := newCgroups()
	if err != nil {
		return err
	}
	defer cg.remove()
	port := 16379 + os.Getpid()%1000
	redis, err := startRedis(ctx, cg, port)
	if err != nil {
		return err
	}
	defer stopProc(redis)
	b := &realBench{cfg: cfg, cg: cg, port: port}

	alone, err := b.phase(ctx, "alone", nil)
	if err != nil {
		return err
	}
	unpartitioned, err := b.withStress(ctx, "stress-ng, no partitioning", nil)
	if err != nil {
		return err
	}
	partitioned, decisions, err := b.partitioned(ctx, host)
	if err != nil {
		return err
	}
	printReal(cfg, alone, unpartitioned, partitioned, decisions)
	return nil
}

// prepareReal mounts resctrl (or refuses with what the real benchmark
// needs), checks the load tools are installed, probes the hardware and
// checks the default policy against it.
func prepareReal(cfg realConfig) (realHost, error) {
	if err := resctrl.Mount(cfg.Root, "/proc"); err != nil {
		if errors.Is(err, resctrl.ErrNotSupported) {
			return realHost{}, fmt.Errorf("refusing the real benchmark: %w\n"+
				"it needs a CPU with Intel RDT (CAT, MBA, MBM) or AMD PQoS and a kernel with resctrl; "+
				"`go run ./test/rdtbench -fake` runs the same path on a fake resctrl mount", err)
		}
		return realHost{}, err
	}
	for _, tool := range []string{"redis-server", "redis-benchmark", "stress-ng"} {
		if _, err := exec.LookPath(tool); err != nil {
			return realHost{}, fmt.Errorf("%s not found (Debian packages redis-server, redis-tools, stress-ng): %w", tool, err)
		}
	}
	fsys := resctrl.Dir(cfg.Root)
	hw, err := resctrl.Probe(fsys)
	if err != nil {
		return realHost{}, err
	}
	pol := rdt.DefaultPolicy()
	pol.OnlineLatencyTarget = cfg.Target
	if err := pol.Validate(hw); err != nil {
		return realHost{}, fmt.Errorf("default rdt policy on this host: %w", err)
	}
	return realHost{fs: fsys, hw: hw, pol: pol}, nil
}

// realHost is the resctrl mount, its hardware and the policy checked
// against it.
type realHost struct {
	fs  resctrl.FS
	hw  rdt.Hardware
	pol rdt.Policy
}

// startRedis starts the online workload in its cgroup, listening on port.
func startRedis(ctx context.Context, cg *cgroups, port int) (*exec.Cmd, error) {
	redis := cg.start(ctx, "online", "redis-server", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no")
	if err := redis.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	time.Sleep(500 * time.Millisecond) // redis binds its port
	return redis, nil
}

// realBench measures the online redis p99 in slices.
type realBench struct {
	cfg  realConfig
	cg   *cgroups
	port int
}

// phase measures cfg.Slices p99s, calling step (when set) after each.
func (b *realBench) phase(ctx context.Context, name string, step func(p99 time.Duration)) ([]time.Duration, error) {
	var p99s []time.Duration
	for range b.cfg.Slices {
		if ctx.Err() != nil {
			return p99s, ctx.Err()
		}
		p, err := redisP99(ctx, b.port, b.cfg.Requests)
		if err != nil {
			return p99s, fmt.Errorf("phase %s: %w", name, err)
		}
		p99s = append(p99s, p)
		if step != nil {
			step(p)
		}
	}
	return p99s, nil
}

// withStress runs a phase with stress-ng loading the offline cgroup.
func (b *realBench) withStress(ctx context.Context, name string, step func(time.Duration)) ([]time.Duration, error) {
	stress := b.cg.start(ctx, "offline", "stress-ng", append(strings.Fields(b.cfg.Stress), "--timeout", "0")...)
	if err := stress.Start(); err != nil {
		return nil, fmt.Errorf("start stress-ng: %w", err)
	}
	defer b.cg.kill("offline", stress)
	time.Sleep(time.Second)
	return b.phase(ctx, name, step)
}

// partitioned runs the stressed phase with Sluice deciding and applying
// the resctrl plan after every slice, and returns the p99s and how long
// each decision (read, decide, apply) took.
func (b *realBench) partitioned(ctx context.Context, host realHost) ([]time.Duration, []time.Duration, error) {
	cfg, cg := b.cfg, b.cg
	fsys, hw, pol := host.fs, host.hw, host.pol
	enf, err := resctrl.New(resctrl.Config{FS: fsys, Hardware: hw, Tasks: resctrl.CgroupTasks{Root: cg.root, File: cg.threads}, Log: cfg.Log})
	if err != nil {
		return nil, nil, err
	}
	defer enf.Apply(context.Background(), rdt.Plan{}) // removes Sluice's groups: tasks return to the default group
	mon := resctrl.NewMonitor(fsys, hw)
	wl := []rdt.Workload{{CgroupPath: cg.path("online"), Class: rdt.ClassOnline}, {CgroupPath: cg.path("offline"), Class: rdt.ClassOffline}}
	var st rdt.State
	prev, _ := mon.Read(time.Now())
	// Place the groups before the first slice.
	plan, st := rdt.Decide(rdt.Signals{Now: time.Now(), Workloads: wl}, pol, hw, st)
	enf.Apply(ctx, plan)
	var decisions []time.Duration
	p99s, err := b.withStress(ctx, "stress-ng, Sluice dynamic partitioning", func(p99 time.Duration) {
		began := time.Now()
		cur, err := mon.Read(began)
		if err != nil {
			cfg.Log.Warn("monitor", "err", err)
		}
		plan, st = rdt.Decide(rdt.Signals{Now: began, OnlineLatencyP99: p99, Domains: rdt.Rates(prev, cur), Workloads: wl, OfflineMerged: enf.Merged()}, pol, hw, st)
		for _, r := range enf.Apply(ctx, plan) {
			if r.Err != "" {
				cfg.Log.Warn("apply", "group", r.Target, "status", r.Status, "err", r.Err)
			}
		}
		decisions = append(decisions, time.Since(began))
		prev = cur
		for _, g := range plan.Groups {
			if g.Class == rdt.ClassOffline {
				fmt.Printf("  p99 %v: %s\n", p99, g.Reason)
			}
		}
	})
	return p99s, decisions, err
}

// printReal prints each phase's median and worst p99 and the decision
// latency.
func printReal(cfg realConfig, alone, unpartitioned, partitioned, decisions []time.Duration) {
	fmt.Printf("online p99 (median of %d redis-benchmark runs, worst in brackets), target %v\n", cfg.Slices, cfg.Target)
	for _, ph := range []struct {
		name string
		p    []time.Duration
	}{{"alone", alone}, {"stress-ng " + cfg.Stress + ", no partitioning", unpartitioned}, {"stress-ng " + cfg.Stress + ", Sluice dynamic partitioning", partitioned}} {
		s := slices.Clone(ph.p)
		slices.Sort(s)
		fmt.Printf("  %-50s %v [%v]\n", ph.name, s[len(s)/2], s[len(s)-1])
	}
	if len(decisions) > 0 {
		slices.Sort(decisions)
		fmt.Printf("decision latency: p50 %v max %v\n", decisions[len(decisions)/2], decisions[len(decisions)-1])
	}
}

// redisP99 runs one redis-benchmark GET run and returns its p99.
func redisP99(ctx context.Context, port, requests int) (time.Duration, error) {
	out, err := exec.CommandContext(ctx, "redis-benchmark", "-p", strconv.Itoa(port), "-t", "get", "-n", strconv.Itoa(requests), "-c", "50", "--csv").Output()
	if err != nil {
		return 0, fmt.Errorf("redis-benchmark: %w", err)
	}
	return parseP99(out)
}

// parseP99 reads the p99_latency_ms column of redis-benchmark 7's --csv
// output (first data row).
func parseP99(out []byte) (time.Duration, error) {
	recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		return 0, fmt.Errorf("redis-benchmark csv: %w", err)
	}
	if len(recs) < 2 {
		return 0, fmt.Errorf("redis-benchmark csv: %d lines, want a header and a row", len(recs))
	}
	i := slices.Index(recs[0], "p99_latency_ms")
	if i < 0 || i >= len(recs[1]) {
		return 0, errors.New("redis-benchmark csv: no p99_latency_ms column (redis-benchmark 7 or newer prints it)")
	}
	ms, err := strconv.ParseFloat(recs[1][i], 64)
	if err != nil {
		return 0, fmt.Errorf("redis-benchmark csv: p99 %q: %w", recs[1][i], err)
	}
	if !(ms >= 0 && ms < 1e9) {
		return 0, fmt.Errorf("redis-benchmark csv: p99 %q is not a latency", recs[1][i])
	}
	return time.Duration(ms * float64(time.Millisecond)), nil
}

// cgroups is the benchmark's cgroup pair, in the v1 cpu hierarchy when
// there is one, else in the v2 hierarchy.
type cgroups struct {
	root, base, threads string
}

func newCgroups() (*cgroups, error) {
	c := &cgroups{root: "/sys/fs/cgroup/cpu", threads: "tasks", base: fmt.Sprintf("/sluice-rdtbench-%d", os.Getpid())}
	if _, err := os.Stat(filepath.Join(c.root, "tasks")); err != nil {
		c.root, c.threads = "/sys/fs/cgroup", "cgroup.threads"
	}
	for _, d := range []string{"online", "offline"} {
		if err := os.MkdirAll(filepath.Join(c.root, c.path(d)), 0o755); err != nil {
			return nil, fmt.Errorf("benchmark cgroups: %w", err)
		}
	}
	return c, nil
}

func (c *cgroups) path(name string) string { return c.base + "/" + name }

// start returns a command that joins the named benchmark cgroup before
// it execs argv0, so no worker it forks is left behind outside it.
func (c *cgroups) start(ctx context.Context, name string, argv0 string, args ...string) *exec.Cmd {
	procs := filepath.Join(c.root, c.path(name), "cgroup.procs")
	sh := append([]string{"-c", `echo $$ > "$0" && exec "$@"`, procs, argv0}, args...)
	cmd := exec.CommandContext(ctx, "/bin/sh", sh...)
	cmd.Stdout, cmd.Stderr = nil, os.Stderr
	return cmd
}

// kill stops cmd and every process left in the named cgroup (stress-ng's
// workers outlive a killed parent).
func (c *cgroups) kill(name string, cmd *exec.Cmd) {
	stopProc(cmd)
	for range 50 {
		b, err := os.ReadFile(filepath.Join(c.root, c.path(name), "cgroup.procs"))
		pids := strings.Fields(string(b))
		if err != nil || len(pids) == 0 {
			return
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *cgroups) remove() {
	for _, d := range []string{"online", "offline", ""} {
		_ = os.Remove(filepath.Join(c.root, c.path(d)))
	}
}

func stopProc(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}
