package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/procfs"

	"github.com/sluicehq/sluice/qos"
)

type phaseKind int

const (
	phaseAlone   phaseKind = iota // redis under load, nothing else of ours
	phaseBurners                  // plus stress-ng, no agent: offline at default shares, no quota
	phaseSluice                   // plus stress-ng and sluice-agent enforcing
)

func (k phaseKind) String() string {
	return [...]string{"alone", "burners", "sluice"}[k]
}

// phaseResult is what one phase measured between its two counter reads
// (the redis-benchmark run).
type phaseResult struct {
	kind       phaseKind
	round      int
	tests      []benchRow
	start, end counters
	stress     []stressRow // nil in the alone phase
	agent      *agentFigures
}

func (r phaseResult) window() time.Duration { return r.end.at.Sub(r.start.at) }

// cores is a cgroup's average CPU use over the window, in CPUs.
func (r phaseResult) cores(start, end time.Duration) float64 {
	return (end - start).Seconds() / r.window().Seconds()
}

// otherCores is host busy CPU not in the benchmark's cgroups: other users
// of the machine.
func (r phaseResult) otherCores() float64 {
	busy := (r.end.host.busy - r.start.host.busy) / r.window().Seconds()
	return busy - r.cores(r.start.offline, r.end.offline) - r.cores(r.start.online, r.end.online) - r.cores(r.start.loadgen, r.end.loadgen)
}

func (r phaseResult) hostBusyPct() float64 {
	return 100 * (r.end.host.busy - r.start.host.busy) / (r.end.host.total - r.start.host.total)
}

// agentFigures is benchmark 3 and the agent's final word in a sluice phase.
type agentFigures struct {
	cpuPctOfCore  float64
	rssBytes      uint64
	budgetMilli   int64
	cpuReason     string
	memReason     string
	memMaxBytes   int64
	results       []qos.IntentResult
	metrics       []string
	classCPUMilli map[qos.Class]int64
	// during is the agent's view polled from /state through the window.
	during []agentSample
}

type bench struct {
	o     options
	t     tree
	fs    procfs.FS
	dir   string
	log   *slog.Logger
	redis *exec.Cmd
	port  int
}

func (b *bench) startRedis(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	b.port = port
	b.redis = b.t.command(b.t.online(), "redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", filepath.Join(b.dir, "redis.log"))
	if err := b.redis.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := pingRedis(addr)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s not answering after 10s: %w", addr, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	// Fill the keyspace so every phase's GETs hit as often as the first's.
	if _, err := b.runBenchmark(ctx, "fill", "set", b.o.keyspace); err != nil {
		return fmt.Errorf("fill keyspace: %w", err)
	}
	return nil
}

func (b *bench) stopRedis() {
	if b.redis != nil && b.redis.Process != nil {
		_ = syscall.Kill(-b.redis.Process.Pid, syscall.SIGKILL)
		_ = b.redis.Wait()
	}
}

// runBenchmark runs redis-benchmark in the loadgen cgroup and parses its CSV.
func (b *bench) runBenchmark(ctx context.Context, label, tests string, n int) ([]benchRow, error) {
	cmd := b.t.command(b.t.loadgen(), "redis-benchmark", "-h", "127.0.0.1", "-p", strconv.Itoa(b.port),
		"-t", tests, "-n", strconv.Itoa(n), "-c", strconv.Itoa(b.o.clients), "-d", strconv.Itoa(b.o.dataBytes),
		"-r", strconv.Itoa(b.o.keyspace), "--csv")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := runCtx(ctx, cmd); err != nil {
		if msg := bytes.TrimSpace(errb.Bytes()); len(msg) > 0 {
			return nil, fmt.Errorf("redis-benchmark: %w: %s", err, msg)
		}
		return nil, fmt.Errorf("redis-benchmark: %w", err)
	}
	name := filepath.Join(b.dir, "redis-benchmark-"+label+".csv")
	_ = os.WriteFile(name, out.Bytes(), 0o644)
	return parseBenchCSV(name, &out)
}

// runCtx runs cmd, killing its process group when ctx ends first.
func runCtx(ctx context.Context, cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return ctx.Err()
	}
}

// phase runs one phase: (agent,) burners, warm-up, measured benchmark,
// then everything of the phase is stopped and the offline parent reset.
func (b *bench) phase(ctx context.Context, k phaseKind, round int) (res phaseResult, err error) {
	res = phaseResult{kind: k, round: round}
	label := fmt.Sprintf("r%d-%s", round+1, k)
	if err := b.t.neutral(); err != nil {
		return res, err
	}
	var ag *agentProc
	if k == phaseSluice {
		adir := filepath.Join(b.dir, label)
		if err := os.Mkdir(adir, 0o755); err != nil {
			return res, err
		}
		if ag, err = startAgent(ctx, b.o.agentBin, adir, b.t, b.o, b.log); err != nil {
			return res, err
		}
		defer func() {
			if serr := ag.stop(); serr != nil {
				b.log.Warn("sluice-agent stop", "err", serr)
			}
		}()
	}
	var stress *exec.Cmd
	var stressErr bytes.Buffer
	if k != phaseAlone {
		stress = b.t.command(b.t.stress(), "stress-ng", "--cpu", strconv.Itoa(b.o.cpuWorkers),
			"--vm", strconv.Itoa(b.o.vmWorkers), "--vm-bytes", b.o.vmBytes, "--metrics-brief", "--timeout", "0")
		stress.Stderr = &stressErr
		if err := stress.Start(); err != nil {
			return res, fmt.Errorf("start stress-ng: %w", err)
		}
		stressDone := make(chan error, 1)
		go func() { stressDone <- stress.Wait() }()
		defer func() {
			// SIGINT makes stress-ng stop its workers and print the metrics.
			_ = syscall.Kill(-stress.Process.Pid, syscall.SIGINT)
			select {
			case <-stressDone:
			case <-time.After(15 * time.Second):
				_ = syscall.Kill(-stress.Process.Pid, syscall.SIGKILL)
				<-stressDone
				if err == nil {
					err = fmt.Errorf("stress-ng did not stop within 15s of SIGINT")
				}
				return
			}
			if err != nil {
				return
			}
			name := filepath.Join(b.dir, "stress-ng-"+label+".txt")
			_ = os.WriteFile(name, stressErr.Bytes(), 0o644)
			res.stress, err = parseStressMetrics(name, bytes.NewReader(stressErr.Bytes()))
		}()
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(b.o.warmup):
		}
	}
	pid := 0
	if ag != nil {
		pid = ag.cmd.Process.Pid
	}
	if res.start, err = readCounters(b.fs, b.t, pid); err != nil {
		return res, err
	}
	var watched chan []agentSample
	stopWatch := func() {}
	if ag != nil {
		wctx, cancel := context.WithCancel(ctx)
		watched = make(chan []agentSample, 1)
		go func() { watched <- ag.watch(wctx, 500*time.Millisecond) }()
		stopWatch = cancel
	}
	res.tests, err = b.runBenchmark(ctx, label, "get,set", b.o.requests)
	stopWatch()
	if err != nil {
		return res, err
	}
	if res.end, err = readCounters(b.fs, b.t, pid); err != nil {
		return res, err
	}
	if ag != nil {
		if res.agent, err = b.agentFigures(ctx, ag, res); err != nil {
			return res, err
		}
		res.agent.during = <-watched
	}
	return res, nil
}

func (b *bench) agentFigures(ctx context.Context, ag *agentProc, r phaseResult) (*agentFigures, error) {
	snap, err := ag.state(ctx)
	if err != nil {
		return nil, fmt.Errorf("sluice-agent /state: %w", err)
	}
	m, err := ag.metrics(ctx)
	if err != nil {
		return nil, fmt.Errorf("sluice-agent /metrics: %w", err)
	}
	f := &agentFigures{
		cpuPctOfCore:  100 * (r.end.agentCPUSeconds - r.start.agentCPUSeconds) / r.window().Seconds(),
		rssBytes:      max(r.start.agentRSSBytes, r.end.agentRSSBytes),
		budgetMilli:   snap.Plan.OfflineCPU.BudgetMilli,
		cpuReason:     snap.Plan.OfflineCPU.Reason.String(),
		memReason:     snap.Plan.OfflineMemory.Reason.String(),
		memMaxBytes:   int64(snap.Plan.OfflineMemory.MaxBytes),
		results:       snap.Results,
		metrics:       m,
		classCPUMilli: map[qos.Class]int64{},
	}
	for c, u := range snap.Classes {
		f.classCPUMilli[c] = u.CPUUsedMilli
	}
	return f, nil
}
