package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

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
