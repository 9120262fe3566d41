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
	"syscall"
	"time"
)

// agentPolicy is the policy file the sluice condition runs the agent
// with: the default policy (nothing under cpu: or memory:) unless extra
// holds policy lines from -policy-extra. Rules class the benchmark's
// cgroups so the agent sees online and load generator use by name.
func agentPolicy(t tree, extra string) string {
	return fmt.Sprintf(`version: 1
dryRun: false
offlineParent: %s
# The next condition runs without Sluice: lift the caps when the agent stops.
onStop: release
rules:
  - name: colo online (redis-server, cpu service)
    cgroup: %s
    class: online
    priority: 10
  - name: colo load generator
    cgroup: %s
    class: system
    priority: 0
  - name: colo offline (stress-ng)
    cgroup: %s/*
    class: offline
    priority: 0
%s`, t.offline(), t.online(), t.loadgen(), t.offline(), extra)
}

// agentProc is a running sluice-agent.
type agentProc struct {
	cmd  *exec.Cmd
	addr string
	done chan error
}

// startAgent runs bin with policy (written to dir) and waits until its
// API answers and it has classed the online and load generator cgroups.
func startAgent(ctx context.Context, bin, dir string, t tree, extra string, log *slog.Logger) (*agentProc, error) {
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(agentPolicy(t, extra)), 0o644); err != nil {
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
	// In a cgroup of its own, unclassed like any host daemon: its CPU is
	// read from there (counters).
	a.cmd = t.command(t.agent(), bin, "-policy", policy, "-containerd", "", "-listen", a.addr, "-log-level", "info")
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { a.done <- a.cmd.Wait() }()
	log.Info("sluice-agent started", "pid", a.cmd.Process.Pid, "listen", a.addr, "log", logf.Name())

	deadline := time.Now().Add(30 * time.Second)
	for {
		snap, err := a.state(ctx)
		if err == nil && snap.Classes["online"].Count == 1 && snap.Classes["system"].Count >= 1 && snap.Plan.OfflineParent == t.offline() {
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

// agentState is the part of the agent's /state the benchmark reads,
// decoded loosely so the benchmark does not track the agent's Go types.
type agentState struct {
	Classes map[string]struct {
		Count int `json:"count"`
	} `json:"classes"`
	Plan struct {
		OfflineParent string `json:"offlineParent"`
	} `json:"plan"`
}

func (a *agentProc) state(ctx context.Context) (agentState, error) {
	var s agentState
	b, err := a.get(ctx, "/state")
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("decode /state: %w", err)
	}
	return s, nil
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
