package cgrouptest_test

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/sluicehq/sluice/qos/cgroup/cgrouptest"
)

// The fake must reject what the kernel rejects, or the enforcer's tests
// prove nothing.
func TestV2RejectsLikeTheKernel(t *testing.T) {
	f := cgrouptest.NewV2(t, cgrouptest.Options{})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.Mkdir("/a"))
	// No controller enabled in the root yet: /a has no cpu files.
	if err := f.WriteFile("/a/cpu.max", []byte("50000 100000")); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("cpu.max without the controller: %v, want ENOENT", err)
	}
	must(f.WriteFile("/cgroup.subtree_control", []byte("+cpu +memory")))
	must(f.Mkdir("/a/b"))
	must(f.AddProc("/a/b", 42))
	for _, c := range []struct {
		file, value string
		want        error
	}{
		{"/a/cpu.max", "999 100000", syscall.EINVAL},
		{"/a/cpu.max", "50000 999", syscall.EINVAL},
		{"/a/cpu.max", "50000 1000001", syscall.EINVAL},
		{"/a/cpu.max", "abc", syscall.EINVAL},
		{"/a/cpu.weight", "0", syscall.ERANGE},
		{"/a/cpu.weight", "10001", syscall.ERANGE},
		{"/a/cpu.idle", "2", syscall.EINVAL},
		{"/a/memory.max", "-1", syscall.EINVAL},
		{"/a/memory.current", "0", syscall.EACCES},
		{"/a/cgroup.kill", "2", syscall.ERANGE},
		{"/a/cgroup.subtree_control", "+rdma", syscall.ENOENT},
		{"/a/cgroup.subtree_control", "cpu", syscall.EINVAL},
		{"/a/b/cgroup.subtree_control", "+cpu", syscall.ENOENT}, // /a does not pass cpu down
		{"/gone/cpu.max", "max", syscall.ENOENT},
		{"/cgroup.subtree_control", "-cpu", nil},
	} {
		if err := f.WriteFile(c.file, []byte(c.value)); !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
			t.Errorf("write %s %q: %v, want %v", c.file, c.value, err, c.want)
		}
	}
	must(f.WriteFile("/cgroup.subtree_control", []byte("+cpu +memory")))
	must(f.WriteFile("/a/cgroup.subtree_control", []byte("+memory")))
	if err := f.WriteFile("/cgroup.subtree_control", []byte("-memory")); !errors.Is(err, syscall.EBUSY) {
		t.Errorf("disable memory used below: %v, want EBUSY", err)
	}
	must(f.Mkdir("/c"))
	must(f.AddProc("/c", 43))
	if err := f.WriteFile("/c/cgroup.subtree_control", []byte("+cpu")); !errors.Is(err, syscall.EBUSY) {
		t.Errorf("enable with tasks inside: %v, want EBUSY (no internal processes)", err)
	}
	// Idle groups refuse weight writes and report weight 0 (6.1).
	must(f.WriteFile("/a/cpu.weight", []byte("50")))
	must(f.WriteFile("/a/cpu.idle", []byte("1")))
	if err := f.WriteFile("/a/cpu.weight", []byte("60")); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("weight while idle: %v, want EINVAL", err)
	}
	must(f.WriteFile("/a/cpu.idle", []byte("0")))
	must(f.WriteFile("/a/memory.max", []byte("10000")))
	must(f.WriteFile("/a/cpu.max", []byte("20000")))
	r := f.Render()
	for _, want := range []string{"cpu.weight: 50\n", "memory.max: 8192\n", "cpu.max: 20000 100000\n"} {
		if !strings.Contains(r, want) {
			t.Errorf("want %q in\n%s", want, r)
		}
	}
	if err := f.Rmdir("/a"); !errors.Is(err, syscall.EBUSY) {
		t.Errorf("rmdir with children: %v, want EBUSY", err)
	}
	p := f.Proc()
	if err := p.WriteFile("/42/oom_score_adj", []byte("1001")); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("oom_score_adj 1001: %v, want EINVAL", err)
	}
	if err := p.WriteFile("/99/oom_score_adj", []byte("0")); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("oom_score_adj of no process: %v, want ENOENT", err)
	}
	must(f.WriteFile("/a/cgroup.kill", []byte("1")))
	if k := f.Killed(); len(k) != 1 || k[0] != 42 {
		t.Errorf("killed %v, want [42]", k)
	}
}

func TestV1RejectsLikeTheKernel(t *testing.T) {
	cpu := cgrouptest.NewV1(t, "cpu", cgrouptest.Options{})
	cs := cgrouptest.NewV1(t, "cpuset", cgrouptest.Options{CPUs: 4})
	mem := cgrouptest.NewV1(t, "memory", cgrouptest.Options{})
	for _, f := range []interface{ Mkdir(string) error }{cpu, cs, mem} {
		for _, cg := range []string{"/p", "/p/c"} {
			if err := f.Mkdir(cg); err != nil {
				t.Fatal(err)
			}
		}
	}
	steps := []struct {
		fs          interface{ WriteFile(string, []byte) error }
		file, value string
		want        error
	}{
		{cpu, "/p/cpu.cfs_quota_us", "999", syscall.EINVAL},
		{cpu, "/p/cpu.cfs_quota_us", "50000", nil},
		{cpu, "/p/c/cpu.cfs_quota_us", "60000", syscall.EINVAL}, // above its parent
		{cpu, "/p/c/cpu.cfs_quota_us", "50000", nil},
		{cpu, "/p/cpu.cfs_quota_us", "40000", syscall.EINVAL}, // below its child
		{cpu, "/p/cpu.cfs_period_us", "200000", syscall.EINVAL},
		{cpu, "/p/cpu.cfs_quota_us", "-1", nil},
		{cpu, "/cpu.cfs_quota_us", "50000", syscall.EINVAL}, // the root
		{cpu, "/p/cpu.idle", "1", nil},
		{cpu, "/p/cpu.shares", "2", syscall.EINVAL},
		{cs, "/p/c/cgroup.procs", "7", syscall.ENOSPC}, // no cpus/mems yet
		{cs, "/p/c/cpuset.cpus", "1", syscall.EACCES},  // parent empty
		{cs, "/p/cpuset.cpus", "0-1", nil},
		{cs, "/p/c/cpuset.cpus", "1", nil},
		{cs, "/p/cpuset.cpus", "0", syscall.EBUSY}, // child holds 1
		{cs, "/p/cpuset.cpus", "9", syscall.EINVAL},
		{mem, "/p/memory.limit_in_bytes", "x", syscall.EINVAL},
		{mem, "/p/memory.usage_in_bytes", "0", syscall.EACCES},
	}
	for _, s := range steps {
		err := s.fs.WriteFile(s.file, []byte(s.value))
		if (s.want == nil) != (err == nil) || (s.want != nil && !errors.Is(err, s.want)) {
			t.Errorf("write %s %q: %v, want %v", s.file, s.value, err, s.want)
		}
	}
	mem.SetUsage("/p", 1<<20)
	if err := mem.WriteFile("/p/memory.limit_in_bytes", []byte("4096")); !errors.Is(err, syscall.EBUSY) {
		t.Errorf("limit below usage: %v, want EBUSY", err)
	}
	if r := cpu.Render(); !strings.Contains(r, "cpu.shares: 3\n") {
		t.Errorf("idle group shares:\n%s", r)
	}
}
