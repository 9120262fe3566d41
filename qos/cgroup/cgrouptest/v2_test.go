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
