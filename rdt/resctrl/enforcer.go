package resctrl

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"

	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/rdt"
)

// ErrNotSupported is the project's one capability sentinel (cilium/ebpf's),
// re-exported: resctrl is absent from the kernel or the CPU has no RDT.
var ErrNotSupported = ebpf.ErrNotSupported

// IntentGroup is the IntentResult.Intent of a resctrl group intent; the
// Target is the group's directory name ("" for the default group).
const IntentGroup = qos.IntentCacheGroup

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// Config configures an Enforcer.
type Config struct {
	FS       FS
	Hardware rdt.Hardware
	Tasks    TaskLister
	Log      *slog.Logger
	// Reconcile is how often every cgroup's tasks are checked again
	// (children fork into their parent's group, so this only catches
	// tasks moved behind Sluice's back). Default one minute.
	Reconcile time.Duration
	// Now is the clock for the reconcile pace; default time.Now.
	Now func() time.Time
}

// Enforcer applies rdt plans to a resctrl mount: one group per class,
// schemata written only where they differ, tasks moved when their cgroup
// is first seen or reclassed. Level-triggered: applying a plan twice
// writes nothing the second time. Groups not named with rdt.GroupPrefix
// belong to other tools and are never touched; Sluice's own groups left
// from a previous run are adopted as they are (no remove and remake, so
// no gap). One goroutine at a time.
type Enforcer struct {
	cfg Config
	// placed remembers which group each cgroup's tasks were moved to.
	placed map[string]string
	merged bool
	// mergedInto is the group offline work shares once merged:
	// rdt.GroupOffline, or a per-priority group already made when not
	// even that one CLOSID was left.
	mergedInto    string
	lastReconcile time.Time
}

// New returns an Enforcer.
func New(cfg Config) (*Enforcer, error) {
	if cfg.FS == nil || cfg.Tasks == nil || cfg.Log == nil {
		return nil, errors.New("resctrl enforcer: FS, Tasks and Log are required")
	}
	if cfg.Reconcile <= 0 {
		cfg.Reconcile = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Enforcer{cfg: cfg, placed: map[string]string{}}, nil
}

// Merged reports whether the enforcer ran out of CLOSIDs and put every
// offline priority into rdt.GroupOffline; pass it to Decide as
// Signals.OfflineMerged.
func (e *Enforcer) Merged() bool { return e.merged }

// GroupFor names the resctrl group a new container of a class and
// priority should start in, for OCI's linux.intelRdt.closID (containerd's
// oci.WithRdt(group, "", "")): runc then places the container's first
// task there, so it never runs a moment in the default group. Set it only
// when resctrl was probed present (runc refuses intelRdt otherwise). It
// names only a group that exists now (runc will not make one without a
// schema): "" means leave closID unset, and the next Apply moves the
// container's tasks.
func (e *Enforcer) GroupFor(class rdt.Class, priority int, pol rdt.Policy) string {
	var candidates []string
	switch class {
	case rdt.ClassOnline:
		candidates = []string{rdt.GroupOnline}
	case rdt.ClassOffline:
		if e.merged {
			candidates = append(candidates, e.mergedInto)
		} else if pol.OfflinePriorityGroups {
			candidates = append(candidates, rdt.OfflinePriorityGroup(priority))
		}
		candidates = append(candidates, rdt.GroupOffline)
	default:
		if pol.System != nil {
			candidates = []string{rdt.GroupSystem}
		}
	}
	names, err := e.cfg.FS.ReadDir("")
	if err != nil {
		return rdt.GroupDefault
	}
	for _, c := range candidates {
		if slices.Contains(names, c) {
			return c
		}
	}
	return rdt.GroupDefault
}

// Current reads the offline allocation the kernel holds (ways and MB of
// rdt.GroupOffline per domain), for Signals.Current after a restart; nil
// when the group does not exist yet.
func (e *Enforcer) Current() (*rdt.Allocation, error) {
	b, err := e.cfg.FS.ReadFile(rdt.GroupOffline + "/schemata")
	if isNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("resctrl: %w", err)
	}
	s, err := rdt.ParseSchemata(string(b))
	if err != nil {
		return nil, fmt.Errorf("resctrl: %s/schemata: %w", rdt.GroupOffline, err)
	}
	a := &rdt.Allocation{Ways: map[int]int{}, MB: map[int]int{}}
	for _, l := range s.Lines {
		for _, v := range l.Values {
			switch l.Resource {
			case rdt.ResourceL3, rdt.ResourceL3Data:
				a.Ways[v.Domain] = popcount(v.Value)
			case rdt.ResourceMB:
				a.MB[v.Domain] = int(v.Value)
			}
		}
	}
	return a, nil
}

func popcount(v uint64) int {
	n := 0
	for ; v != 0; v &= v - 1 {
		n++
	}
	return n
}

// Apply makes the mount hold p: each group exists with its schemata and
// its cgroups' tasks, in plan order; Sluice groups the plan no longer
// names are removed last (the kernel returns their tasks to the default
// group). It returns one result per group intent and keeps going across
// groups. A schemata write the kernel rejects leaves the group's last
// good value in place (the kernel applies a write whole or not at all)
// and is reported with the kernel's own words from info/last_cmd_status.
func (e *Enforcer) Apply(ctx context.Context, p rdt.Plan) []qos.IntentResult {
	now := e.cfg.Now()
	reconcile := now.Sub(e.lastReconcile) >= e.cfg.Reconcile
	var out []qos.IntentResult
	want := map[string]bool{}
	seen := map[string]bool{}
	// Class groups first: when CLOSIDs run short, per-priority offline
	// groups are what gives way, never online's group.
	gs := groups{made: map[string]bool{}, errs: map[string]error{}}
	if !p.DryRun {
		for _, g := range p.Groups {
			if g.Group != rdt.GroupDefault && !isPriorityGroup(g.Group) {
				_ = e.ensure(g.Group, gs)
			}
		}
	}
	for _, g := range p.Groups {
		if ctx.Err() != nil {
			out = append(out, qos.IntentResult{Intent: IntentGroup, Target: g.Group, Status: qos.ResultFailed, Err: ctx.Err().Error(), At: now})
			continue
		}
		r := e.applyGroup(g, p.DryRun, reconcile, gs, want, seen)
		r.At = now
		out = append(out, r)
	}
	for cg := range e.placed {
		if !seen[cg] {
			delete(e.placed, cg)
		}
	}
	if !p.DryRun && ctx.Err() == nil {
		e.removeStale(want)
	}
	if reconcile {
		e.lastReconcile = now
	}
	return out
}

func (e *Enforcer) applyGroup(g rdt.GroupIntent, dryRun, reconcile bool, gs groups, want, seen map[string]bool) qos.IntentResult {
	res := qos.IntentResult{Intent: IntentGroup, Target: g.Group, Status: qos.ResultUnchanged}
	name := g.Group
	if name != rdt.GroupDefault && (!strings.HasPrefix(name, rdt.GroupPrefix) || strings.ContainsAny(name, "/.")) {
		// Defence in depth: Decide names only its own groups.
		return failed(res, fmt.Errorf("resctrl: group %q is not a Sluice group (want the %q prefix, one path element)", name, rdt.GroupPrefix))
	}
	var notes []string
	if e.merged && g.Class == rdt.ClassOffline {
		name = e.mergedInto
	}
	if name != rdt.GroupDefault && !dryRun {
		err := e.ensure(name, gs)
		switch {
		case err == nil:
		case errors.Is(err, syscall.ENOSPC) && g.Class == rdt.ClassOffline:
			into, ierr := e.mergeTarget(gs)
			if ierr != nil {
				return failed(res, fmt.Errorf("resctrl: %w; and no offline group to merge into: %w", err, ierr))
			}
			e.merged, e.mergedInto = true, into
			e.cfg.Log.Warn("out of CLOSIDs: offline priorities merged into one group", "group", name, "into", into)
			notes = append(notes, fmt.Sprintf("%v: out of CLOSIDs, offline priorities merged into %s", err, into))
			name = into
		default:
			return failed(res, fmt.Errorf("resctrl: %w", err))
		}
		if gs.made[name] {
			res.Status = qos.ResultApplied
		}
	}
	want[name] = true
	var errs []error
	if name != rdt.GroupDefault {
		changed, err := e.writeSchemata(name, g.Schemata, dryRun)
		if err != nil {
			errs = append(errs, err)
		}
		if changed {
			res.Status = qos.ResultApplied
		}
	}
	moved, err := e.moveTasks(name, g.Cgroups, dryRun, reconcile, seen)
	if err != nil {
		errs = append(errs, err)
	}
	if moved {
		res.Status = qos.ResultApplied
	}
	if dryRun && res.Status == qos.ResultApplied {
		res.Status = qos.ResultDryRun
	}
	if err := errors.Join(errs...); err != nil {
		return failed(res, err)
	}
	res.Err = strings.Join(notes, "; ")
	return res
}

// mergeTarget picks the one group offline shares when CLOSIDs ran out:
// rdt.GroupOffline if it exists or can be made, else an offline priority
// group that already exists (they all hold the same schemata).
func (e *Enforcer) mergeTarget(gs groups) (string, error) {
	if err := e.ensure(rdt.GroupOffline, gs); err == nil {
		return rdt.GroupOffline, nil
	}
	names, err := e.cfg.FS.ReadDir("")
	if err != nil {
		return "", fmt.Errorf("list groups: %w", err)
	}
	for _, n := range names {
		if isPriorityGroup(n) {
			return n, nil
		}
	}
	return "", errors.New("none exists")
}

// groups remembers, for one Apply, which groups it made and which mkdir
// failed, so each group is tried once.
type groups struct {
	made map[string]bool
	errs map[string]error
}

// ensure makes a group unless it exists (then it is adopted as it is).
func (e *Enforcer) ensure(name string, gs groups) error {
	if _, tried := gs.made[name]; tried {
		return gs.errs[name]
	}
	err := e.cfg.FS.Mkdir(name)
	gs.made[name] = err == nil
	switch {
	case err == nil:
		e.cfg.Log.Info("resctrl group made", "group", name)
	case errors.Is(err, fs.ErrExist):
		err = nil
	default:
		err = fmt.Errorf("mkdir %s: %w", name, err)
	}
	gs.errs[name] = err
	return err
}

func failed(r qos.IntentResult, err error) qos.IntentResult {
	r.Status, r.Err = qos.ResultFailed, err.Error()
	return r
}

func isPriorityGroup(name string) bool { return strings.HasPrefix(name, rdt.GroupOffline+"-p") }

// writeSchemata writes the values of want the group does not hold yet, in
// one write.
func (e *Enforcer) writeSchemata(group string, want rdt.Schemata, dryRun bool) (bool, error) {
	file := group + "/schemata"
	b, err := e.cfg.FS.ReadFile(file)
	if err != nil && !(dryRun && isNotExist(err)) {
		return false, fmt.Errorf("resctrl: read %s: %w", file, err)
	}
	cur, err := rdt.ParseSchemata(string(b))
	if err != nil {
		return false, fmt.Errorf("resctrl: %s: %w", file, err)
	}
	diff := want.Diff(cur)
	if diff.Empty() {
		return false, nil
	}
	if dryRun {
		return true, nil
	}
	text := diff.String()
	if err := e.cfg.FS.WriteFile(file, []byte(text)); err != nil {
		status, serr := e.cfg.FS.ReadFile("info/last_cmd_status")
		if serr == nil && len(status) > 0 {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(status)))
		}
		return false, fmt.Errorf("resctrl: write %s %q (kept %q): %w", file, text, strings.TrimSpace(cur.String()), err)
	}
	e.cfg.Log.Info("resctrl schemata written", "group", group, "schemata", strings.TrimSpace(text))
	return true, nil
}

// moveTasks puts every thread of cgroups into group: for cgroups not
// placed there yet, and for all of them on a reconcile pass. Threads
// that exit between listing and writing (ESRCH) are not errors; neither
// is a cgroup that is gone.
func (e *Enforcer) moveTasks(group string, cgroups []string, dryRun, reconcile bool, seen map[string]bool) (bool, error) {
	var todo []string
	for _, cg := range cgroups {
		seen[cg] = true
		if reconcile || e.placed[cg] != group {
			todo = append(todo, cg)
		}
	}
	if len(todo) == 0 {
		return false, nil
	}
	file := join(group, "tasks")
	in := map[int]bool{}
	if b, err := e.cfg.FS.ReadFile(file); err == nil {
		tids, _ := parseTids(string(b))
		for _, t := range tids {
			in[t] = true
		}
	} else if !(dryRun && isNotExist(err)) {
		return false, fmt.Errorf("resctrl: read %s: %w", file, err)
	}
	moved := false
	var errs []error
	for _, cg := range todo {
		tids, err := e.cfg.Tasks.Threads(cg)
		if isNotExist(err) {
			delete(e.placed, cg)
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("resctrl: list tasks: %w", err))
			continue
		}
		ok := true
		for _, t := range tids {
			if in[t] {
				continue
			}
			moved = true
			if dryRun {
				continue
			}
			if err := e.cfg.FS.WriteFile(file, []byte(strconv.Itoa(t))); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("resctrl: move task %d of %s to %s: %w", t, cg, file, err))
				ok = false
			}
		}
		if ok && !dryRun {
			if e.placed[cg] != group {
				e.cfg.Log.Info("resctrl tasks placed", "cgroup", cg, "group", group, "tasks", len(tids))
			}
			e.placed[cg] = group
		}
	}
	return moved, errors.Join(errs...)
}

// removeStale removes Sluice's groups the plan does not name (a priority
// that has no workloads left, a class group after a policy change).
func (e *Enforcer) removeStale(want map[string]bool) {
	names, err := e.cfg.FS.ReadDir("")
	if err != nil {
		e.cfg.Log.Warn("resctrl: list groups", "err", err)
		return
	}
	for _, n := range names {
		if !strings.HasPrefix(n, rdt.GroupPrefix) || want[n] || slices.Contains([]string{"info", "mon_data", "mon_groups"}, n) {
			continue
		}
		if err := e.cfg.FS.Remove(n); err != nil && !isNotExist(err) {
			e.cfg.Log.Warn("resctrl: remove stale group", "group", n, "err", err)
			continue
		}
		e.cfg.Log.Info("resctrl stale group removed", "group", n)
	}
}
