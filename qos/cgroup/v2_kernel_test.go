package cgroup_test

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/qos/cgroup"
	"github.com/sluicehq/sluice/test/kerneltest"
)

// countingFS counts writes that reach a real hierarchy, to check that a
// steady-state apply writes nothing.
type countingFS struct {
	cgroup.FS
	writes []string
}

func (c *countingFS) WriteFile(name string, data []byte) error {
	c.writes = append(c.writes, name+"="+string(data))
	return c.FS.WriteFile(name, data)
}

func newV2Host(t *testing.T) (root, offline string, fsys *countingFS, e cgroup.Enforcer) {
	t.Helper()
	root = kerneltest.RequireCgroupV2Controllers(t, "cpu", "memory")
	top := kerneltest.UniqueCgroup(t, "sluice-test", root)
	offline = top + "/offline"
	fsys = &countingFS{FS: cgroup.Dir(root)}
	e, err := cgroup.NewV2(cgroup.Config{OfflineParent: offline, Proc: cgroup.Dir("/proc")}, fsys)
	if err != nil {
		t.Fatal(err)
	}
	return root, offline, fsys, e
}

// TestRealV2OfflineCapHeldAndReleased runs in the VM lane (test/vm).
func TestRealV2OfflineCapHeldAndReleased(t *testing.T) {
	root, offline, fsys, e := newV2Host(t)
	ctx := context.Background()
	if s := statuses(e.Apply(ctx, plan(300, 48<<20, 64<<20))); s != "offline-cpu=applied offline-memory=applied offline-oom-score=unchanged" {
		t.Fatalf("first apply: %s", s)
	}
	dir := filepath.Join(root, offline)
	for file, want := range map[string]string{
		"cpu.max": "30000 100000", "memory.high": "50331648", "memory.max": "67108864",
	} {
		if got := kerneltest.ReadCgroupFile(t, filepath.Join(dir, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if idle, err := os.ReadFile(filepath.Join(dir, "cpu.idle")); err == nil {
		if strings.TrimSpace(string(idle)) != "1" {
			t.Errorf("cpu.idle = %s, want 1", idle)
		}
	} else if got := kerneltest.ReadCgroupFile(t, filepath.Join(dir, "cpu.weight")); got != "1" {
		t.Errorf("cpu.weight = %s, want 1 (no cpu.idle on this kernel)", got)
	}
	for range 2 {
		kerneltest.StartChild(t, kerneltest.WorkloadSpin, dir)
	}
	e.Apply(ctx, plan(300, 48<<20, 64<<20)) // adopts the spinners' oom_score_adj
	fsys.writes = nil
	if s := statuses(e.Apply(ctx, plan(300, 48<<20, 64<<20))); s != "offline-cpu=unchanged offline-memory=unchanged offline-oom-score=unchanged" || len(fsys.writes) != 0 {
		t.Fatalf("steady state: %s, writes %v", s, fsys.writes)
	}
	stat := filepath.Join(dir, "cpu.stat")
	u0, w0 := kerneltest.ReadCgroupKey(t, stat, "usage_usec"), time.Now()
	time.Sleep(2 * time.Second)
	u1, w1 := kerneltest.ReadCgroupKey(t, stat, "usage_usec"), time.Now()
	rate := (u1 - u0) * 1000 / w1.Sub(w0).Microseconds()
	t.Logf("two busy loops under a 300m budget used %dm", rate)
	if rate > 300*5/4+50 {
		t.Errorf("offline used %dm under a 300m budget", rate)
	}
	if kerneltest.ReadCgroupKey(t, stat, "nr_throttled") == 0 {
		t.Error("never throttled under a 300m budget")
	}
	if s := statuses(e.Apply(ctx, plan(4000, 48<<20, 64<<20))); s != "offline-cpu=applied offline-memory=unchanged offline-oom-score=unchanged" {
		t.Fatalf("release apply: %s", s)
	}
	time.Sleep(300 * time.Millisecond)
	n0 := kerneltest.ReadCgroupKey(t, stat, "nr_throttled")
	time.Sleep(time.Second)
	if n1 := kerneltest.ReadCgroupKey(t, stat, "nr_throttled"); n1 != n0 {
		t.Errorf("still throttled after the budget grew past demand: %d -> %d", n0, n1)
	}
	s, err := e.Current(ctx)
	if err != nil || s.CPUBudgetMilli != 4000 || s.MemoryMaxBytes != 64<<20 || s.MemoryHighBytes != 48<<20 {
		t.Errorf("Current = %+v, %v", s, err)
	}
	if s := statuses(e.Release(ctx)); s != "offline-cpu=applied offline-memory=applied" {
		t.Errorf("release: %s", s)
	}
	if got := kerneltest.ReadCgroupFile(t, filepath.Join(dir, "memory.max")); got != "max" {
		t.Errorf("memory.max after release = %s", got)
	}
}

// TestRealV2MemoryMaxKillsHog: with memory.max below what an offline hog
// touches, the kernel's OOM killer ends it inside the offline parent.
func TestRealV2MemoryMaxKillsHog(t *testing.T) {
	root, offline, _, e := newV2Host(t)
	e.Apply(context.Background(), plan(1000, 24<<20, 32<<20))
	dir := filepath.Join(root, offline)
	cmd := kerneltest.ChildCommand(kerneltest.WorkloadHogPrefix + "128")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	kerneltest.StartCmd(t, cmd)
	kerneltest.WriteCgroupFile(t, filepath.Join(dir, "cgroup.procs"), strconv.Itoa(cmd.Process.Pid))
	_, _ = io.WriteString(stdin, "go\n")
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	err := cmd.Wait()
	if line == "ready\n" || err == nil {
		t.Fatalf("hog of 128 MiB survived memory.max 32 MiB (%q, %v)", line, err)
	}
	if n := kerneltest.ReadCgroupKey(t, filepath.Join(dir, "memory.events"), "oom_kill"); n < 1 {
		t.Errorf("memory.events oom_kill = %d, want >= 1", n)
	}
}
