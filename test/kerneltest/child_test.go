package kerneltest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRealStartChildJoinsCgroupsBeforeRunning: a spinning child is in the
// cgroup the test made, has used CPU there (it spins only after the move),
// and is killed and reaped by its cleanup.
func TestRealStartChildJoinsCgroupsBeforeRunning(t *testing.T) {
	root := RequireCgroupV2(t)
	dir := MakeCgroup(t, UniqueName("sluice-kerneltest"), root)[0]
	var c *Child
	t.Run("child", func(t *testing.T) {
		c = StartChild(t, WorkloadSpin, dir)
		if got := ReadCgroupFile(t, filepath.Join(dir, "cgroup.procs")); got != strconv.Itoa(c.Pid()) {
			t.Errorf("cgroup.procs = %q, want the child %d", got, c.Pid())
		}
		deadline := time.Now().Add(30 * time.Second) // a liveness bound
		for usage(t, dir) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the spinning child used no CPU in its cgroup")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	select {
	case <-c.Done():
	default:
		t.Fatal("child still running after its test's cleanup")
	}
	var exit *exec.ExitError
	if err := c.Err(); !errors.As(err, &exit) || exit.ExitCode() != -1 {
		t.Errorf("child exit %v, want killed by a signal", err)
	}
}

func usage(t *testing.T, dir string) int64 {
	t.Helper()
	return ReadCgroupKey(t, filepath.Join(dir, "cpu.stat"), "usage_usec")
}

// TestStartCmdKillsAtCleanup: the started command runs until its test's
// cleanup, which leaves it killed and reaped.
func TestStartCmdKillsAtCleanup(t *testing.T) {
	cmd := exec.Command("sleep", "3600")
	t.Run("cmd", func(t *testing.T) {
		StartCmd(t, cmd)
		if cmd.Process == nil || cmd.ProcessState != nil {
			t.Fatalf("sleep not running: %v", cmd.ProcessState)
		}
	})
	if cmd.ProcessState == nil || cmd.ProcessState.Exited() {
		t.Errorf("after cleanup: state %v, want reaped after a kill signal", cmd.ProcessState)
	}
	r := &recorder{TB: t}
	r.record(func(tb testing.TB) { StartCmd(tb, exec.Command(filepath.Join(t.TempDir(), "missing"))) })
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], "missing") {
		t.Errorf("StartCmd of a missing binary: errors %q, want one naming it", r.errs)
	}
}

func TestSharedTempDirIsOpenAndRemoved(t *testing.T) {
	var dir string
	t.Run("dir", func(t *testing.T) {
		dir = SharedTempDir(t, "sluice-kerneltest-")
		st, err := os.Stat(dir)
		if err != nil || st.Mode().Perm() != 0o755 {
			t.Fatalf("stat %s: %v, %v; want mode 0755", dir, st, err)
		}
	})
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after its test: %v, want removed", dir, err)
	}
}

func TestStartChildHogIsReady(t *testing.T) {
	c := StartChild(t, WorkloadHogPrefix+"4")
	select {
	case <-c.Done():
		t.Fatalf("hog exited: %v", c.Err())
	default:
	}
}

func TestChildRejectsUnknownWorkload(t *testing.T) {
	for _, w := range []string{"nap", "hog:", "hog:x", "hog:-1"} {
		cmd := ChildCommand(w)
		cmd.Stdin = strings.NewReader("go\n")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), strconv.Quote(w)) {
			t.Errorf("workload %q: %v, %q; want exit 2 naming it", w, err, out)
		}
	}
}

func TestWaitFor(t *testing.T) {
	n := 0
	WaitFor(t, "the third poll", time.Minute, func() bool { n++; return n == 3 })
	if n != 3 {
		t.Errorf("WaitFor returned after %d polls, want 3", n)
	}
	r := &recorder{TB: t}
	r.record(func(tb testing.TB) { WaitFor(tb, "never", 0, func() bool { return false }) })
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], "waiting for never") {
		t.Errorf("WaitFor past its bound: errors %q, want one naming what it waited for", r.errs)
	}
}

func TestCopyExecutableReplaces(t *testing.T) {
	dir := t.TempDir()
	from, to := filepath.Join(dir, "from"), filepath.Join(dir, "to")
	if err := os.WriteFile(from, []byte("#!/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, []byte("an earlier, longer copy"), 0o600); err != nil {
		t.Fatal(err)
	}
	CopyExecutable(t, from, to)
	st, err := os.Stat(to)
	if err != nil || st.Mode().Perm() != 0o755 || ReadCgroupFile(t, to) != "#!/bin/sh" {
		t.Errorf("copy: %v, %v, %q; want mode 0755 and the new content", st, err, ReadCgroupFile(t, to))
	}
}
