package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/qos"
)

// agentPolicy is the policy file the with-Sluice phase runs the agent with.
// Rules class the benchmark's cgroups so the agent sees online and load
// generator use by name (unclassed host use would count as system anyway,
// but then /state could not show which is which).
func agentPolicy(t tree, o options) string {
	return fmt.Sprintf(`version: 1
dryRun: false
offlineParent: %s
# The next phase runs without Sluice: lift the caps when the agent stops.
onStop: release
rules:
  - name: colo online (redis-server)
    cgroup: %s
    class: online
    priority: 10
  - name: colo load generator (redis-benchmark)
    cgroup: %s
    class: system
    priority: 0
  - name: colo offline (stress-ng)
    cgroup: %s/*
    class: offline
    priority: 0
cpu:
  highWater: %s
  rampPerSecond: %s
  growHold: %s
  onlineRunqLatencyP99: %s
`, t.offline(), t.online(), t.loadgen(), t.offline(), o.highWater, o.rampPerSecond, o.growHold, runqValue(o.runqP99))
}

// agentProc is a running sluice-agent.
type agentProc struct {
	cmd  *exec.Cmd
	addr string
	done chan error
}

// startAgent runs bin with policy (written to dir) and waits until its
// API answers and it has classed the online and load generator cgroups.
func startAgent(ctx context.Context, bin, dir string, t tree, o options, log *slog.Logger) (*agentProc, error) {
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(agentPolicy(t, o)), 0o644); err != nil {
		return nil, fmt.Errorf("write agent policy: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	a := &agentProc{addr: fmt.Sprintf("127.0.0.1:%d", port), done: make(chan error, 1)}
	logf, err := os.Create(filepath.Join(dir, "sluice-agent.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own descriptor
	a.cmd = exec.Command(bin, "-policy", policy, "-containerd", "", "-listen", a.addr, "-log-level", "info")
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { a.done <- a.cmd.Wait() }()
	log.Info("sluice-agent started", "pid", a.cmd.Process.Pid, "listen", a.addr, "log", logf.Name())

	deadline := time.Now().Add(30 * time.Second)
	for {
		snap, err := a.state(ctx)
		if err == nil && snap.Classes[qos.ClassOnline].Count == 1 && snap.Classes[qos.ClassSystem].Count >= 1 && snap.Plan.OfflineParent == t.offline() {
			return a, nil
		}
		select {
		case err := <-a.done:
			a.done <- err
			return nil, fmt.Errorf("sluice-agent exited before it was ready (%v); see %s", err, logf.Name())
		case <-ctx.Done():
			a.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			a.stop()
			return nil, fmt.Errorf("sluice-agent at %s not ready after 30s (last: %v); see %s", a.addr, err, logf.Name())
		}
	}
}

func (a *agentProc) get(ctx context.Context, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.addr+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return b, nil
}

func (a *agentProc) state(ctx context.Context) (agent.Snapshot, error) {
	var s agent.Snapshot
	b, err := a.get(ctx, "/state")
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("decode /state: %w", err)
	}
	return s, nil
}

// metrics returns the agent's sluice_* samples as "name{labels} value" lines.
func (a *agentProc) metrics(ctx context.Context) ([]string, error) {
	b, err := a.get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	var out []string
	for name, f := range fams {
		if !strings.HasPrefix(name, "sluice_") || strings.HasPrefix(name, "sluice_workload_") ||
			strings.HasSuffix(name, "_seconds") || strings.HasPrefix(name, "sluice_policy_") {
			continue // per-workload series and histograms are in /state; keep the summary short
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			ls := ""
			if len(labels) > 0 {
				ls = "{" + strings.Join(labels, ",") + "}"
			}
			out = append(out, fmt.Sprintf("%s%s %g", name, ls, v))
		}
	}
	sort.Strings(out)
	return out, nil
}

// stop sends SIGTERM (the agent releases the offline caps, onStop:
// release) and waits; SIGKILL after 10 s.
func (a *agentProc) stop() error {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.done:
		a.done <- err
		return err
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		err := <-a.done
		a.done <- err
		return fmt.Errorf("sluice-agent did not stop within 10s of SIGTERM; killed")
	}
}

// agentSample is one /state poll during a measured window.
type agentSample struct {
	budgetMilli                 int64
	online, system, offlineUsed int64 // class CPU use the agent saw, milli-CPUs
}

// watch polls /state every interval until ctx ends; failed polls are
// skipped (the final /state read reports a dead agent).
func (a *agentProc) watch(ctx context.Context, interval time.Duration) []agentSample {
	var out []agentSample
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
		s, err := a.state(ctx)
		if err != nil {
			continue
		}
		out = append(out, agentSample{
			budgetMilli: s.Plan.OfflineCPU.BudgetMilli,
			online:      s.Classes[qos.ClassOnline].CPUUsedMilli,
			system:      s.Classes[qos.ClassSystem].CPUUsedMilli,
			offlineUsed: s.Classes[qos.ClassOffline].CPUUsedMilli,
		})
	}
}

// runqValue writes a duration the policy loader reads: a bare 0 for off.
func runqValue(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	return d.String()
}
