package kerneltest

import (
	"errors"
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
	for _, line := range strings.Split(ReadCgroupFile(t, filepath.Join(dir, "cpu.stat")), "\n") {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("cpu.stat has no usage_usec")
	return 0
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
