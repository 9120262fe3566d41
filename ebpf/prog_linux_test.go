package ebpf

import (
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"

	cebpf "github.com/cilium/ebpf"

	"github.com/sluicehq/sluice/test/kerneltest"
)

func loadDetachedForTest(t *testing.T, attach AttachMode) *Sampler {
	t.Helper()
	kerneltest.RequireBPF(t)
	s, err := loadDetached(Options{KeyMode: KeyCgroupV2}, attach)
	if errors.Is(err, ErrNotSupported) {
		kerneltest.Missing(t, kerneltest.FeatureBPF, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mapLen(t *testing.T, m *cebpf.Map) int {
	t.Helper()
	var n int
	var k []byte
	var v []byte
	it := m.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBPFTracingProgTestRunUnsupported records that tp_btf programs cannot
// be run with BPF_PROG_TEST_RUN: the kernel test-runs only fentry, fexit
// and fmod_ret among tracing programs and refuses the rest (EFAULT on 6.18,
// the handler's default error). The raw_tp flavour is the one that
// program-level tests exercise. Should a kernel start running them, this
// test fails as a reminder to extend the program-level tests.
func TestBPFTracingProgTestRunUnsupported(t *testing.T) {
	s := loadDetachedForTest(t, AttachTPBTF)
	_, err := s.progs[0].Run(&cebpf.RunOptions{})
	if !errors.Is(err, syscall.EFAULT) && !errors.Is(err, ErrNotSupported) {
		t.Fatalf("test run of tp_btf/sched_switch: err = %v, want EFAULT or ErrNotSupported", err)
	}
}

// TestBPFRawTPProgTestRunRejectsBadTasks runs the raw_tp programs, whose
// task arguments are untyped u64s the verifier cannot check, with
// pointers that are no task: NULL and an unmapped kernel address. They
// must read nothing, record nothing, count no drop and post no wake-up. (User space cannot
// hand a test run a real task_struct, so the accounting itself is tested
// with the programs attached, in the cgroup tests.)
func TestBPFRawTPProgTestRunRejectsBadTasks(t *testing.T) {
	s := loadDetachedForTest(t, AttachRawTP)
	sw := s.progs[0]
	for _, task := range []uint64{0, 0xffffffffff600000 + 0x10, 1} {
		// preempt, prev, next, prev_state
		ret, err := sw.Run(&cebpf.RunOptions{Context: []uint64{0, task, task, 0}})
		if err != nil || ret != 0 {
			t.Fatalf("test run sched_switch with tasks %#x: ret %d, err %v", task, ret, err)
		}
	}
	if n := mapLen(t, s.maps.TaskSeenByPid); n != 0 {
		t.Errorf("task_seen_by_pid has %d entries, want none", n)
	}
	if n := mapLen(t, s.maps.CgroupSlots); n != 0 {
		t.Errorf("cgroup_slots has %d entries, want none", n)
	}
	if d, err := s.drops(); err != nil || d != (dropCounts{}) {
		t.Errorf("Drops() = %+v, %v; want none", d, err)
	}

	// The wake-up programs, armed, with cgroup id 0 (what a failed read
	// of a task's cgroup gives) marked online: a bad task must post
	// nothing, so no CPU records a post time.
	if err := s.SetWakes(WakeConfig{MinGap: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetWakeClass(0, WakeClassOnline); err != nil {
		t.Fatal(err)
	}
	for i, h := range schedHooks(AttachRawTP) {
		if i == 0 {
			continue // sched_switch, run above
		}
		for _, task := range []uint64{0, 0xffffffffff600000 + 0x10, 1} {
			ret, err := s.progs[i].Run(&cebpf.RunOptions{Context: []uint64{task}})
			if err != nil || ret != 0 {
				t.Fatalf("test run %s with task %#x: ret %d, err %v", h.tracepoint, task, ret, err)
			}
		}
	}
	var last []uint64
	if err := s.maps.WakeLast.Lookup(uint32(0), &last); err != nil {
		t.Fatal(err)
	}
	for cpu, ns := range last {
		if ns != 0 {
			t.Errorf("CPU %d posted a wake-up at %d ns for a task that is none", cpu, ns)
		}
	}
}

// TestBPFRawTPForgetsExitedTasks: raw_tp programs keep where each task's
// counters stood in a hash by pid, and a task deletes its entry at its
// last switch-out, so that a new task given the same pid is not diffed
// against the old one's counters. A live task that has switched out keeps
// its entry.
func TestBPFRawTPForgetsExitedTasks(t *testing.T) {
	kerneltest.RequireBPF(t)
	s := loadForTest(t, Options{Attach: AttachRawTP})

	sleeper := exec.Command("/bin/sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sleeper.Process.Kill()
		_ = sleeper.Wait()
	})
	var exited []int
	for range 5 {
		cmd := exec.Command("/bin/sh", "-c", "exit 0")
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		exited = append(exited, cmd.Process.Pid)
	}

	var seen runqLastSwitchOut
	runUntil(t, "the sleeping task's entry", func() bool {
		return s.maps.TaskSeenByPid.Lookup(uint32(sleeper.Process.Pid), &seen) == nil
	})
	if seen.Valid != 1 {
		t.Errorf("sleeping task %d: entry %+v, want filled in", sleeper.Process.Pid, seen)
	}
	// The parent can reap a child before the child's last switch-out.
	runUntil(t, "exited tasks' entries to go", func() bool {
		for _, pid := range exited {
			if s.maps.TaskSeenByPid.Lookup(uint32(pid), &seen) == nil {
				return false
			}
		}
		return true
	})
}

// TestBPFRawTPTasksBounded loads raw_tp with room for one task's counters:
// the other tasks that switch out meanwhile are counted as dropped.
func TestBPFRawTPTasksBounded(t *testing.T) {
	kerneltest.RequireBPF(t)
	s := loadForTest(t, Options{Attach: AttachRawTP, MaxTasks: 1})
	for range 3 {
		if err := exec.Command("/bin/true").Run(); err != nil {
			t.Fatal(err)
		}
	}
	if n := mapLen(t, s.maps.TaskSeenByPid); n > 1 {
		t.Errorf("task_seen_by_pid has %d entries, want at most 1", n)
	}
	d, err := s.drops()
	if err != nil {
		t.Fatal(err)
	}
	if d.TaskSlots == 0 {
		t.Errorf("Drops().TaskSlots = 0 with room for one task and several switching")
	}
}
