package ebpf

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	cebpf "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

//go:generate ./generate.sh runq

// ErrNotSupported is cilium/ebpf's capability sentinel, re-exported so
// callers can match this package's errors without importing cilium/ebpf.
// It is the same value: errors.Is works with either name.
var ErrNotSupported = cebpf.ErrNotSupported

// KeyMode selects which cgroup id the programs key their counters by. It is
// a load-time constant in the programs (.rodata): the verifier drops the
// other branch.
type KeyMode uint32

const (
	// KeyCgroupV2 keys by the cgroup v2 (default hierarchy) id: the inode
	// of the directory under the cgroup2 mount (/sys/fs/cgroup/unified on
	// hybrid hosts, /sys/fs/cgroup on unified ones).
	KeyCgroupV2 KeyMode = 0
	// KeyCgroupV1CPU keys by the id of the task's cgroup in the v1 cpu
	// controller hierarchy: the inode of the directory under
	// /sys/fs/cgroup/cpu. For legacy and hybrid hosts, where CPU limits
	// live in v1.
	KeyCgroupV1CPU KeyMode = 1
)

func (m KeyMode) String() string {
	switch m {
	case KeyCgroupV2:
		return "cgroup-v2"
	case KeyCgroupV1CPU:
		return "cgroup-v1-cpu"
	}
	return fmt.Sprintf("KeyMode(%d)", uint32(m))
}

// AttachMode is how the programs hook the scheduler tracepoints.
type AttachMode int

const (
	// AttachAuto tries tp_btf, then raw_tp.
	AttachAuto AttachMode = iota
	// AttachTPBTF uses BTF-typed tracepoints (BPF_PROG_TYPE_TRACING,
	// Linux 5.5+); cheapest.
	AttachTPBTF
	// AttachRawTP uses raw tracepoints (Linux 4.17+), for kernels or
	// security policies that refuse tracing programs.
	AttachRawTP
)

func (m AttachMode) String() string {
	switch m {
	case AttachAuto:
		return "auto"
	case AttachTPBTF:
		return "tp_btf"
	case AttachRawTP:
		return "raw_tp"
	}
	return fmt.Sprintf("AttachMode(%d)", int(m))
}

// Options configure Load. The zero value keys by cgroup v2 id, attaches
// with tp_btf or raw_tp, and uses the default map sizes.
type Options struct {
	KeyMode KeyMode
	Attach  AttachMode
	// MaxCgroups bounds the per-cgroup counter map (default 4096). When it
	// is full, new cgroups are not counted (see dropCounts.Cgroups); with
	// Watch, a Read that finds it more than half full gives back the
	// slots of the cgroups not watched (evictUnwatched).
	MaxCgroups uint32
	// MaxTasks bounds, with raw_tp, the map of where each task's kernel
	// counters stood at its last switch-out (a preallocated hash by thread
	// id of the live tasks that switched out since Load, default 32768);
	// tp_btf keeps that in task storage, freed with the task, which has no
	// bound. While it is full, tasks not in it are not counted (see
	// dropCounts.TaskSlots).
	MaxTasks uint32
	// SlotReads is how many Reads reuse the hash from cgroup ids to
	// counter slots read by the first of them (0 or 1: every Read reads
	// it). Reading the hash walks all its buckets, MaxCgroups of them,
	// whatever the number of cgroups; slots stay their cgroups' until
	// Forget (which the Sampler sees), so reuse misses only cgroups that
	// took a slot since: they are read from the next refresh on, counted
	// from their first switch-out all the same (counters only grow).
	SlotReads int
	// trackTasksInCgroup, when non-zero, also sums run-queue delay per
	// task (pid) for the tasks in this cgroup (an id in KeyMode), read
	// with taskRunqDelay. Costs a hash update per switch-out of those
	// tasks; meant for tests and debugging.
	trackTasksInCgroup uint64
}

func (o Options) validate() error {
	var errs []error
	if o.KeyMode != KeyCgroupV2 && o.KeyMode != KeyCgroupV1CPU {
		errs = append(errs, fmt.Errorf("key mode: unknown %v", o.KeyMode))
	}
	if o.Attach < AttachAuto || o.Attach > AttachRawTP {
		errs = append(errs, fmt.Errorf("attach: unknown %v", o.Attach))
	}
	return errors.Join(errs...)
}

// dropCounts counts what the programs could not record, or recorded only in
// part. Cumulative since Load.
type dropCounts struct {
	// Cgroups: task switch-outs of cgroups that found MaxCgroups reached;
	// their waits and runs are not counted.
	Cgroups uint64
	// TaskSlots: task switch-outs that found no per-task slot (task
	// storage not allocated, or MaxTasks reached with raw_tp). A task that
	// had a slot loses nothing (its next switch-out counts it); one that
	// never had one is not counted until it gets one.
	TaskSlots uint64
	// Tasks: per-task sums not kept (trackTasksInCgroup only).
	Tasks uint64
	// MergedWaits: waits known only by their sum, because the programs
	// missed a task's switch-out in between (e.g. a recursion miss). They
	// are counted, in RunqHist at their mean.
	MergedWaits uint64
}

// Sampler owns the loaded programs, their links and maps. Create it once at
// agent start with Load; Close it on shutdown. Its methods are safe for
// concurrent use.
type Sampler struct {
	attach AttachMode
	mode   KeyMode
	maps   runqMaps
	links  []link.Link
	progs  []*cebpf.Program

	mu sync.Mutex
	// prev holds each cgroup's cumulative counters at the previous Read.
	prev map[uint64]CgroupStats
	// Read buffers, reused across Reads.
	noBatch    bool
	batchKeys  []uint64
	batchSlots []uint32
	perCPU     []runqCgroupStats
	// slotCache is the hash from cgroup id to slot as last read, reused
	// for slotReads Reads (Options.SlotReads); slotAge counts them.
	slotReads, slotAge int
	slotCache          map[uint64]uint32
	// watch, when not nil, is every cgroup Read reports (Watch); watched
	// is slotCache cut down to them, rebuilt with it. fresh holds the
	// cgroups watched since the last Read: their first Read only records
	// where their counters stand.
	watch   map[uint64]bool
	watched map[uint64]uint32
	fresh   map[uint64]bool
	// statKeys and statBuf receive batched reads of the stats array:
	// statBuf holds every CPU's copy of slots 0 to the highest in use.
	statKeys []uint32
	statBuf  []runqCgroupStats

	// wake reads wake_events; nil until NextWake is first called.
	wake *wakeRing
}

// Load loads the run-queue programs and attaches them. Errors from a
// kernel that cannot run them (no BTF, no permission, missing program
// type) wrap ErrNotSupported and name what is missing. Kernels before 5.11
// charge BPF maps to RLIMIT_MEMLOCK: the agent's main should call
// github.com/cilium/ebpf/rlimit.RemoveMemlock first (a process-wide
// setting, so not done here).
func Load(opts Options) (*Sampler, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("ebpf runq: options: %w", err)
	}
	switch opts.Attach {
	case AttachTPBTF, AttachRawTP:
		return loadAttached(opts, opts.Attach)
	}
	s, errBTF := loadAttached(opts, AttachTPBTF)
	if errBTF == nil {
		return s, nil
	}
	s, errRaw := loadAttached(opts, AttachRawTP)
	if errRaw == nil {
		return s, nil
	}
	return nil, errors.Join(errBTF, errRaw)
}

func loadAttached(opts Options, attach AttachMode) (*Sampler, error) {
	s, err := loadDetached(opts, attach)
	if err != nil {
		return nil, err
	}
	if err := s.attachLinks(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// loadDetached loads the maps and one flavour's programs without attaching
// them (tests run them with BPF_PROG_TEST_RUN).
func loadDetached(opts Options, attach AttachMode) (*Sampler, error) {
	spec, err := loadRunq()
	if err != nil {
		return nil, fmt.Errorf("ebpf runq: parse embedded object: %w", err)
	}
	maxCgroups := spec.Maps[runqMapStats].MaxEntries
	if opts.MaxCgroups > 0 {
		maxCgroups = opts.MaxCgroups
	}
	for _, m := range []string{runqMapStats, runqMapCgroupSlots, runqMapFreeSlots} {
		spec.Maps[m].MaxEntries = maxCgroups
	}
	if opts.MaxTasks > 0 {
		spec.Maps[runqMapTaskSeenByPid].MaxEntries = opts.MaxTasks
	}
	if err := spec.Variables[runqVarKeyMode].Set(uint32(opts.KeyMode)); err != nil {
		return nil, fmt.Errorf("ebpf runq: set key_mode: %w", err)
	}
	if err := spec.Variables[runqVarTrackTaskCgroup].Set(opts.trackTasksInCgroup); err != nil {
		return nil, fmt.Errorf("ebpf runq: set track_task_cgroup: %w", err)
	}
	// Tasks started from now on are counted from their fork; the programs
	// compare their start_time, which is on this clock.
	var now unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &now); err != nil {
		return nil, fmt.Errorf("ebpf runq: read CLOCK_MONOTONIC: %w", err)
	}
	if err := spec.Variables[runqVarLoadedNs].Set(uint64(now.Nano())); err != nil {
		return nil, fmt.Errorf("ebpf runq: set loaded_ns: %w", err)
	}

	// Only the chosen flavour's programs are loaded, so a kernel that
	// refuses tp_btf never sees them when raw_tp is asked for.
	hooks := schedHooks(attach)
	for name := range spec.Programs {
		if !slices.ContainsFunc(hooks[:], func(h schedHook) bool { return h.program == name }) {
			delete(spec.Programs, name)
		}
	}
	// Each flavour keeps queue marks in its own map; not creating the
	// other's spares memory (the hash is preallocated) and, for raw_tp,
	// the need for task storage (Linux 5.11+).
	if attach == AttachRawTP {
		delete(spec.Maps, runqMapTaskSeen)
	} else {
		delete(spec.Maps, runqMapTaskSeenByPid)
	}
	coll, err := cebpf.NewCollection(spec)
	if err != nil {
		return nil, unsupported(fmt.Sprintf("load %s programs", attach), err)
	}
	defer coll.Close() // closes only what was not detached below
	s := &Sampler{attach: attach, mode: opts.KeyMode, prev: map[uint64]CgroupStats{}, slotReads: opts.SlotReads}
	s.maps = runqMaps{
		CgroupSlots:   coll.DetachMap(runqMapCgroupSlots),
		Drops:         coll.DetachMap(runqMapDrops),
		FreeSlots:     coll.DetachMap(runqMapFreeSlots),
		LastCgroup:    coll.DetachMap(runqMapLastCgroup),
		Stats:         coll.DetachMap(runqMapStats),
		TaskDelay:     coll.DetachMap(runqMapTaskDelay),
		TaskSeen:      coll.DetachMap(runqMapTaskSeen),
		TaskSeenByPid: coll.DetachMap(runqMapTaskSeenByPid),
		WakeCfg:       coll.DetachMap(runqMapWakeCfg),
		WakeClass:     coll.DetachMap(runqMapWakeClass),
		WakeEvents:    coll.DetachMap(runqMapWakeEvents),
		WakeLast:      coll.DetachMap(runqMapWakeLast),
	}
	for _, h := range hooks {
		s.progs = append(s.progs, coll.DetachProgram(h.program))
	}
	ncpu, err := cebpf.PossibleCPU()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("ebpf runq: possible CPUs: %w", err)
	}
	s.perCPU = make([]runqCgroupStats, ncpu)
	// Every counter slot starts free; the programs take them from here.
	for slot := range maxCgroups {
		if err := s.maps.FreeSlots.Update(nil, slot, cebpf.UpdateAny); err != nil {
			s.Close()
			return nil, fmt.Errorf("ebpf runq: fill free slots: %w", err)
		}
	}
	return s, nil
}

// schedHook is one program and the scheduler tracepoint it hooks.
type schedHook struct{ tracepoint, program string }

// schedHooks lists attach's flavour of the programs, in the order of
// Sampler.progs: the counting on sched_switch first, then the wake-up
// posts (wake.go).
func schedHooks(attach AttachMode) [3]schedHook {
	if attach == AttachRawTP {
		return [...]schedHook{
			{"sched_switch", runqProgRawTpSchedSwitch},
			{"sched_wakeup", runqProgRawTpSchedWakeup},
			{"sched_wakeup_new", runqProgRawTpSchedWakeupNew},
		}
	}
	return [...]schedHook{
		{"sched_switch", runqProgTpBtfSchedSwitch},
		{"sched_wakeup", runqProgTpBtfSchedWakeup},
		{"sched_wakeup_new", runqProgTpBtfSchedWakeupNew},
	}
}

// attachLinks hooks the loaded programs to their tracepoints.
func (s *Sampler) attachLinks() error {
	for i, h := range schedHooks(s.attach) {
		tp := h.tracepoint
		var l link.Link
		var err error
		if s.attach == AttachTPBTF {
			l, err = link.AttachTracing(link.TracingOptions{Program: s.progs[i], AttachType: cebpf.AttachTraceRawTp})
		} else {
			l, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp, Program: s.progs[i]})
		}
		if err != nil {
			return unsupported(fmt.Sprintf("attach %s/%s", s.attach, tp), err)
		}
		s.links = append(s.links, l)
	}
	return nil
}

// unsupported wraps a kernel refusal so that it matches ErrNotSupported
// (the agent falls back to procfs) while keeping the cause (EPERM, a
// verifier log...) matchable too.
func unsupported(what string, err error) error {
	if errors.Is(err, unix.EPERM) {
		what += " (needs CAP_BPF and CAP_PERFMON, or root)"
	}
	if errors.Is(err, ErrNotSupported) {
		return fmt.Errorf("ebpf runq: %s: %w", what, err)
	}
	return fmt.Errorf("ebpf runq: %s: %w: %w", what, ErrNotSupported, err)
}

// Attach reports which tracepoint flavour is in use.
func (s *Sampler) Attach() AttachMode { return s.attach }

// KeyMode reports which cgroup ids Read is keyed by.
func (s *Sampler) KeyMode() KeyMode { return s.mode }

// Read returns, for each cgroup seen since Load, what its tasks did since
// the previous Read (the first Read: since Load). Cgroups with no activity
// in the window are present with zero counts until Forget.
//
// A task's wait and the run that follows it are counted when the task next
// leaves the CPU (a task running across a Read shows in the next window),
// to the cgroup it is in then. Tasks started after Load are counted from
// their fork; for one that existed before, the first switch-out after Load
// only records where its counters stand.
//
// The programs never reset their counters: each CPU's counters only grow,
// Read sums the CPUs and subtracts the sums it saw last time. A sample that
// lands while Read runs is in this window or the next, never lost. A window
// may be torn across fields (a wait counted in RunqHist now and in
// RunqDelayTotal in the next window) but totals over windows are exact.
func (s *Sampler) Read() (map[uint64]CgroupStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.totals()
	if err != nil {
		return nil, err
	}
	out := make(map[uint64]CgroupStats, len(cur))
	for id, c := range cur {
		if s.fresh[id] {
			delete(s.fresh, id)
			continue // its counts so far may be from before it was watched
		}
		out[id] = since(c, s.prev[id])
	}
	s.prev = cur
	return out, nil
}

// Watch limits Read to the cgroups ids names (nil: every cgroup the
// programs count, the default). The hash holds every cgroup that ran a
// task since load, not only the ones the caller cares about: on a host
// that starts and removes many cgroups (transient units, other runtimes'
// containers) reading and diffing all of them on every Read made the read
// most of the agent's CPU; their slots are given back once they crowd the
// map (evictUnwatched). A cgroup watched anew shows in Read from the
// Read after the first that finds its slot (that one records where its
// counters stand, which may include counts from before it was watched).
func (s *Sampler) Watch(ids []uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ids == nil {
		s.watch, s.watched, s.fresh = nil, nil, nil
		return
	}
	next := make(map[uint64]bool, len(ids))
	if s.fresh == nil {
		s.fresh = map[uint64]bool{}
	}
	for _, id := range ids {
		next[id] = true
		if !s.watch[id] {
			s.fresh[id] = true
		}
	}
	for id := range s.fresh {
		if !next[id] {
			delete(s.fresh, id)
		}
	}
	s.watch = next
	s.watched = nil // rebuilt from slotCache by the next Read
}

// errSparse: the slots in use are too spread out for a batched read.
var errSparse = errors.New("sparse slots")

// readBatch is how many cgroups one BPF_MAP_LOOKUP_BATCH call reads.
const readBatch = 128

// sparseFactor: slots are read one lookup each, rather than in batches
// from slot 0 up to the highest wanted, when that range is more than this
// many times the slots wanted. A system call costs about what copying a
// few dozen slots' per-CPU copies (288 bytes each) does, so a batch that
// copies up to 16 slots per slot wanted, in one call per 128, is still
// the cheaper read.
const sparseFactor = 16

// totals reads the cumulative counters of every cgroup, summed over CPUs:
// the cgroup ids and their slots from the hash (batched lookups, Linux
// 5.6+, 128 cgroups per system call; older kernels iterate key by key),
// then each slot's per-CPU copies, of which only those the cgroup owns
// count. Called with s.mu held: Forget, the only one to free slots, takes
// it too, so the slots read stay the cgroups'.
func (s *Sampler) totals() (map[uint64]CgroupStats, error) {
	if s.slotCache == nil || s.slotAge >= s.slotReads {
		slots, err := s.slots()
		if err != nil {
			return nil, fmt.Errorf("ebpf runq: read cgroup slots: %w", err)
		}
		s.slotCache, s.slotAge, s.watched = slots, 0, nil
		if err := s.evictUnwatched(); err != nil {
			return nil, err
		}
	}
	s.slotAge++
	slots := s.slotCache
	if s.watch != nil {
		if s.watched == nil {
			s.watched = make(map[uint64]uint32, len(s.watch))
			for id, slot := range s.slotCache {
				if s.watch[id] {
					s.watched[id] = slot
				}
			}
		}
		slots = s.watched
	}
	out := make(map[uint64]CgroupStats, len(slots))
	if !s.noBatch {
		err := s.statsBatch(slots, out)
		switch {
		case err == nil:
			return out, nil
		case errors.Is(err, ErrNotSupported):
			s.noBatch = true
		case !errors.Is(err, errSparse):
			return nil, fmt.Errorf("ebpf runq: read stats: %w", err)
		}
		clear(out)
	}
	for id, slot := range slots {
		if err := s.maps.Stats.Lookup(slot, &s.perCPU); err != nil {
			return nil, fmt.Errorf("ebpf runq: read stats of cgroup %d: %w", id, err)
		}
		out[id] = sumCPUs(id, s.perCPU)
	}
	return out, nil
}

// slots reads the hash from cgroup id to counter slot.
func (s *Sampler) slots() (map[uint64]uint32, error) {
	out := make(map[uint64]uint32, len(s.prev))
	if !s.noBatch {
		err := s.slotsBatch(out)
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, ErrNotSupported) {
			return nil, err
		}
		s.noBatch = true
		clear(out)
	}
	var (
		id   uint64
		slot uint32
	)
	it := s.maps.CgroupSlots.Iterate()
	for it.Next(&id, &slot) {
		out[id] = slot
	}
	return out, it.Err()
}

func (s *Sampler) slotsBatch(out map[uint64]uint32) error {
	if s.batchKeys == nil {
		s.batchKeys = make([]uint64, readBatch)
		s.batchSlots = make([]uint32, readBatch)
	}
	var cursor cebpf.MapBatchCursor
	for {
		n, err := s.maps.CgroupSlots.BatchLookup(&cursor, s.batchKeys, s.batchSlots, nil)
		for k := range n {
			out[s.batchKeys[k]] = s.batchSlots[k]
		}
		if errors.Is(err, cebpf.ErrKeyNotExist) {
			return nil // the end of the map
		}
		if err != nil {
			return err
		}
	}
}

// statsBatch reads the stats of slots with batched lookups of the per-CPU
// array, from slot 0 up to the highest slot in use, 128 slots per system
// call, instead of one lookup per cgroup: the programs take slots from a
// queue the loader filled in order, so the slots in use sit low, and the
// read is a few calls for the few hundred cgroups a host has (the hash
// holds every cgroup that ran a task, not only the workloads).
func (s *Sampler) statsBatch(slots map[uint64]uint32, out map[uint64]CgroupStats) error {
	if len(slots) == 0 {
		return nil
	}
	var top uint32
	for _, slot := range slots {
		top = max(top, slot)
	}
	n, ncpu := int(top)+1, len(s.perCPU)
	if n > sparseFactor*len(slots) {
		// Slots freed by Forget go to the back of the free queue, so
		// after much cgroup churn the slots in use spread out, and the
		// watched ones sit among the others; reading every slot below
		// the highest would then copy mostly unwanted ones (ncpu copies
		// each). Past sparseFactor to one, one lookup per cgroup is
		// cheaper.
		return fmt.Errorf("slots read spread over %d: %w", n, errSparse)
	}
	if len(s.statBuf) < n*ncpu {
		s.statBuf = make([]runqCgroupStats, n*ncpu)
	}
	if s.statKeys == nil {
		s.statKeys = make([]uint32, readBatch)
	}
	var cursor cebpf.MapBatchCursor
	for start := 0; start < n; {
		count := min(readBatch, n-start)
		got, err := s.maps.Stats.BatchLookup(&cursor, s.statKeys[:count], s.statBuf[start*ncpu:(start+count)*ncpu], nil)
		if got > 0 && s.statKeys[0] != uint32(start) {
			return fmt.Errorf("batched read of slots from %d began at slot %d", start, s.statKeys[0])
		}
		start += got
		if errors.Is(err, cebpf.ErrKeyNotExist) || (err == nil && got == 0) {
			if start < n {
				return fmt.Errorf("batched read ended at slot %d, before slot %d", start, n)
			}
			break
		}
		if err != nil {
			return err
		}
	}
	for id, slot := range slots {
		out[id] = sumCPUs(id, s.statBuf[int(slot)*ncpu:(int(slot)+1)*ncpu])
	}
	return nil
}

// sumCPUs sums the per-CPU copies of a slot that cgroup id owns (a CPU
// that never charged it there holds another's counters, or none).
func sumCPUs(id uint64, perCPU []runqCgroupStats) CgroupStats {
	var c CgroupStats
	for i := range perCPU {
		v := &perCPU[i]
		if v.CgroupId != id {
			continue
		}
		for j, n := range v.RunqHist {
			c.RunqHist[j] += n
		}
		c.RunqDelayTotal += time.Duration(v.RunqDelayNs)
		c.OnCPU += time.Duration(v.OncpuNs)
		c.Preemptions += v.Preemptions
	}
	return c
}

// Forget drops a cgroup's counters (call it when the cgroup is removed, so
// the bounded map has room for new ones). Forgetting an unknown id is not
// an error. A cgroup forgotten while its tasks still run is counted again
// from zero, except for what they do in the moment Forget takes.
func (s *Sampler) Forget(cgroupID uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.forget(cgroupID)
}

// evictUnwatched gives back the slots of every cgroup not watched once the
// cgroups holding one (slotCache, just read) fill more than half the map.
// The programs give a slot to every cgroup that runs a task, and only the
// caller knows which ones it tracks and when they go (Forget): on a host
// that creates and removes cgroups the caller never tracks (transient
// units, other runtimes' containers, tests) their slots would otherwise
// fill the map, and from then on no new workload would be counted. What
// an unwatched cgroup counted is never reported, so nothing is lost; one
// still running takes a slot again at its next switch-out.
func (s *Sampler) evictUnwatched() error {
	if s.watch == nil || len(s.slotCache) <= int(s.maps.Stats.MaxEntries()/2) {
		return nil
	}
	for id := range s.slotCache {
		if s.watch[id] {
			continue
		}
		if err := s.forget(id); err != nil {
			return err
		}
	}
	return nil
}

// forget is Forget with s.mu held.
func (s *Sampler) forget(cgroupID uint64) error {
	delete(s.prev, cgroupID)
	delete(s.slotCache, cgroupID)
	delete(s.watched, cgroupID)
	var slot uint32
	err := s.maps.CgroupSlots.Lookup(cgroupID, &slot)
	if errors.Is(err, cebpf.ErrKeyNotExist) {
		return nil
	}
	if err == nil {
		err = s.maps.CgroupSlots.Delete(cgroupID)
	}
	// No CPU's copy is the cgroup's any more: a CPU that still has it as
	// its last cgroup sees the owner changed and asks the hash, which no
	// longer has it. Only then can the slot be given to another cgroup.
	if err == nil {
		err = s.maps.Stats.Update(slot, make([]runqCgroupStats, len(s.perCPU)), cebpf.UpdateExist)
	}
	if err == nil {
		err = s.maps.FreeSlots.Update(nil, slot, cebpf.UpdateAny)
	}
	if err != nil && !errors.Is(err, cebpf.ErrKeyNotExist) {
		return fmt.Errorf("ebpf runq: forget cgroup %d: %w", cgroupID, err)
	}
	return nil
}

// taskWaits is one task's run-queue waits (Options.trackTasksInCgroup).
type taskWaits struct {
	// Total is the summed delay, comparable with run_delay in
	// /proc/<pid>/schedstat.
	Total time.Duration
	// Count is the number of waits, comparable with that file's
	// timeslice count (each wait ends in a switch-in).
	Count uint64
}

// taskRunqDelay returns the run-queue waits counted for pid (a thread id)
// since Load. Only tasks in Options.trackTasksInCgroup are tracked; others
// read zero.
func (s *Sampler) taskRunqDelay(pid int) (taskWaits, error) {
	var v runqTaskWaitSum
	err := s.maps.TaskDelay.Lookup(uint32(pid), &v)
	if errors.Is(err, cebpf.ErrKeyNotExist) {
		return taskWaits{}, nil
	}
	if err != nil {
		return taskWaits{}, fmt.Errorf("ebpf runq: read task %d delay: %w", pid, err)
	}
	return taskWaits{Total: time.Duration(v.DelayNs), Count: v.Waits}, nil
}

// recursionMisses counts scheduler events the kernel did not hand to the
// programs because one was already running on that CPU (Linux 5.12+);
// such events are not counted anywhere else.
func (s *Sampler) recursionMisses() (uint64, error) {
	var n uint64
	for _, p := range s.progs {
		st, err := p.Stats()
		if err != nil {
			return 0, fmt.Errorf("ebpf runq: program stats: %w", err)
		}
		n += st.RecursionMisses
	}
	return n, nil
}

// drops reads how many samples were lost to full maps since Load.
func (s *Sampler) drops() (dropCounts, error) {
	var d dropCounts
	for slot, dst := range []*uint64{&d.Cgroups, &d.TaskSlots, &d.Tasks, &d.MergedWaits} {
		var perCPU []uint64
		if err := s.maps.Drops.Lookup(uint32(slot), &perCPU); err != nil {
			return dropCounts{}, fmt.Errorf("ebpf runq: read drops: %w", err)
		}
		for _, n := range perCPU {
			*dst += n
		}
	}
	return d, nil
}

// Close detaches the programs and frees the maps.
func (s *Sampler) Close() error {
	var errs []error
	if s.wake != nil {
		errs = append(errs, s.wake.Close())
	}
	for _, l := range s.links {
		errs = append(errs, l.Close())
	}
	for _, p := range s.progs {
		errs = append(errs, p.Close())
	}
	errs = append(errs, s.maps.Close())
	s.links, s.progs = nil, nil
	return errors.Join(errs...)
}
