package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
	"github.com/sluicehq/sluice/rdt"
	"github.com/sluicehq/sluice/rdt/resctrl"
)

// CacheSource is resctrl as the loop sees it: what the hardware offers,
// probed once, and the monitoring counters, read every iteration into
// the Observation.
type CacheSource interface {
	// Hardware is what resctrl offers (policies are validated against it
	// at start and on every reload).
	Hardware() rdt.Hardware
	// Sample reads every group's counters at now into the cache part of
	// the Observation. On error it still returns what it read. Called
	// from the loop goroutine only.
	Sample(now time.Time) (qos.CacheSample, error)
	// Counters is the last raw sample, for the Prometheus collector
	// (resctrl.NewCollector). Safe for concurrent use.
	Counters() rdt.MonSample
}

// CacheStatus is what /state shows about cache and bandwidth isolation.
type CacheStatus struct {
	// Supported: resctrl was found (and mounted) at start.
	Supported bool `json:"supported"`
	// Error says why it is off when it is not supported.
	Error string `json:"error,omitempty"`
	// Sample is the last iteration's hardware and counters.
	Sample *qos.CacheSample `json:"sample,omitempty"`
}

// ResctrlConfig configures a Resctrl.
type ResctrlConfig struct {
	// FS is the resctrl mount (resctrl.Dir, or a fake in tests).
	FS resctrl.FS
	// Hardware is resctrl.Probe's result.
	Hardware rdt.Hardware
	// Tasks lists each cgroup's threads, from the Layout's hierarchy
	// (v1 tasks, v2 cgroup.threads; see resctrl.CgroupTasks).
	Tasks resctrl.TaskLister
	Log   *slog.Logger
	// Reconcile and Now are resctrl.Config's (defaults one minute and
	// time.Now).
	Reconcile time.Duration
	Now       func() time.Time
	// Policy is the rdt policy in force at start (for GroupFor);
	// SetPolicy follows reloads.
	Policy rdt.Policy
}

// Resctrl is the agent's cache and memory-bandwidth isolation: an
// Enforcer of the plan's Cache groups (run it as a non-inline
// Enforcement: moving tasks is slow), a CacheSource for the loop, and
// the group a new container starts in (GroupFor, for the converger).
type Resctrl struct {
	hw  rdt.Hardware
	mon *resctrl.Monitor
	log *slog.Logger
	pol atomic.Pointer[rdt.Policy]
	// merged mirrors the enforcer's Merged after each Apply.
	merged atomic.Bool

	// mu serialises the enforcer: Apply runs in a worker, GroupFor in the
	// converger.
	mu  sync.Mutex
	enf *resctrl.Enforcer

	// Loop goroutine only: the previous sample (rates) and the kernel's
	// offline allocation at start, handed to the first Sample only.
	prev    rdt.MonSample
	current *rdt.Allocation

	lastMu sync.Mutex
	last   rdt.MonSample
}

// NewResctrl builds the enforcer and monitor over cfg.FS and reads the
// offline allocation the kernel holds, so the first decision resumes
// from it (a restarted agent adopts its groups without a gap).
func NewResctrl(cfg ResctrlConfig) (*Resctrl, error) {
	if cfg.Log == nil {
		return nil, errors.New("resctrl: no logger")
	}
	enf, err := resctrl.New(resctrl.Config{
		FS: cfg.FS, Hardware: cfg.Hardware, Tasks: cfg.Tasks, Log: cfg.Log,
		Reconcile: cfg.Reconcile, Now: cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	r := &Resctrl{hw: cfg.Hardware, mon: resctrl.NewMonitor(cfg.FS, cfg.Hardware), log: cfg.Log, enf: enf}
	r.SetPolicy(cfg.Policy)
	if r.current, err = enf.Current(); err != nil {
		cfg.Log.Warn("could not read the offline cache allocation in force; starting from the policy", "err", err)
	}
	return r, nil
}

// SetPolicy follows the rdt policy in force (for GroupFor). Safe for
// concurrent use.
func (r *Resctrl) SetPolicy(p rdt.Policy) { r.pol.Store(&p) }

// Hardware implements CacheSource.
func (r *Resctrl) Hardware() rdt.Hardware { return r.hw }

// Sample implements CacheSource.
func (r *Resctrl) Sample(now time.Time) (qos.CacheSample, error) {
	s, err := r.mon.Read(now)
	out := qos.CacheSample{Hardware: r.hw, OfflineMerged: r.merged.Load(), Current: r.current}
	r.current = nil
	if d := rdt.Rates(r.prev, s); len(d) > 0 {
		out.Domains = d
	}
	r.prev = s
	r.lastMu.Lock()
	r.last = s
	r.lastMu.Unlock()
	return out, err
}

// Counters implements CacheSource.
func (r *Resctrl) Counters() rdt.MonSample {
	r.lastMu.Lock()
	defer r.lastMu.Unlock()
	return r.last
}

// Apply implements Enforcer for the plan's Cache groups. An empty Cache
// (the rdt section turned off) removes Sluice's groups: their tasks go
// back to the default group.
func (r *Resctrl) Apply(ctx context.Context, plan qos.Plan) []qos.IntentResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	rs := r.enf.Apply(ctx, plan.Cache)
	r.merged.Store(r.enf.Merged())
	return rs
}

// GroupFor names the resctrl group a new container of class and priority
// should start in (OCI linux.intelRdt.closID), "" for none yet; see
// resctrl.Enforcer.GroupFor. Safe for concurrent use.
func (r *Resctrl) GroupFor(class qos.Class, priority int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.enf.GroupFor(rdt.Class(class), priority, *r.pol.Load())
}

// checkCachePolicy checks p's rdt section against the host's hardware: a
// policy impossible here is invalid like any other (ErrPolicyInvalid).
// Policy files are checked with their lines when loaded
// (LoadPolicyFileFor); this catches a policy built any other way.
func checkCachePolicy(src CacheSource, p qos.Policy) error {
	if src == nil {
		return nil
	}
	if err := p.RDT.Validate(src.Hardware()); err != nil {
		return fmt.Errorf("%w: on this host's resctrl hardware: %w", ErrPolicyInvalid, err)
	}
	return nil
}

// ResctrlTasks lists a cgroup's threads for resctrl from the Layout's cpu
// hierarchy, where discovery finds the workloads: its "tasks" file on v1
// and hybrid hosts, "cgroup.threads" on v2 (resctrl groups hold threads;
// cgroup.procs would miss all but each process's leader).
func ResctrlTasks(l cgroupfs.Layout) (resctrl.CgroupTasks, error) {
	h := l.Hierarchy(cgroupfs.CPU)
	if h == "" {
		return resctrl.CgroupTasks{}, fmt.Errorf("resctrl tasks: the %s cgroup layout has no cpu hierarchy", l.Mode())
	}
	file := "tasks"
	if l.Mode() == cgroupfs.ModeV2 {
		file = "cgroup.threads"
	}
	return resctrl.CgroupTasks{Root: h, File: file}, nil
}
