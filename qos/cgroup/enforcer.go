package cgroup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
)

// Enforcer applies Plans to one cgroup hierarchy layout (v1 or v2): the
// offline CPU (quota, period, weight, idle), memory, OOM score and cpuset
// intents. It translates the plan's values into files and decides nothing.
//
// Contract: Apply is level-triggered and idempotent — it reads the kernel's
// current values, writes only differences, and applying the same plan twice
// writes nothing the second time. An intent whose Reason is zero is absent
// (every planned intent carries a reason) and leaves the kernel alone. A
// cgroup that vanished (a container exited) is skipped, not a failure. A
// failure on one file does not stop the others; the result names the cgroup,
// the file and the kernel error. Plans with DryRun set write nothing (not
// even the offline parent) and report ResultDryRun for intents that would
// change something. Methods are safe for concurrent use (calls serialise).
type Enforcer interface {
	Apply(ctx context.Context, plan qos.Plan) []qos.IntentResult
	// Current reads the offline parent's limits as the kernel has them, so
	// a restarted agent seeds its decision state from the source of truth.
	Current(ctx context.Context) (Settings, error)
	// Release lifts the offline parent's CPU and memory caps (and on v1
	// restores the children it clamped) and gives it every CPU back if it
	// was pinned, for policy OnStop: release. The
	// offline weight, idle flag and oom_score_adj stay: offline work keeps
	// yielding to online work.
	Release(ctx context.Context) []qos.IntentResult
	Mode() cgroupfs.Mode
}

// adoptParent switches to the plan's offline parent when it names one (a
// policy reload may move it); Current and Release use the last adopted.
func (c *Config) adoptParent(p string) error {
	if p == "" {
		return nil
	}
	clean := path.Clean("/" + p)
	if clean == "/" {
		return fmt.Errorf("offline parent %q: want a cgroup below the root", p)
	}
	c.OfflineParent = clean
	return nil
}

// parentIntents applies the plan's offline CPU and memory intents to the
// offline parent, each with its own outcome: cpuErr or memErr (the parent
// could not be prepared for that controller) fails the intent, a memory
// limit of 0 is refused, and otherwise cpu and memory do the version's
// writes.
func parentIntents(plan qos.Plan, parent string, at time.Time, cpuErr, memErr error,
	cpu func(o *outcome), memory func(o *outcome, high, max uint64)) []qos.IntentResult {
	var res []qos.IntentResult
	if !plan.OfflineCPU.Reason.IsZero() {
		o := outcome{dryRun: plan.DryRun}
		if cpuErr != nil {
			o.fail(cpuErr)
		} else {
			cpu(&o)
		}
		res = append(res, o.result(qos.IntentOfflineCPU, parent, at))
	}
	if !plan.OfflineMemory.Reason.IsZero() {
		o := outcome{dryRun: plan.DryRun}
		switch {
		case memErr != nil:
			o.fail(memErr)
		case plan.OfflineMemory.MaxBytes == 0:
			o.fail(errZeroMemory(parent))
		default:
			memory(&o, plan.OfflineMemory.HighBytes, plan.OfflineMemory.MaxBytes)
		}
		res = append(res, o.result(qos.IntentOfflineMemory, parent, at))
	}
	return res
}

// releaseIntents lifts the offline parent's caps: the CPU cap (cpu), the
// memory limits (memory) and the cpuset, each reported as its own intent.
func releaseIntents(ctx context.Context, parent string, at time.Time, cpusets cpusetWriter,
	cpu, memory func(o *outcome)) []qos.IntentResult {
	var c, m outcome
	cpu(&c)
	memory(&m)
	return append([]qos.IntentResult{c.result(qos.IntentOfflineCPU, parent, at), m.result(qos.IntentOfflineMemory, parent, at)},
		cpusets.release(ctx, parent, at)...)
}

func errZeroMemory(parent string) error {
	return fmt.Errorf("cgroup %s: refusing memory limit 0 bytes: it would OOM-kill all offline work at once (the decision core must floor the limit)", parent)
}

// dryRunAll reports a dry run on a host without the offline parent yet:
// every intent would change something (the cpusets included).
func dryRunAll(plan qos.Plan, target string, at time.Time) []qos.IntentResult {
	var res []qos.IntentResult
	if !plan.OfflineCPU.Reason.IsZero() {
		res = append(res, qos.IntentResult{Intent: qos.IntentOfflineCPU, Target: target, Status: qos.ResultDryRun, At: at})
	}
	if !plan.OfflineMemory.Reason.IsZero() {
		res = append(res, qos.IntentResult{Intent: qos.IntentOfflineMemory, Target: target, Status: qos.ResultDryRun, At: at})
	}
	for _, c := range plan.Cpusets {
		res = append(res, qos.IntentResult{Intent: qos.IntentCpuset, Target: path.Clean("/" + c.CgroupPath), Status: qos.ResultDryRun, At: at})
	}
	return res
}

// failAll reports every CPU and memory intent of plan as failed with err.
func failAll(plan qos.Plan, target string, err error, at time.Time) []qos.IntentResult {
	var res []qos.IntentResult
	for _, k := range []struct {
		kind    string
		present bool
	}{{qos.IntentOfflineCPU, !plan.OfflineCPU.Reason.IsZero()}, {qos.IntentOfflineMemory, !plan.OfflineMemory.Reason.IsZero()}} {
		if k.present {
			res = append(res, qos.IntentResult{Intent: k.kind, Target: target, Status: qos.ResultFailed, Err: err.Error(), At: at})
		}
	}
	return res
}

// Settings is the offline parent as the kernel has it.
type Settings struct {
	// Exists is false when the offline parent is missing in a needed
	// hierarchy; the other fields are zero then.
	Exists bool
	// CPUBudgetMilli is quota/period in milli-CPUs; 0 means uncapped.
	CPUBudgetMilli int64
	CPUPeriod      time.Duration
	// CPUIdle is the cpu.idle flag (false where the kernel lacks it).
	CPUIdle bool
	// MemoryHighBytes is v1 memory.soft_limit_in_bytes or v2 memory.high;
	// 0 means none.
	MemoryHighBytes uint64
	// MemoryMaxBytes is v1 memory.limit_in_bytes or v2 memory.max; 0 means none.
	MemoryMaxBytes uint64
}

// Config is what both implementations share.
type Config struct {
	// OfflineParent is the offline parent cgroup relative to each hierarchy
	// root (qos.Policy.OfflineParent), e.g. "/sluice/offline". Required.
	OfflineParent string
	// CPUPeriod is the CFS period Release writes with an unlimited quota
	// (default 100ms); Apply writes the plan's period.
	CPUPeriod time.Duration
	// PageSize is the kernel's page size (default os.Getpagesize()); memory
	// limits are compared page-rounded, as the kernel stores them.
	PageSize int
	// Proc is /proc, for oom_score_adj; nil leaves oom_score_adj alone.
	Proc FS
	// OOMScoreInterval is how often Apply lists the tasks below the
	// offline parent to hold their oom_score_adj; 0 (the default) does it
	// on every Apply. The listing reads cgroup.procs of every cgroup below
	// the parent in every hierarchy and each task's oom_score_adj:
	// hundreds of kernel file reads with a hundred offline containers,
	// while the CPU and memory caps may change on every fast tick. The
	// score is the kernel OOM killer's backstop, so a caller that applies
	// often may let a new offline task wait this long for it. Passes that
	// skip the listing report no offline-oom-score result; a failed
	// listing, a changed dry-run switch or offline parent, and a clock
	// going backwards do not wait.
	OOMScoreInterval time.Duration
	// Now stamps results (default time.Now).
	Now func() time.Time
	// Log receives transitions (nil discards).
	Log *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	p := path.Clean("/" + c.OfflineParent)
	if c.OfflineParent == "" || p == "/" {
		return c, fmt.Errorf("offline parent %q: want a cgroup below the root, e.g. /sluice/offline", c.OfflineParent)
	}
	c.OfflineParent = p
	if c.CPUPeriod == 0 {
		c.CPUPeriod = DefaultCPUPeriod
	}
	if c.CPUPeriod < time.Millisecond || c.CPUPeriod > time.Second {
		return c, fmt.Errorf("cpu period %v: the kernel accepts 1ms to 1s", c.CPUPeriod)
	}
	if c.PageSize == 0 {
		c.PageSize = os.Getpagesize()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c.Log = c.Log.With("component", "cgroup")
	return c, nil
}

// New builds the enforcer for the host's cgroup layout: on v1 and hybrid
// hosts the v1 enforcer over the cpu, memory and cpuset hierarchies
// (without a cpuset hierarchy cpuset intents report unsupported), on v2
// the v2 enforcer over the unified hierarchy.
func New(cfg Config, layout cgroupfs.Layout) (Enforcer, error) {
	switch layout.Mode() {
	case cgroupfs.ModeV1, cgroupfs.ModeHybrid:
		cpu, memory := layout.Hierarchy(cgroupfs.CPU), layout.Hierarchy(cgroupfs.Memory)
		if cpu == "" || memory == "" {
			return nil, fmt.Errorf("cgroup layout %v: the v1 enforcer needs the cpu and memory hierarchies", layout)
		}
		roots := V1Roots{CPU: Dir(cpu), Memory: Dir(memory)}
		if cpuset := layout.Hierarchy(cgroupfs.Cpuset); cpuset != "" {
			roots.Cpuset = Dir(cpuset)
		}
		return NewV1(cfg, roots)
	case cgroupfs.ModeV2:
		return NewV2(cfg, Dir(layout.Root()))
	}
	return nil, fmt.Errorf("cgroup layout %v: no cgroup hierarchy detected", layout)
}

// step is one file the enforcer wants to hold a value.
type step struct {
	fs     FS
	cgroup string
	file   string
	want   string
	// same reports whether the current text already means want.
	same func(cur []byte) bool
	// next, when set instead of want/same, derives the value to write from
	// the current one (e.g. a cpuset widened to a union); ok means no write.
	next func(cur []byte) (want string, ok bool)
}

// outcome accumulates the steps of one intent.
type outcome struct {
	dryRun  bool
	wrote   bool
	pending bool
	errs    []error
}

// run holds s.file at s.want. It returns false when the cgroup has vanished.
func (o *outcome) run(ctx context.Context, s step) bool {
	if err := ctx.Err(); err != nil {
		o.errs = append(o.errs, fmt.Errorf("cgroup %s: write %s: %w", s.cgroup, s.file, err))
		return true
	}
	name := path.Join(s.cgroup, s.file)
	cur, err := s.fs.ReadFile(name)
	if err != nil {
		if cgroupfs.IsGone(err) && !cgroupfs.CgroupExists(s.fs, s.cgroup) {
			return false
		}
		o.errs = append(o.errs, fmt.Errorf("cgroup %s: read %s: %w", s.cgroup, s.file, cgroupfs.ErrnoOf(err)))
		return true
	}
	if s.next != nil {
		want, ok := s.next(cur)
		if ok {
			return true
		}
		s.want = want
	} else if s.same(cur) {
		return true
	}
	if o.dryRun {
		o.pending = true
		return true
	}
	if err := s.fs.WriteFile(name, []byte(s.want)); err != nil {
		// ESRCH: a process exiting under us (oom_score_adj of a dying task).
		if (cgroupfs.IsGone(err) && !cgroupfs.CgroupExists(s.fs, s.cgroup)) || errors.Is(err, syscall.ESRCH) {
			return false
		}
		o.errs = append(o.errs, fmt.Errorf("cgroup %s: write %s %s: %w", s.cgroup, s.file, s.want, cgroupfs.ErrnoOf(err)))
		return true
	}
	o.wrote = true
	return true
}

func (o *outcome) fail(err error) { o.errs = append(o.errs, err) }

func (o *outcome) result(intent, target string, at time.Time) qos.IntentResult {
	r := qos.IntentResult{Intent: intent, Target: target, At: at, Status: qos.ResultUnchanged}
	switch {
	case len(o.errs) > 0:
		r.Status = qos.ResultFailed
		r.Err = errors.Join(o.errs...).Error()
	case o.pending:
		r.Status = qos.ResultDryRun
	case o.wrote:
		r.Status = qos.ResultApplied
	}
	return r
}

// sameText compares trimmed kernel text with want.
func sameText(want string) func([]byte) bool {
	return func(cur []byte) bool { return strings.TrimSpace(string(cur)) == want }
}

// sameInt compares an integer file with want.
func sameInt(want int64) func([]byte) bool {
	return func(cur []byte) bool {
		v, err := cgroupfs.ParseInt(cur)
		return err == nil && v == want
	}
}

// sameLimit compares a memory limit file with want bytes (0 = no limit).
func sameLimit(want uint64, pageSize int) func([]byte) bool {
	want = pageFloor(want, pageSize)
	return func(cur []byte) bool {
		v, err := cgroupfs.ParseLimit(cur)
		return err == nil && pageFloor(v, pageSize) == want
	}
}

// How each version writes "no memory limit".
const (
	v1Unlimited = "-1"
	v2Unlimited = "max"
)

// limitStep holds a memory limit file of cg at b bytes, page-floored as the
// kernel stores it, or at unlimited for 0 (no limit in Sluice's types).
func limitStep(fsys FS, cg, file string, b uint64, pageSize int, unlimited string) step {
	want := unlimited
	if b != 0 {
		want = strconv.FormatUint(pageFloor(b, pageSize), 10)
	}
	return step{fs: fsys, cgroup: cg, file: file, want: want, same: sameLimit(b, pageSize)}
}

// readLimits reads cg's soft (highFile) and hard (maxFile) memory limits
// into s, returning every read or parse failure.
func readLimits(fsys FS, cg string, s *Settings, highFile, maxFile string) []error {
	var errs []error
	for _, f := range []struct {
		name string
		into *uint64
	}{{highFile, &s.MemoryHighBytes}, {maxFile, &s.MemoryMaxBytes}} {
		b, err := fsys.ReadFile(path.Join(cg, f.name))
		if err != nil {
			errs = append(errs, fmt.Errorf("cgroup %s: read %s: %w", cg, f.name, cgroupfs.ErrnoOf(err)))
			continue
		}
		if *f.into, err = cgroupfs.ParseLimit(b); err != nil {
			errs = append(errs, fmt.Errorf("cgroup %s: %w", cg, err))
		}
	}
	return errs
}

// ensureDirs creates every component of p in fsys, top down.
func ensureDirs(fsys FS, p string) error {
	cur := ""
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		cur += "/" + part
		if err := fsys.Mkdir(cur); err != nil {
			return fmt.Errorf("cgroup %s: create: %w", cur, cgroupfs.ErrnoOf(err))
		}
	}
	return nil
}

// procsUnder lists the pids in cgroup and every descendant (bounded depth,
// cgroups vanishing mid-walk are skipped).
func procsUnder(fsys FS, cgroup string, depth int, into map[int]struct{}) error {
	data, err := fsys.ReadFile(path.Join(cgroup, "cgroup.procs"))
	if err != nil {
		if cgroupfs.IsGone(err) {
			return nil
		}
		return fmt.Errorf("cgroup %s: read cgroup.procs: %w", cgroup, cgroupfs.ErrnoOf(err))
	}
	pids, err := parsePIDs(data)
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", cgroup, err)
	}
	for _, p := range pids {
		into[p] = struct{}{}
	}
	if depth == 0 {
		return nil
	}
	kids, err := fsys.ReadDir(cgroup)
	if err != nil {
		if cgroupfs.IsGone(err) {
			return nil
		}
		return fmt.Errorf("cgroup %s: list children: %w", cgroup, cgroupfs.ErrnoOf(err))
	}
	for _, k := range kids {
		if err := procsUnder(fsys, path.Join(cgroup, k), depth-1, into); err != nil {
			return err
		}
	}
	return nil
}

// maxDepth bounds walks below the offline parent (pods/containers nest a
// few levels; a runaway tree must not stall the loop).
const maxDepth = 8

// Procs lists the pids in cgroup cg of fsys and in all its descendants
// (bounded depth). A cgroup that does not exist has no pids.
func Procs(fsys FS, cg string) ([]int, error) {
	set := map[int]struct{}{}
	if err := procsUnder(fsys, path.Clean("/"+cg), maxDepth, set); err != nil {
		return nil, err
	}
	out := make([]int, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	slices.Sort(out)
	return out, nil
}
