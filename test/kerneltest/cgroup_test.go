package kerneltest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that records failures and cleanups instead of
// acting on them, so the helpers' own failures can be checked. Fatal ends
// the calling goroutine as the real one does; run calls in record.
type recorder struct {
	testing.TB
	errs     []string
	cleanups []func()
}

func (r *recorder) Helper()                   {}
func (r *recorder) Cleanup(f func())          { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Errorf(f string, a ...any) { r.errs = append(r.errs, fmt.Sprintf(f, a...)) }
func (r *recorder) Fatal(a ...any)            { r.errs = append(r.errs, fmt.Sprint(a...)); runtime.Goexit() }
func (r *recorder) Fatalf(f string, a ...any) {
	r.errs = append(r.errs, fmt.Sprintf(f, a...))
	runtime.Goexit()
}

// record runs f against r in its own goroutine (Fatal's Goexit ends only that).
func (r *recorder) record(f func(testing.TB)) {
	done := make(chan struct{})
	go func() { defer close(done); f(r) }()
	<-done
}

// runCleanups runs the registered cleanups last-registered first, as testing does.
func (r *recorder) runCleanups() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil
}

func TestRelPathRejectsRootAndEscapes(t *testing.T) {
	for _, bad := range []string{"", "/", ".", "//", "..", "/..", "../x", "a/../..", "/a/../../b"} {
		r := &recorder{TB: t}
		r.record(func(tb testing.TB) { relPath(tb, bad) })
		if len(r.errs) != 1 || !strings.Contains(r.errs[0], "below the mount root") {
			t.Errorf("relPath(%q): errors %q, want one naming the problem", bad, r.errs)
		}
	}
	for in, want := range map[string]string{"/a": "a", "a/b/": "a/b", "//a//b": "a/b", "/a/../b": "b"} {
		r := &recorder{TB: t}
		var got string
		r.record(func(tb testing.TB) { got = relPath(tb, in) })
		if len(r.errs) != 0 || got != want {
			t.Errorf("relPath(%q) = %q, errors %q; want %q", in, got, r.errs, want)
		}
	}
}

func TestUniqueName(t *testing.T) {
	a, b := UniqueName("sluice-x"), UniqueName("sluice-x")
	if a == b {
		t.Fatalf("two calls gave the same name %s", a)
	}
	if want := "sluice-x-" + strconv.Itoa(os.Getpid()) + "-"; !strings.HasPrefix(a, want) || len(a) != len(want)+8 {
		t.Errorf("UniqueName = %q, want %s<8 hex digits>", a, want)
	}
}

// TestRealMakeCgroupRemovesWhatItCreated: nested paths under two v1
// hierarchies (and the same root twice), cleanup removes exactly the
// topmost directories the calls created, and a second MakeCgroup of an
// existing cgroup is refused.
func TestRealMakeCgroupRemovesWhatItCreated(t *testing.T) {
	cpu := RequireCgroupV1Controller(t, "cpu")
	mem := RequireCgroupV1Controller(t, "memory")
	top := "/" + UniqueName("sluice-kerneltest")
	CleanupCgroup(t, top, cpu, mem) // the backstop if the checks below fail

	r := &recorder{TB: t}
	var dirs []string
	r.record(func(tb testing.TB) { dirs = MakeCgroup(tb, top+"/a/b", cpu, mem, cpu) })
	if len(r.errs) != 0 {
		t.Fatalf("MakeCgroup: %q", r.errs)
	}
	if want := []string{cpu + top + "/a/b", mem + top + "/a/b", cpu + top + "/a/b"}; fmt.Sprint(dirs) != fmt.Sprint(want) {
		t.Errorf("dirs %v, want %v", dirs, want)
	}
	r.record(func(tb testing.TB) { MakeCgroup(tb, top+"/a/c", cpu) })
	for _, d := range []string{cpu + top + "/a/b", mem + top + "/a/b", cpu + top + "/a/c"} {
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err != nil {
			t.Errorf("%s is no cgroup: %v", d, err)
		}
	}
	if len(r.cleanups) != 3 {
		t.Errorf("%d cleanups registered, want 3 (cpu top, memory top, cpu a/c)", len(r.cleanups))
	}
	r.record(func(tb testing.TB) { MakeCgroup(tb, top+"/a/b", mem) })
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], "already exists") {
		t.Errorf("second MakeCgroup of %s: errors %q, want one saying it exists", top+"/a/b", r.errs)
	}
	// The a/c cleanup runs first and must leave a/b alone.
	r.cleanups[2]()
	if _, err := os.Stat(cpu + top + "/a/c"); !os.IsNotExist(err) {
		t.Errorf("a/c after its cleanup: %v", err)
	}
	if _, err := os.Stat(cpu + top + "/a/b"); err != nil {
		t.Errorf("a/b removed by a/c's cleanup: %v", err)
	}
	r.cleanups = r.cleanups[:2]
	r.runCleanups()
	for _, root := range []string{cpu, mem} {
		if _, err := os.Stat(root + top); !os.IsNotExist(err) {
			t.Errorf("%s after cleanup: %v", root+top, err)
		}
	}
	if len(r.errs) != 1 {
		t.Errorf("cleanup reported %q", r.errs[1:])
	}
}

// TestRealRemoveTreeKillsLeftovers: a process left in a nested cgroup is
// killed (through cgroup.kill on v2, per pid on v1) and the whole tree
// removed; a missing tree is no error.
func TestRealRemoveTreeKillsLeftovers(t *testing.T) {
	t.Run("v2", func(t *testing.T) { removeTreeKillsLeftovers(t, RequireCgroupV2(t)) })
	t.Run("v1", func(t *testing.T) { removeTreeKillsLeftovers(t, RequireCgroupV1Controller(t, "memory")) })
}

func removeTreeKillsLeftovers(t *testing.T, root string) {
	top := "/" + UniqueName("sluice-kerneltest")
	CleanupCgroup(t, top, root)
	leaf := MakeCgroup(t, top+"/x/y", root)[0]
	cmd := exec.Command("sleep", "3600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	WriteCgroupFile(t, filepath.Join(leaf, "cgroup.procs"), strconv.Itoa(cmd.Process.Pid))
	if got := ReadCgroupInt(t, filepath.Join(leaf, "cgroup.procs")); got != int64(cmd.Process.Pid) {
		t.Fatalf("cgroup.procs = %d, want %d", got, cmd.Process.Pid)
	}

	r := &recorder{TB: t}
	r.record(func(tb testing.TB) { RemoveTree(tb, root+top) })
	if len(r.errs) != 0 {
		t.Errorf("RemoveTree: %q", r.errs)
	}
	if _, err := os.Stat(root + top); !os.IsNotExist(err) {
		t.Errorf("%s after RemoveTree: %v", root+top, err)
	}
	select { // a liveness bound, not a speed check
	case err := <-done:
		done <- err
		if !strings.Contains(fmt.Sprint(err), "killed") {
			t.Errorf("leftover exited with %v, want killed", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("leftover still running after RemoveTree")
	}
	r.record(func(tb testing.TB) { RemoveTree(tb, root+top) })
	if len(r.errs) != 0 {
		t.Errorf("RemoveTree of a removed tree: %q", r.errs)
	}
}

// TestRealIsMountRoot: a hierarchy's root is recognised (RemoveTree refuses
// it; that refusal is not exercised on a real root for safety), a cgroup
// below it is not.
func TestRealIsMountRoot(t *testing.T) {
	root := RequireCgroupV2(t)
	if !isMountRoot(root) {
		t.Errorf("isMountRoot(%s) = false", root)
	}
	dir := MakeCgroup(t, UniqueName("sluice-kerneltest"), root)[0]
	if isMountRoot(dir) {
		t.Errorf("isMountRoot(%s) = true", dir)
	}
}

func TestReadWriteCgroupFileName(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cpu.cfs_quota_us")
	WriteCgroupFile(t, p, "-1\n")
	if got := ReadCgroupInt(t, p); got != -1 {
		t.Errorf("ReadCgroupInt = %d, want -1", got)
	}
	WriteCgroupFile(t, p, "max 100000")
	r := &recorder{TB: t}
	r.record(func(tb testing.TB) { ReadCgroupInt(tb, p) })
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], p) {
		t.Errorf("ReadCgroupInt of %q: errors %q, want one naming the file", "max 100000", r.errs)
	}
	r = &recorder{TB: t}
	missing := filepath.Join(t.TempDir(), "nodir", "cgroup.procs")
	r.record(func(tb testing.TB) { WriteCgroupFile(tb, missing, "1") })
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], missing) || !strings.Contains(r.errs[0], `"1"`) {
		t.Errorf("WriteCgroupFile to a missing file: errors %q, want one naming file and value", r.errs)
	}
}

func TestReadCgroupKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cpu.stat")
	WriteCgroupFile(t, p, "usage_usec 1200\nnr_throttled 3\nbad x\n")
	if got := ReadCgroupKey(t, p, "nr_throttled"); got != 3 {
		t.Errorf("ReadCgroupKey(nr_throttled) = %d, want 3", got)
	}
	for _, key := range []string{"bad", "nr_periods", "usage"} {
		r := &recorder{TB: t}
		r.record(func(tb testing.TB) { ReadCgroupKey(tb, p, key) })
		if len(r.errs) != 1 || !strings.Contains(r.errs[0], p) || !strings.Contains(r.errs[0], key) {
			t.Errorf("ReadCgroupKey(%s): errors %q, want one naming the file and key", key, r.errs)
		}
	}
}

// TestRealUniqueCgroupCleansWhatOthersCreate: UniqueCgroup creates nothing,
// and its cleanup removes what was created inside the name under each root.
func TestRealUniqueCgroupCleansWhatOthersCreate(t *testing.T) {
	cpu := RequireCgroupV1Controller(t, "cpu")
	unified := RequireCgroupV2(t)
	r := &recorder{TB: t}
	var top string
	r.record(func(tb testing.TB) { top = UniqueCgroup(tb, "sluice-kerneltest", cpu, unified) })
	CleanupCgroup(t, top, cpu, unified) // the backstop if the checks below fail
	if !strings.HasPrefix(top, "/sluice-kerneltest-") || len(r.cleanups) != 2 {
		t.Fatalf("UniqueCgroup = %q with %d cleanups, want a unique name and 2", top, len(r.cleanups))
	}
	for _, root := range []string{cpu, unified} {
		if _, err := os.Stat(root + top); !os.IsNotExist(err) {
			t.Errorf("%s exists before anyone made it: %v", root+top, err)
		}
		if err := os.MkdirAll(root+top+"/offline", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r.runCleanups()
	for _, root := range []string{cpu, unified} {
		if _, err := os.Stat(root + top); !os.IsNotExist(err) {
			t.Errorf("%s after cleanup: %v", root+top, err)
		}
	}
	if len(r.errs) != 0 {
		t.Errorf("errors %q", r.errs)
	}
}
