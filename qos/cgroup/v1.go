package cgroup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
)

// V1Roots are the v1 hierarchies the enforcer writes. CPU and Memory are
// required; Cpuset may be nil (cpuset intents are then unsupported).
type V1Roots struct {
	CPU    FS
	Memory FS
	Cpuset FS
}

type v1 struct {
	cfg     Config
	cpu     FS
	mem     FS
	mu      sync.Mutex
	idle    idleProbe
	oom     oomPace
	cpusets cpusetWriter
	// clamped remembers the CFS quota of offline children as they were
	// before the parent's tightening forced them down (v1 rejects a child
	// quota above its parent's), so loosening can give it back. Where the
	// cpu hierarchy is a NoteFS each entry is also a note on the child
	// (clampNote), read back by the first enforcement after a restart, so
	// a restarted agent still gives children their own quota back.
	clamped map[string]cfs
	// notesRead: the notes below the offline parent were read once.
	notesRead bool
}

// clampNote names the note holding a clamped child's own CFS quota and
// period ("<quota> <period>" in microseconds).
const clampNote = "trusted.sluice.clamped_cfs"

type cfs struct{ quota, period int64 }

// NewV1 drives v1 hierarchies.
func NewV1(cfg Config, roots V1Roots) (Enforcer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if roots.CPU == nil || roots.Memory == nil {
		return nil, errors.New("cgroup v1: cpu and memory hierarchies are required")
	}
	e := &v1{cfg: cfg, cpu: roots.CPU, mem: roots.Memory, clamped: map[string]cfs{},
		cpusets: cpusetWriter{fs: roots.Cpuset, mode: cgroupfs.ModeV1}}
	return e, nil
}

func (e *v1) Mode() cgroupfs.Mode { return cgroupfs.ModeV1 }

func (e *v1) Apply(ctx context.Context, plan qos.Plan) []qos.IntentResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	at := e.cfg.Now()
	if err := e.cfg.adoptParent(plan.OfflineParent); err != nil {
		return failAll(plan, plan.OfflineParent, err, at)
	}
	parent := e.cfg.OfflineParent
	var cpuErr, memErr error
	if !plan.DryRun {
		cpuErr = ensureDirs(e.cpu, parent)
		memErr = ensureDirs(e.mem, parent)
	}
	if plan.DryRun && (!cgroupfs.CgroupExists(e.cpu, parent) || !cgroupfs.CgroupExists(e.mem, parent)) {
		return dryRunAll(plan, parent, at)
	}
	res := parentIntents(plan, parent, at, cpuErr, memErr, func(o *outcome) {
		cpu := plan.OfflineCPU
		e.setQuota(ctx, o, cfs{cpu.QuotaMicros, cpu.PeriodMicros})
		if !cpu.YieldReason.IsZero() {
			e.idle.weightAndIdle(ctx, o, e.cpu, parent, e.cfg, "cpu.shares", sharesOfWeight(cpu.Weight), cpu.Idle)
		}
	}, func(o *outcome, high, max uint64) { e.memorySteps(ctx, o, high, max) })
	if cpuErr == nil && memErr == nil {
		if r, ok := e.oom.apply(ctx, e.cfg, plan, parent, at, e.mem, e.cpu); ok {
			res = append(res, r)
		}
	}
	res = append(res, e.cpusets.apply(ctx, plan.Cpusets, parent, plan.DryRun, at)...)
	return res
}

// setQuota holds the parent at want (quota -1 = unlimited). v1 rejects a
// child quota above its parent's (EINVAL) and a parent quota below any
// child's, so tightening clamps children first, deepest first, and
// loosening writes the parent first, then gives clamped children back
// what they had, up to the new parent value.
func (e *v1) setQuota(ctx context.Context, o *outcome, want cfs) {
	parent := e.cfg.OfflineParent
	cur, err := e.readCFS(parent)
	if err != nil {
		if !cgroupfs.IsGone(err) || cgroupfs.CgroupExists(e.cpu, parent) {
			o.fail(err)
		}
		// A dry run on a host without the parent yet: everything would change.
		o.pending = o.dryRun
		return
	}
	tighten := want.quota >= 0 && (cur.quota < 0 || ratioGreater(uint64(cur.quota), uint64(cur.period), uint64(want.quota), uint64(want.period)))
	switch {
	case !tighten:
		e.writeParentCFS(ctx, o, cur, want)
		e.restoreChildren(ctx, o, want)
	case o.dryRun:
		// Nothing is written, so the kernel cannot be asked: list the
		// children the write would clamp.
		e.clampChildren(ctx, o, want)
		e.writeParentCFS(ctx, o, cur, want)
	default:
		// The kernel checks the whole subtree on the parent's write and
		// refuses it (EINVAL) only when a child holds a larger quota, which
		// most offline trees never set. So the parent is written first and
		// the children are listed and clamped only on that refusal:
		// listing them on every cut read two files per child several times
		// a second (most of the enforcer's cost with 100 offline cgroups).
		var first outcome
		e.writeParentCFS(ctx, &first, cur, want)
		o.wrote = o.wrote || first.wrote
		if !slices.ContainsFunc(first.errs, func(err error) bool { return errors.Is(err, syscall.EINVAL) }) {
			o.errs = append(o.errs, first.errs...)
			return
		}
		e.clampChildren(ctx, o, want)
		e.writeParentCFS(ctx, o, cur, want)
	}
}

// writeParentCFS holds the offline parent's CFS period (unless it was
// read as want.period already) and quota at want.
func (e *v1) writeParentCFS(ctx context.Context, o *outcome, cur, want cfs) {
	parent := e.cfg.OfflineParent
	if cur.period != want.period {
		o.run(ctx, step{fs: e.cpu, cgroup: parent, file: "cpu.cfs_period_us",
			want: strconv.FormatInt(want.period, 10), same: sameInt(want.period)})
	}
	o.run(ctx, step{fs: e.cpu, cgroup: parent, file: "cpu.cfs_quota_us",
		want: strconv.FormatInt(want.quota, 10), same: sameInt(want.quota)})
}

func (e *v1) readCFS(cg string) (cfs, error) {
	var c cfs
	for _, f := range []struct {
		file string
		into *int64
	}{{"cpu.cfs_quota_us", &c.quota}, {"cpu.cfs_period_us", &c.period}} {
		b, err := e.cpu.ReadFile(path.Join(cg, f.file))
		if err != nil {
			return c, fmt.Errorf("cgroup %s: read %s: %w", cg, f.file, cgroupfs.ErrnoOf(err))
		}
		if *f.into, err = cgroupfs.ParseInt(b); err != nil {
			return c, fmt.Errorf("cgroup %s: %s: %w", cg, f.file, err)
		}
	}
	if c.period <= 0 {
		return c, fmt.Errorf("cgroup %s: cpu.cfs_period_us %d: not positive", cg, c.period)
	}
	return c, nil
}

// descendants lists the cgroups below p, deepest first.
func descendants(fsys FS, p string, depth int) []string {
	var out []string
	var walk func(string, int)
	walk = func(cg string, d int) {
		if d == 0 {
			return
		}
		kids, err := fsys.ReadDir(cg)
		if err != nil {
			return
		}
		for _, k := range kids {
			c := path.Join(cg, k)
			out = append(out, c)
			walk(c, d-1)
		}
	}
	walk(p, depth)
	slices.SortStableFunc(out, func(a, b string) int {
		return cmp.Compare(strings.Count(b, "/"), strings.Count(a, "/"))
	})
	return out
}

// scaled is limit's ratio expressed over period, never below the kernel minimum.
func scaled(limit cfs, period int64) int64 {
	q := limit.quota * period / limit.period
	return max(q, minQuotaMicros)
}

// readClampNotes adopts the clamp notes of the children below the offline
// parent, once: a previous agent clamped them and did not give them back.
// Notes are a best effort on top of the in-memory record: a hierarchy
// without them, or a note that cannot be read or parsed, leaves that child
// at its clamped quota, which the parent's cap bounds anyway.
func (e *v1) readClampNotes() {
	nfs, ok := e.cpu.(NoteFS)
	if e.notesRead || !ok {
		return
	}
	e.notesRead = true
	for _, cg := range descendants(e.cpu, e.cfg.OfflineParent, maxDepth) {
		b, err := nfs.ReadNote(cg, clampNote)
		if errors.Is(err, syscall.EOPNOTSUPP) {
			return
		}
		var c cfs
		if err != nil || parseCFSNote(b, &c) != nil {
			continue
		}
		if _, known := e.clamped[cg]; !known {
			e.clamped[cg] = c
		}
	}
}

func parseCFSNote(b []byte, c *cfs) error {
	if _, err := fmt.Sscanf(string(b), "%d %d", &c.quota, &c.period); err != nil {
		return err
	}
	if c.period <= 0 {
		return fmt.Errorf("period %d: not positive", c.period)
	}
	return nil
}

// noteClamped records (orig set) or forgets (nil) cg's own quota on cg.
// Failures are ignored as readClampNotes explains; a child that is gone
// took its note with it.
func (e *v1) noteClamped(cg string, orig *cfs) {
	nfs, ok := e.cpu.(NoteFS)
	if !ok {
		return
	}
	if orig == nil {
		_ = nfs.RemoveNote(cg, clampNote)
		return
	}
	_ = nfs.WriteNote(cg, clampNote, fmt.Appendf(nil, "%d %d", orig.quota, orig.period))
}

func (e *v1) clampChildren(ctx context.Context, o *outcome, limit cfs) {
	e.readClampNotes()
	for _, cg := range descendants(e.cpu, e.cfg.OfflineParent, maxDepth) {
		c, err := e.readCFS(cg)
		if err != nil {
			if !cgroupfs.IsGone(err) {
				o.fail(err)
			}
			continue
		}
		if c.quota < 0 || !ratioGreater(uint64(c.quota), uint64(c.period), uint64(limit.quota), uint64(limit.period)) {
			continue
		}
		q := scaled(limit, c.period)
		if !o.dryRun {
			if _, ok := e.clamped[cg]; !ok {
				e.clamped[cg] = c
				// Before the write: a crash between the two must not lose it.
				e.noteClamped(cg, &c)
			}
		}
		if !o.run(ctx, step{fs: e.cpu, cgroup: cg, file: "cpu.cfs_quota_us",
			want: strconv.FormatInt(q, 10), same: sameInt(q)}) {
			e.forgetClamped(cg)
		}
	}
}

func (e *v1) forgetClamped(cg string) {
	if _, ok := e.clamped[cg]; ok {
		delete(e.clamped, cg)
		e.noteClamped(cg, nil)
	}
}

func (e *v1) restoreChildren(ctx context.Context, o *outcome, limit cfs) {
	e.readClampNotes()
	kids := make([]string, 0, len(e.clamped))
	for cg := range e.clamped {
		kids = append(kids, cg)
	}
	// Shallowest first: a child may not exceed its own parent either.
	slices.SortFunc(kids, func(a, b string) int {
		return cmp.Or(cmp.Compare(strings.Count(a, "/"), strings.Count(b, "/")), cmp.Compare(a, b))
	})
	for _, cg := range kids {
		orig := e.clamped[cg]
		q := orig.quota
		done := true
		if limit.quota >= 0 && ratioGreater(uint64(orig.quota), uint64(orig.period), uint64(limit.quota), uint64(limit.period)) {
			q, done = scaled(limit, orig.period), false
		}
		if !o.run(ctx, step{fs: e.cpu, cgroup: cg, file: "cpu.cfs_quota_us",
			want: strconv.FormatInt(q, 10), same: sameInt(q)}) || (done && !o.dryRun) {
			e.forgetClamped(cg)
		}
	}
}

func (e *v1) memorySteps(ctx context.Context, o *outcome, high, max uint64) {
	parent := e.cfg.OfflineParent
	o.run(ctx, limitStep(e.mem, parent, "memory.soft_limit_in_bytes", high, e.cfg.PageSize, v1Unlimited))
	n := len(o.errs)
	o.run(ctx, limitStep(e.mem, parent, "memory.limit_in_bytes", max, e.cfg.PageSize, v1Unlimited))
	if len(o.errs) > n && errors.Is(o.errs[n], syscall.EBUSY) {
		// v1 refuses a limit below usage after failing to reclaim down to
		// it. Report it as is: the limit stays where it was, usage stays
		// above the planned limit, and the decision core's grace window
		// then picks a victim.
		o.errs[n] = fmt.Errorf("%w (usage is above the new limit and reclaim could not bring it down; offline work must shrink or be killed)", o.errs[n])
	}
}

func (e *v1) Current(ctx context.Context) (Settings, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	parent := e.cfg.OfflineParent
	if !cgroupfs.CgroupExists(e.cpu, parent) || !cgroupfs.CgroupExists(e.mem, parent) {
		return Settings{}, nil
	}
	s := Settings{Exists: true}
	var errs []error
	if c, err := e.readCFS(parent); err != nil {
		errs = append(errs, err)
	} else {
		s.CPUPeriod = microseconds(c.period)
		if c.quota >= 0 {
			s.CPUBudgetMilli = budgetMilli(c.quota, c.period)
		}
	}
	errs = append(errs, readLimits(e.mem, parent, &s, "memory.soft_limit_in_bytes", "memory.limit_in_bytes")...)
	s.CPUIdle, _ = e.idle.read(e.cpu, parent, e.cfg)
	return s, errors.Join(errs...)
}

func (e *v1) Release(ctx context.Context) []qos.IntentResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	parent := e.cfg.OfflineParent
	return releaseIntents(ctx, parent, e.cfg.Now(), e.cpusets, func(o *outcome) {
		e.setQuota(ctx, o, cfs{-1, e.cfg.CPUPeriod.Microseconds()})
	}, func(o *outcome) {
		o.run(ctx, limitStep(e.mem, parent, "memory.limit_in_bytes", 0, e.cfg.PageSize, v1Unlimited))
		o.run(ctx, limitStep(e.mem, parent, "memory.soft_limit_in_bytes", 0, e.cfg.PageSize, v1Unlimited))
	})
}
