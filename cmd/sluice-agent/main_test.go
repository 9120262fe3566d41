package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/test/kerneltest"
)

func buildAgent(t *testing.T) string {
	t.Helper()
	// Not t.TempDir: its parent is private, and an unprivileged user must
	// be able to execute the binary.
	dir := kerneltest.SharedTempDir(t, "sluice-agent-test-")
	bin := filepath.Join(dir, "sluice-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// exitOf runs cmd and returns its exit code and stderr.
func exitOf(t *testing.T, cmd *exec.Cmd) (int, string) {
	t.Helper()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), stderr.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, stderr.String()
}

// Without root, or without cgroups, the agent names what is missing and
// exits non-zero instead of running half-blind.
func TestRefusesWithoutRootOrCgroups(t *testing.T) {
	kerneltest.RequireRoot(t)
	bin := buildAgent(t)

	cmd := exec.Command(bin, "-dry-run", "-listen", "127.0.0.1:0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	code, stderr := exitOf(t, cmd)
	if code != 1 || !strings.Contains(stderr, "must run as root") {
		t.Errorf("as nobody: exit %d, stderr %q; want 1 and the reason", code, stderr)
	}

	empty := t.TempDir()
	code, stderr = exitOf(t, exec.Command(bin, "-dry-run", "-listen", "127.0.0.1:0", "-cgroup-root", empty))
	if code != 1 || !strings.Contains(stderr, "no usable cgroup hierarchy at "+empty) {
		t.Errorf("without cgroups: exit %d, stderr %q; want 1 and the reason", code, stderr)
	}

	bad := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\ncpu:\n  highWater: 130%\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stderr = exitOf(t, exec.Command(bin, "-dry-run", "-listen", "127.0.0.1:0", "-policy", bad))
	if code != 1 || !strings.Contains(stderr, "130% is above 100%") {
		t.Errorf("invalid policy at start: exit %d, stderr %q; want 1 and the problem", code, stderr)
	}
}

// On a host without resctrl (this kernel has none) the agent runs, and
// /state says why cache and memory-bandwidth isolation is off.
func TestRunsWithoutResctrlAndSaysSo(t *testing.T) {
	kerneltest.RequireRoot(t)
	if data, err := os.ReadFile("/proc/filesystems"); err != nil || strings.Contains(string(data), "resctrl") {
		t.Skip("this kernel has resctrl; the test is for hosts without it")
	}
	bin := buildAgent(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cmd := exec.Command(bin, "-dry-run", "-no-ebpf", "-containerd", "", "-listen", "unix:"+sock, "-resctrl-root", filepath.Join(t.TempDir(), "resctrl"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	var state struct {
		Time  time.Time `json:"time"`
		Cache struct {
			Supported bool   `json:"supported"`
			Error     string `json:"error"`
		} `json:"cache"`
	}
	// Wait for the loop's first pass (a hang guard, not a timing assertion).
	for deadline := time.Now().Add(30 * time.Second); state.Time.IsZero(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no /state with a loop pass; agent stderr:\n%s", stderr.String())
		}
		resp, err := client.Get("http://agent/state")
		if err != nil {
			continue
		}
		err = json.NewDecoder(resp.Body).Decode(&state)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if state.Cache.Supported || !strings.Contains(state.Cache.Error, "not supported") {
		t.Errorf("/state cache %+v, want unsupported with the reason", state.Cache)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("agent exit: %v\n%s", err, stderr.String())
	}
	if n := strings.Count(stderr.String(), "cache and memory-bandwidth isolation off"); n != 1 {
		t.Errorf("the missing resctrl logged %d times, want once:\n%s", n, stderr.String())
	}
}
