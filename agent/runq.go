package agent

import (
	"sync"
	"time"

	"github.com/sluicehq/sluice/ebpf"
	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
)

// RunqSource is the eBPF scheduler sampler as the loop sees it.
type RunqSource interface {
	// Read returns what accumulated per cgroup id since the previous Read.
	Read() (map[uint64]ebpf.CgroupStats, error)
	// CgroupID resolves a workload's cgroup path (relative to the hierarchy
	// roots) to the id the programs key by.
	CgroupID(cgroupPath string) (uint64, error)
}

// runqScope is what a RunqSource may also offer (the eBPF sampler does):
// reading only the cgroups the loop tracks, and giving back the counter
// slots of the cgroups it stopped tracking (the programs' map is bounded:
// without that, a host that has run 4096 workloads counts no new one).
type runqScope interface {
	Watch(ids []uint64)
	Forget(cgroupID uint64) error
}

// EBPFRunq is the eBPF scheduler sampler with the cgroup id lookup the loop
// needs: a RunqSource. Close it on shutdown.
type EBPFRunq struct {
	*ebpf.Sampler
	layout cgroupfs.Layout
}

// CgroupID resolves cgroupPath in the hierarchy the programs key by.
func (r EBPFRunq) CgroupID(cgroupPath string) (uint64, error) {
	return ebpf.CgroupIDFor(r.KeyMode(), r.layout, cgroupPath)
}

// LoadRunq loads the scheduler programs once, keyed by v1 cpu cgroup ids
// where CPU control lives in v1 (legacy and hybrid hosts), v2 ids otherwise.
// Any failure (no BTF, no permission, old kernel) wraps
// ebpf.ErrNotSupported and names the missing feature.
func LoadRunq(layout cgroupfs.Layout) (EBPFRunq, error) {
	// The loop reads every host tick; its workloads change at the
	// container tick, so the slot hash is read once a second
	// (runqWindowTicks at the default ticks): a new cgroup's counts come
	// in at most that late, complete.
	s, err := ebpf.Load(ebpf.Options{KeyMode: ebpf.KeyModeFor(layout), SlotReads: runqWindowTicks})
	if err != nil {
		return EBPFRunq{}, err
	}
	return EBPFRunq{Sampler: s, layout: layout}, nil
}

// runqWindowTicks is how many host ticks the per-class run-queue latency
// covers: p99 over 10 x 100 ms = the last second, long enough to hold a
// meaningful number of waits, short enough that the squeeze reacts within
// one container tick. Each tick's delta is kept apart so the window slides.
const runqWindowTicks = 10

// runqTracker turns per-tick eBPF deltas into the observation's latency
// summaries. Loop-goroutine only, except totals (read by /metrics scrapes).
type runqTracker struct {
	src RunqSource
	// wake, when the source offers wake-ups, is told each tracked
	// cgroup's class (online and offline; others unmarked); marked is
	// what it was told. A failed mark is tried again next pass.
	wake   WakeSource
	marked map[uint64]qos.Class

	ids      map[string]uint64 // cgroup path -> id, resolved once per workload
	idClass  map[uint64]qos.Class
	idWindow map[uint64]*ebpf.CgroupStats // per workload, since its last container tick

	ring [runqWindowTicks]map[qos.Class]ebpf.CgroupStats
	pos  int

	mu     sync.Mutex
	totals map[qos.Class]ebpf.CgroupStats // cumulative, for Prometheus
}

func newRunqTracker(src RunqSource) *runqTracker {
	r := &runqTracker{
		src: src, ids: map[string]uint64{}, idClass: map[uint64]qos.Class{},
		idWindow: map[uint64]*ebpf.CgroupStats{}, totals: map[qos.Class]ebpf.CgroupStats{},
		marked: map[uint64]qos.Class{},
	}
	r.wake, _ = src.(WakeSource)
	return r
}

// wakeClass is how the programs' wake-ups see a class.
func wakeClass(c qos.Class) ebpf.WakeClass {
	switch c {
	case qos.ClassOnline:
		return ebpf.WakeClassOnline
	case qos.ClassOffline:
		return ebpf.WakeClassOffline
	}
	return ebpf.WakeClassNone
}

// track maps the current workloads' cgroups to ids. Paths that no longer
// hold a workload are dropped; an id that cannot be resolved (the cgroup
// vanished between discovery and now) is retried next time.
func (r *runqTracker) track(ws []qos.WorkloadSample) {
	live := make(map[string]bool, len(ws))
	r.idClass = make(map[uint64]qos.Class, len(ws))
	changed := false // a workload came or went: the source's watch list too
	for _, w := range ws {
		live[w.CgroupPath] = true
		id, ok := r.ids[w.CgroupPath]
		if !ok {
			var err error
			if id, err = r.src.CgroupID(w.CgroupPath); err != nil {
				continue
			}
			r.ids[w.CgroupPath] = id
		}
		r.idClass[id] = w.Class
		if c, ok := r.marked[id]; r.wake != nil && (!ok || c != w.Class) {
			if r.wake.SetWakeClass(id, wakeClass(w.Class)) == nil {
				r.marked[id] = w.Class
			}
		}
		if r.idWindow[id] == nil {
			r.idWindow[id] = &ebpf.CgroupStats{}
			changed = true
		}
	}
	scope, _ := r.src.(runqScope)
	for p, id := range r.ids {
		if !live[p] {
			delete(r.ids, p)
			delete(r.idWindow, id)
			if _, ok := r.marked[id]; ok {
				_ = r.wake.SetWakeClass(id, ebpf.WakeClassNone)
				delete(r.marked, id)
			}
			if scope != nil {
				// Best effort: a slot not given back only costs room.
				_ = scope.Forget(id)
			}
			changed = true
		}
	}
	if scope != nil && changed {
		ids := make([]uint64, 0, len(r.idWindow))
		for id := range r.idWindow {
			ids = append(ids, id)
		}
		scope.Watch(ids)
	}
}

// tick reads one host tick's deltas and folds them into the window.
func (r *runqTracker) tick() error {
	stats, err := r.src.Read()
	if err != nil {
		return err
	}
	perClass := make(map[qos.Class]ebpf.CgroupStats, len(qos.Classes))
	for id, st := range stats {
		c, ok := r.idClass[id]
		if !ok {
			continue
		}
		cs := perClass[c]
		cs.Add(st)
		perClass[c] = cs
		r.idWindow[id].Add(st)
	}
	r.ring[r.pos] = perClass
	r.pos = (r.pos + 1) % len(r.ring)
	r.mu.Lock()
	for c, st := range perClass {
		t := r.totals[c]
		t.Add(st)
		r.totals[c] = t
	}
	r.mu.Unlock()
	return nil
}

// classSummaries summarises the sliding window per class.
func (r *runqTracker) classSummaries(classes map[qos.Class]qos.ClassUsage) {
	for _, c := range qos.Classes {
		var sum ebpf.CgroupStats
		for _, m := range r.ring {
			if st, ok := m[c]; ok {
				sum.Add(st)
			}
		}
		if sum.RunqCount() == 0 {
			continue
		}
		s := ebpf.Summarize(&sum.RunqHist)
		u := classes[c]
		u.RunqLatency = &s
		classes[c] = u
	}
}

// workloadSummaries fills each workload's latency and eBPF CPU rate over the
// container window that just ended, and starts the next window.
func (r *runqTracker) workloadSummaries(ws []qos.WorkloadSample, window time.Duration) {
	for i := range ws {
		id, ok := r.ids[ws[i].CgroupPath]
		if !ok {
			continue
		}
		st := r.idWindow[id]
		if st == nil {
			continue
		}
		if st.RunqCount() > 0 {
			s := ebpf.Summarize(&st.RunqHist)
			ws[i].RunqLatency = &s
		}
		if window > 0 {
			ws[i].OnCPUMilli = int64(st.OnCPU * 1000 / window)
		}
		*st = ebpf.CgroupStats{}
	}
}

// cumulative returns the per-class totals for /metrics.
func (r *runqTracker) cumulative() map[qos.Class]ebpf.CgroupStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[qos.Class]ebpf.CgroupStats, len(r.totals))
	for c, st := range r.totals {
		out[c] = st
	}
	return out
}
