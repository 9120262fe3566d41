package agent

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/ebpf"
	"github.com/sluicehq/sluice/qos"
)

// fakeRunq hands out per-tick deltas the test sets, keyed by cgroup id.
type fakeRunq struct {
	mu   sync.Mutex
	ids  map[string]uint64
	next map[uint64]ebpf.CgroupStats
}

func (f *fakeRunq) CgroupID(path string) (uint64, error) {
	if id, ok := f.ids[path]; ok {
		return id, nil
	}
	return 0, fmt.Errorf("cgroup %s: no such cgroup", path)
}

func (f *fakeRunq) Read() (map[uint64]ebpf.CgroupStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.next
	f.next = map[uint64]ebpf.CgroupStats{}
	return out, nil
}

// waits returns stats with n run-queue waits of about d each.
func waits(n uint64, d time.Duration, onCPU time.Duration) ebpf.CgroupStats {
	var st ebpf.CgroupStats
	slot := 0
	for i := range ebpf.HistSlots {
		if lo, hi := ebpf.SlotBounds(i); float64(d) >= lo && float64(d) < hi {
			slot = i
		}
	}
	st.RunqHist[slot] = n
	st.RunqDelayTotal = time.Duration(n) * d
	st.OnCPU = onCPU
	return st
}

// Online run-queue latency above the policy's target squeezes the offline
// budget beyond the water level; the observation carries per-class and
// per-workload summaries and the eBPF CPU rate.
func TestRunqLatencyDrivesTheSqueeze(t *testing.T) {
	r := newRig(t)
	rq := &fakeRunq{ids: map[string]uint64{"/online/web": 11, r.a.policy.OfflineParent + "/a": 22}, next: map[uint64]ebpf.CgroupStats{}}
	r.a.runq = newRunqTracker(rq)
	r.a.policy.CPU.OnlineRunqLatencyP99 = time.Millisecond

	r.host.s.CPUUsedMilli = 2000
	r.step(0, 0, 0)
	for range 30 { // calm: let the budget grow
		rq.next = map[uint64]ebpf.CgroupStats{11: waits(100, 20*time.Microsecond, 0)}
		r.step(time.Second, 500, 500)
	}
	calm := r.a.Snapshot()
	if l := calm.Classes[qos.ClassOnline].RunqLatency; l == nil || l.P99 > time.Millisecond {
		t.Fatalf("calm online latency %+v, want a summary below 1ms", l)
	}
	// Online tasks now wait ~8 ms per wake-up, with the same CPU use.
	for range 3 {
		rq.next = map[uint64]ebpf.CgroupStats{11: waits(100, 8*time.Millisecond, 400*time.Millisecond), 22: waits(10, time.Millisecond, 0)}
		r.step(time.Second, 500, 500)
	}
	hot := r.a.Snapshot()
	l := hot.Classes[qos.ClassOnline].RunqLatency
	if l == nil || l.P99 < 4*time.Millisecond {
		t.Fatalf("online latency %+v, want p99 near 8ms", l)
	}
	if hot.Plan.OfflineCPU.BudgetMilli >= calm.Plan.OfflineCPU.BudgetMilli {
		t.Errorf("budget %dm -> %dm: online p99 %v above the 1ms target must squeeze offline", calm.Plan.OfflineCPU.BudgetMilli, hot.Plan.OfflineCPU.BudgetMilli, l.P99)
	}
	if !strings.Contains(hot.Plan.OfflineCPU.Reason.String(), "run-queue") && !strings.Contains(hot.Plan.OfflineCPU.Reason.String(), "runq") {
		t.Errorf("reason %q does not name the run-queue latency", hot.Plan.OfflineCPU.Reason.String())
	}
	for _, w := range hot.Workloads {
		if w.ID == "web" {
			if w.RunqLatency == nil || w.OnCPUMilli != 400 {
				t.Errorf("web: latency %+v on-cpu %dm, want a summary and 400m", w.RunqLatency, w.OnCPUMilli)
			}
		}
	}
	if got := r.a.runq.cumulative()[qos.ClassOnline].RunqCount(); got != 30*100+3*100 {
		t.Errorf("cumulative online waits %d, want %d", got, 3300)
	}
}

// scopedRunq is a fakeRunq that also takes a watch list and forgets.
type scopedRunq struct {
	fakeRunq
	watch     []uint64
	forgotten []uint64
}

func (f *scopedRunq) Watch(ids []uint64)     { f.watch = slices.Sorted(slices.Values(ids)) }
func (f *scopedRunq) Forget(id uint64) error { f.forgotten = append(f.forgotten, id); return nil }

// The tracker tells a source that offers it which cgroups to read (the
// workloads') and gives back the slot of a workload that went away.
func TestRunqTrackerWatchesWorkloadsAndForgetsRemovedOnes(t *testing.T) {
	src := &scopedRunq{fakeRunq: fakeRunq{ids: map[string]uint64{"/a": 1, "/b": 2, "/c": 3}}}
	r := newRunqTracker(src)
	r.track([]qos.WorkloadSample{{CgroupPath: "/a", Class: qos.ClassOnline}, {CgroupPath: "/b", Class: qos.ClassOffline}})
	if !slices.Equal(src.watch, []uint64{1, 2}) || len(src.forgotten) != 0 {
		t.Fatalf("watch %v forgotten %v, want [1 2] and none", src.watch, src.forgotten)
	}
	r.track([]qos.WorkloadSample{{CgroupPath: "/a", Class: qos.ClassOnline}, {CgroupPath: "/c", Class: qos.ClassOffline}})
	if !slices.Equal(src.watch, []uint64{1, 3}) || !slices.Equal(src.forgotten, []uint64{2}) {
		t.Errorf("watch %v forgotten %v, want [1 3] and [2]", src.watch, src.forgotten)
	}
}
