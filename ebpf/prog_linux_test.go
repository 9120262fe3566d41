package ebpf

import (
	"errors"
	"syscall"
	"testing"

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
	_, err := s.progs[2].Run(&cebpf.RunOptions{})
	if !errors.Is(err, syscall.EFAULT) && !errors.Is(err, ErrNotSupported) {
		t.Fatalf("test run of tp_btf/sched_switch: err = %v, want EFAULT or ErrNotSupported", err)
	}
}

// TestBPFRawTPProgTestRunRejectsBadTasks runs the raw_tp programs, whose
// task arguments are untyped u64s the verifier cannot check, with
// pointers that are no task: NULL and an unmapped kernel address. They
// must read nothing, record nothing and count no drop. (User space cannot
// hand a test run a real task_struct, so the accounting itself is tested
// with the programs attached, in the cgroup tests.)
func TestBPFRawTPProgTestRunRejectsBadTasks(t *testing.T) {
	s := loadDetachedForTest(t, AttachRawTP)
	wakeup, wakeupNew, sw := s.progs[0], s.progs[1], s.progs[2]
	for _, task := range []uint64{0, 0xffffffffff600000 + 0x10, 1} {
		for _, p := range []*cebpf.Program{wakeup, wakeupNew} {
			ret, err := p.Run(&cebpf.RunOptions{Context: []uint64{task}})
			if err != nil || ret != 0 {
				t.Fatalf("test run %v with task %#x: ret %d, err %v", p, task, ret, err)
			}
		}
		// preempt, prev, next, prev_state
		ret, err := sw.Run(&cebpf.RunOptions{Context: []uint64{0, task, task, 0}})
		if err != nil || ret != 0 {
			t.Fatalf("test run sched_switch with tasks %#x: ret %d, err %v", task, ret, err)
		}
	}
	if n := mapLen(t, s.maps.QueuedAt); n != 0 {
		t.Errorf("queued_at has %d entries, want none", n)
	}
	if n := mapLen(t, s.maps.Stats); n != 0 {
		t.Errorf("stats has %d entries, want none", n)
	}
	if d, err := s.Drops(); err != nil || d != (Drops{}) {
		t.Errorf("Drops() = %+v, %v; want none", d, err)
	}
}
