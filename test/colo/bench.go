package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// service is one online service under test.
type service struct {
	name        string // "redis" or "http"
	addr        string
	conns       int
	levels      []int // percent of capacity
	rounds      int
	measuredRPS float64 // measured by calibrate
	pinnedRPS   float64 // set by a flag; 0 = none
}

// capacity is what load levels are shares of: the pinned capacity, or
// the measured one.
func (s *service) capacity() float64 {
	if s.pinnedRPS > 0 {
		return s.pinnedRPS
	}
	return s.measuredRPS
}

func (s *service) rate(level int) float64 { return s.capacity() * float64(level) / 100 }

// sample is one second of a measured window, for the over-time plot.
type sample struct {
	offsetSec float64
	share     float64 // offline share over the second (NaN if nothing was left)
	capCores  float64 // offline parent's CFS quota in CPUs, -1 for none
}

// condRun is one condition's run in one round: its burners' work.
type condRun struct {
	cond           condition
	round          int
	stress         []stressRow
	stressRunSec   float64 // how long the burners ran
	stressParseErr error
}

// cell is one measured window: a service at a load level under a
// condition in a round.
type cell struct {
	cond     condition
	service  string
	level    int
	round    int
	load     loadResult
	cpu      cpuWindow
	agentCPU float64 // agent CPU seconds over the window
	agent    bool
	samples  []sample
	run      *condRun
	starved  bool // discarded: the load generator's dispatcher fell behind
}

type bench struct {
	o        options
	t        tree
	dir      string
	self     string // this binary, for the loadgen, serve-cpu and spin subcommands
	cpus     int
	log      *slog.Logger
	services []*service
	daemons  []*exec.Cmd
}

// startDaemon starts argv in the online cgroup and waits until ready
// says it serves.
func (b *bench) startDaemon(ctx context.Context, name string, ready func() error, argv ...string) error {
	cmd := b.t.command(b.t.online(), argv...)
	logf, err := os.Create(filepath.Join(b.dir, name+".log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	b.daemons = append(b.daemons, cmd)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not answering after 10s (log %s): %w", name, logf.Name(), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (b *bench) startServices(ctx context.Context) error {
	for _, s := range b.services {
		port, err := freePort()
		if err != nil {
			return err
		}
		s.addr = fmt.Sprintf("127.0.0.1:%d", port)
		switch s.name {
		case "redis":
			err = b.startDaemon(ctx, "redis-server", func() error { return pingRedis(s.addr) },
				"redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
				"--save", "", "--appendonly", "no", "--daemonize", "no")
		case "http":
			err = b.startDaemon(ctx, "cpu-service", func() error { return newHTTPDoer(s.addr).do(ctx, 0) },
				b.self, "serve-cpu", "-addr", s.addr, "-items", strconv.Itoa(b.o.httpItems), "-rounds", strconv.Itoa(b.o.httpWorkRnds))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) stopServices() {
	for _, c := range b.daemons {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		_ = c.Wait()
	}
}

// calibrate measures each service's capacity here: closed-loop load from
// all its connections, nothing else of ours running. For redis it also
// fills the keyspace (every other request is a SET), so GETs hit.
func (b *bench) calibrate(ctx context.Context) error {
	if err := b.t.offlineMode("1024", false); err != nil {
		return err
	}
	for _, s := range b.services {
		c, err := b.measure(ctx, s, 0, time.Second, b.o.calibrate, false)
		if err != nil {
			return fmt.Errorf("calibrate %s: %w", s.name, err)
		}
		if c.load.Errors > 0 || c.load.AchievedPerSec <= 0 {
			return fmt.Errorf("calibrate %s: %d errors (%s), %.0f answers/s", s.name, c.load.Errors, c.load.FirstError, c.load.AchievedPerSec)
		}
		s.measuredRPS = c.load.AchievedPerSec
		b.log.Info("calibrated", "service", s.name, "measured_rps", int(s.measuredRPS), "capacity_rps", int(s.capacity()), "conns", s.conns)
	}
	return nil
}

// measure runs one load generator in the loadgen cgroup at rate (0:
// closed loop) and reads the counters at the start and end of its window
// and once a second in between.
func (b *bench) measure(ctx context.Context, s *service, rate float64, warmup, duration time.Duration, agent bool) (c cell, err error) {
	cmd := b.t.command(b.t.loadgen(), b.self, "loadgen", "-service", s.name, "-addr", s.addr,
		"-rate", strconv.FormatFloat(rate, 'f', 3, 64), "-conns", strconv.Itoa(s.conns),
		"-warmup", warmup.String(), "-duration", duration.String())
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.StdoutPipe()
	if err != nil {
		return c, err
	}
	if err := cmd.Start(); err != nil {
		return c, fmt.Errorf("start load generator: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	defer stop()
	var c0, c1 counters
	var sampler sync.WaitGroup
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var resultLine []byte
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() && err == nil {
		line := sc.Bytes()
		switch {
		case bytes.HasPrefix(line, []byte("start ")):
			if c0, err = readCounters(b.t); err == nil {
				sampler.Go(func() { c.samples = b.sampleEverySecond(sctx, c0) })
			}
		case bytes.HasPrefix(line, []byte("end ")):
			cancel()
			sampler.Wait()
			c1, err = readCounters(b.t)
		case bytes.HasPrefix(line, []byte("{")):
			resultLine = bytes.Clone(line)
		}
	}
	cancel()
	sampler.Wait()
	_, _ = io.Copy(io.Discard, out)
	werr := cmd.Wait()
	switch {
	case err != nil:
		return c, err
	case ctx.Err() != nil:
		return c, ctx.Err()
	case werr != nil:
		return c, fmt.Errorf("load generator: %w: %s", werr, strings.TrimSpace(errb.String()))
	case resultLine == nil || c1.at.IsZero():
		return c, fmt.Errorf("load generator printed no window or result: %s", strings.TrimSpace(errb.String()))
	}
	if err := json.Unmarshal(resultLine, &c.load); err != nil {
		return c, fmt.Errorf("load generator result: %w", err)
	}
	c.cpu = window(c0, c1, b.cpus)
	c.agent = agent
	c.agentCPU = (c1.agent - c0.agent).Seconds()
	c.starved = starved(c.load, b.o.maxLag)
	return c, nil
}

// sampleEverySecond reads the counters and the offline cap every second
// until ctx ends; a failed read skips that second.
func (b *bench) sampleEverySecond(ctx context.Context, first counters) []sample {
	var out []sample
	prev := first
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
		cur, err := readCounters(b.t)
		if err != nil {
			continue
		}
		out = append(out, sample{offsetSec: cur.at.Sub(first.at).Seconds(), share: window(prev, cur, b.cpus).offlineShare(), capCores: b.t.quotaCores()})
		prev = cur
	}
}

// setupCondition starts what condition run.cond runs beside the online
// services. teardown is never nil and must be called, also on error; it
// fills run's burner figures. Its order matters: controllers first (the
// agent lifts its caps on SIGTERM), then the offline parent back to
// neutral so the burners get the CPU to handle SIGINT and print their
// metrics (an idle or capped group on a busy host may not run for
// seconds), then the burners, then the spinner.
func (b *bench) setupCondition(ctx context.Context, run *condRun) (agent bool, teardown func(), err error) {
	k, label := run.cond, fmt.Sprintf("r%d-%s", run.round+1, run.cond)
	var stopCtl, stopWork []func()
	teardown = func() {
		for _, f := range stopCtl {
			f()
		}
		if err := b.t.offlineMode("1024", false); err != nil {
			b.log.Warn("reset offline parent", "err", err)
		}
		for _, f := range slices.Backward(stopWork) {
			f()
		}
	}
	shares, idle := "1024", false
	switch k {
	case condCPUIdle:
		idle = true
	case condKoord:
		shares = "2" // Kubernetes BestEffort pods' weight
	}
	if err := b.t.offlineMode(shares, idle); err != nil {
		return false, teardown, err
	}
	if k == condSpinner {
		stopSpin, err := b.startBackground(b.t.spinner(), syscall.SIGKILL, nil, b.self, "spin", "-n", strconv.Itoa(b.cpus))
		if err != nil {
			return false, teardown, fmt.Errorf("start spinner: %w", err)
		}
		stopWork = append(stopWork, stopSpin)
	}
	if k == condSluice {
		adir := filepath.Join(b.dir, label)
		if err := os.Mkdir(adir, 0o755); err != nil {
			return false, teardown, err
		}
		ag, err := startAgent(ctx, b.o.agentBin, adir, b.t, b.o.policyExtra, b.log)
		if err != nil {
			return false, teardown, err
		}
		stopCtl = append(stopCtl, func() {
			if serr := ag.stop(); serr != nil {
				b.log.Warn("sluice-agent stop", "err", serr)
			}
		})
		agent = true
	}
	if k == condKoord {
		kctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { runKoord(kctx, b.t, defaultKoordParams(b.cpus), b.log) })
		stopCtl = append(stopCtl, func() { cancel(); wg.Wait() })
	}
	if k.hasBurners() {
		var stressOut bytes.Buffer
		started := time.Now()
		stopStress, err := b.startBackground(b.t.stress(), syscall.SIGINT, &stressOut, "stress-ng",
			"--cpu", strconv.Itoa(b.cpus), "--stream", "1", "--metrics-brief", "--timeout", "0")
		if err != nil {
			return false, teardown, fmt.Errorf("start stress-ng: %w", err)
		}
		stopWork = append(stopWork, func() {
			stopStress()
			run.stressRunSec = time.Since(started).Seconds()
			name := filepath.Join(b.dir, "stress-ng-"+label+".txt")
			_ = os.WriteFile(name, stressOut.Bytes(), 0o644)
			if run.stress, run.stressParseErr = parseStressMetrics(name, bytes.NewReader(stressOut.Bytes())); run.stressParseErr != nil {
				b.log.Warn("stress-ng metrics", "err", run.stressParseErr)
			}
		})
	}
	return agent, teardown, nil
}

// runCondition sets condition k up, measures every service due this
// round at every load level, and tears it down.
func (b *bench) runCondition(ctx context.Context, k condition, round int) (cells []cell, err error) {
	run := &condRun{cond: k, round: round}
	agent, teardown, err := b.setupCondition(ctx, run)
	defer teardown()
	if err != nil {
		return nil, err
	}
	for _, s := range b.services {
		if round >= s.rounds {
			continue
		}
		for i, lvl := range levelOrder(s.levels, round) {
			// A service's first window in a condition starts after the
			// full warm-up, longer than the agent's whole ramp; a level
			// step moves online use by a fraction of that.
			warm := b.o.levelWarmup
			if i == 0 {
				warm = b.o.warmup
			}
			c, err := b.measure(ctx, s, s.rate(lvl), warm, b.o.duration, agent)
			if err != nil {
				return cells, fmt.Errorf("%s at %d%%: %w", s.name, lvl, err)
			}
			c.cond, c.service, c.level, c.round, c.run = k, s.name, lvl, round, run
			b.log.Info("window", "round", round+1, "condition", k.String(), "service", s.name, "level_pct", lvl,
				"p99", c.load.P99, "achieved_rps", int(c.load.AchievedPerSec), "offline_share", fmt.Sprintf("%.2f", c.cpu.offlineShare()),
				"lag_p99", c.load.LagP99, "discarded", c.starved)
			cells = append(cells, c)
		}
	}
	return cells, nil
}

// startBackground starts argv in cgroup cg; the returned func stops it
// with sig (SIGKILL after 15 s) and waits. out, if set, gets its stderr.
func (b *bench) startBackground(cg string, sig syscall.Signal, out *bytes.Buffer, argv ...string) (func(), error) {
	cmd := b.t.command(cg, argv...)
	if out != nil {
		cmd.Stderr = out
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return func() {
		_ = syscall.Kill(-cmd.Process.Pid, sig)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			b.log.Warn("did not stop; killed", "cmd", argv[0], "signal", sig)
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}, nil
}
