package ebpf

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

const unprivilegedEnv = "SLUICE_EBPF_TEST_UNPRIVILEGED"

// TestBPFUnprivilegedIsNotSupported runs Probe and Load as an unprivileged
// user (this test binary re-executed as nobody): both must fail with an
// error that wraps ErrNotSupported, so the agent falls back to procfs.
func TestBPFUnprivilegedIsNotSupported(t *testing.T) {
	if os.Getenv(unprivilegedEnv) != "" {
		return // the child's own run of this test; the work is in the helper
	}
	kerneltest.RequireBPF(t)
	// The go test binary sits in a root-only temp dir: copy it where
	// nobody can execute it.
	dir := kerneltest.SharedTempDir(t, "sluice-ebpf-unpriv-")
	bin := filepath.Join(dir, "ebpf.test")
	kerneltest.CopyExecutable(t, os.Args[0], bin)
	cmd := exec.Command(bin, "-test.run=^TestHelperUnprivileged$", "-test.v")
	cmd.Env = append(os.Environ(), unprivilegedEnv+"=1")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	t.Logf("as nobody:\n%s", out)
	if err != nil {
		t.Fatalf("unprivileged helper: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestHelperUnprivileged") {
		t.Fatalf("unprivileged helper did not run")
	}
}

func TestHelperUnprivileged(t *testing.T) {
	if os.Getenv(unprivilegedEnv) == "" {
		t.Skip("helper for TestBPFUnprivilegedIsNotSupported")
	}
	if os.Geteuid() == 0 {
		t.Fatal("helper runs as root")
	}
	_, err := Probe()
	if !errors.Is(err, ErrNotSupported) {
		t.Errorf("Probe as uid %d: %v, want ErrNotSupported", os.Geteuid(), err)
	}
	t.Logf("Probe: %v", err)
	s, err := Load(Options{})
	if err == nil {
		s.Close()
	}
	if !errors.Is(err, ErrNotSupported) || !errors.Is(err, syscall.EPERM) || !strings.Contains(err.Error(), "CAP_BPF") {
		t.Errorf("Load as uid %d: %v, want ErrNotSupported wrapping EPERM and naming CAP_BPF", os.Geteuid(), err)
	}
	t.Logf("Load: %v", err)
}
