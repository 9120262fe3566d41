package cgroup

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
)

// cpusetWriter pins cgroups to CPUs. Exclusivity (Hippo's exclusive and
// reserved modes) comes from the decision core's allocation — no two
// intents share an exclusive CPU — not from the kernel's cpu_exclusive
// flag, which needs every ancestor exclusive too and fails on overlapping
// siblings that the agent does not own.
type cpusetWriter struct {
	fs   FS // nil: no cpuset hierarchy, intents are unsupported
	mode cgroupfs.Mode
}

// apply holds every intent's cgroup at exactly its CPUs. The kernel wants
// a parent to contain its children's CPUs (v1 rejects writes that break it
// with EINVAL or EBUSY; v2 narrows the effective set), so it runs in two
// passes: first, top down, each target and its ancestors are widened to
// include what it will get (loosen parents first); then, bottom up, each
// target is set to its exact CPUs after its own descendants were clamped
// into them on v1 (tighten children first). offlineParent is created in
// the cpuset hierarchy when an intent names it, with cpus and mems set
// before any task can join, as v1 requires.
func (w cpusetWriter) apply(ctx context.Context, intents []qos.CpusetIntent, offlineParent string, dryRun bool, at time.Time) []qos.IntentResult {
	if len(intents) == 0 {
		return nil
	}
	type job struct {
		target string
		want   []int
		o      outcome
		skip   bool
	}
	jobs := make([]*job, len(intents))
	for i, in := range intents {
		j := &job{target: path.Clean("/" + in.CgroupPath), o: outcome{dryRun: dryRun}}
		j.want = slices.Compact(slices.Sorted(slices.Values(in.CPUs)))
		jobs[i] = j
		switch {
		case w.fs == nil:
			j.skip = true
		case len(j.want) == 0:
			j.o.fail(fmt.Errorf("cgroup %s: refusing an empty cpuset: the tasks would have nowhere to run", j.target))
			j.skip = true
		case j.target == offlineParent && !cgroupfs.CgroupExists(w.fs, j.target):
			if dryRun {
				j.o.pending = true
				j.skip = true
			} else if err := w.create(j.target); err != nil {
				j.o.fail(err)
				j.skip = true
			} else {
				j.o.wrote = true
			}
		case !cgroupfs.CgroupExists(w.fs, j.target):
			j.skip = true // the container exited: nothing to pin
		}
	}
	byDepth := slices.Clone(jobs)
	slices.SortStableFunc(byDepth, func(a, b *job) int {
		return strings.Count(a.target, "/") - strings.Count(b.target, "/")
	})
	for _, j := range byDepth {
		if j.skip {
			continue
		}
		for anc := range ancestors(j.target) {
			if anc != "/" {
				j.o.run(ctx, w.widen(anc, j.want))
			}
		}
		// The target itself too, when it gains CPUs: its descendants may
		// have to move onto them before it drops the old ones (v1 refuses
		// a child CPU outside its parent's current set with EACCES).
		j.o.run(ctx, w.widen(j.target, j.want))
	}
	for _, j := range slices.Backward(byDepth) {
		if j.skip {
			continue
		}
		if w.mode == cgroupfs.ModeV1 {
			w.clampDescendants(ctx, &j.o, j.target, j.want)
		}
		want := j.want
		j.o.run(ctx, step{fs: w.fs, cgroup: j.target, file: "cpuset.cpus", want: qos.FormatCPUList(want),
			same: func(cur []byte) bool {
				have, err := cgroupfs.ParseCPUList(cur)
				return err == nil && slices.Equal(have, want)
			}})
	}
	res := make([]qos.IntentResult, len(jobs))
	for i, j := range jobs {
		if w.fs == nil {
			res[i] = qos.IntentResult{Intent: qos.IntentCpuset, Target: j.target, Status: qos.ResultUnsupported,
				Err: "no cpuset hierarchy configured", At: at}
			continue
		}
		res[i] = j.o.result(qos.IntentCpuset, j.target, at)
	}
	return res
}

// widen makes anc's cpuset.cpus include want.
func (w cpusetWriter) widen(anc string, want []int) step {
	return step{fs: w.fs, cgroup: anc, file: "cpuset.cpus",
		next: func(cur []byte) (string, bool) {
			have, err := cgroupfs.ParseCPUList(cur)
			// v2: an empty cpuset.cpus inherits the parent's, so it
			// already holds everything the parent has.
			if err == nil && ((w.mode == cgroupfs.ModeV2 && len(have) == 0) || containsAll(have, want)) {
				return "", true
			}
			return qos.FormatCPUList(union(have, want)), false
		}}
}

// clampDescendants moves every descendant of target inside want (v1
// only: v2 narrows effective sets itself). Each keeps what it has inside
// its parent's new set, or takes all of it when nothing is left. That may
// move a child onto CPUs its parent does not hold yet, so it runs in two
// passes again: top down, each descendant is widened by its new CPUs;
// bottom up, each is set to exactly its new CPUs.
func (w cpusetWriter) clampDescendants(ctx context.Context, o *outcome, target string, want []int) {
	desc := descendants(w.fs, target, maxDepth) // deepest first
	next := map[string][]int{target: want}
	for _, d := range slices.Backward(desc) {
		d := d
		o.run(ctx, step{fs: w.fs, cgroup: d, file: "cpuset.cpus",
			next: func(cur []byte) (string, bool) {
				have, err := cgroupfs.ParseCPUList(cur)
				limit, ok := next[path.Dir(d)]
				if err != nil || !ok {
					return "", true // its parent vanished mid-walk: leave it
				}
				n := slices.DeleteFunc(slices.Clone(have), func(c int) bool { return !slices.Contains(limit, c) })
				if len(n) == 0 {
					n = limit
				}
				next[d] = n
				if containsAll(have, n) {
					return "", true
				}
				return qos.FormatCPUList(union(have, n)), false
			}})
	}
	for _, d := range desc {
		n, ok := next[d]
		if !ok {
			continue // vanished or unreadable in the first pass
		}
		o.run(ctx, step{fs: w.fs, cgroup: d, file: "cpuset.cpus", want: qos.FormatCPUList(n),
			same: func(cur []byte) bool {
				have, err := cgroupfs.ParseCPUList(cur)
				return err == nil && slices.Equal(have, n)
			}})
	}
}

// create makes cg and any missing ancestor in the cpuset hierarchy. On v1
// a new cpuset is empty and no task may join it until cpus and mems are
// set, so each new level copies its parent's.
func (w cpusetWriter) create(cg string) error {
	cur := ""
	for _, part := range strings.Split(strings.Trim(cg, "/"), "/") {
		parent := cur
		if parent == "" {
			parent = "/"
		}
		cur += "/" + part
		if cgroupfs.CgroupExists(w.fs, cur) {
			continue
		}
		if err := w.fs.Mkdir(cur); err != nil {
			return fmt.Errorf("cgroup %s: create: %w", cur, cgroupfs.ErrnoOf(err))
		}
		if w.mode != cgroupfs.ModeV1 {
			continue
		}
		for _, f := range []string{"cpuset.mems", "cpuset.cpus"} {
			v, err := w.fs.ReadFile(path.Join(parent, f))
			if err != nil {
				return fmt.Errorf("cgroup %s: read %s: %w", parent, f, cgroupfs.ErrnoOf(err))
			}
			if err := w.fs.WriteFile(path.Join(cur, f), []byte(strings.TrimSpace(string(v)))); err != nil {
				return fmt.Errorf("cgroup %s: write %s: %w", cur, f, cgroupfs.ErrnoOf(err))
			}
		}
	}
	return nil
}

func containsAll(have, want []int) bool {
	for _, c := range want {
		if !slices.Contains(have, c) {
			return false
		}
	}
	return true
}

func union(a, b []int) []int {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// release gives the offline parent every CPU back (policy onStop:
// release): on v1 the root's CPUs, ancestors widened first; on v2 an empty
// cpuset.cpus, which inherits the parent's. It reports nothing when there
// is no cpuset hierarchy or the parent was never pinned.
func (w cpusetWriter) release(ctx context.Context, parent string, at time.Time) []qos.IntentResult {
	if w.fs == nil || !cgroupfs.CgroupExists(w.fs, parent) {
		return nil
	}
	if _, err := w.fs.ReadFile(path.Join(parent, "cpuset.cpus")); err != nil {
		return nil // v2 without the cpuset controller on the parent: never pinned
	}
	o := outcome{}
	if w.mode == cgroupfs.ModeV2 {
		o.run(ctx, step{fs: w.fs, cgroup: parent, file: "cpuset.cpus", want: "", same: sameText("")})
		return []qos.IntentResult{o.result(qos.IntentCpuset, parent, at)}
	}
	b, err := w.fs.ReadFile("/cpuset.cpus")
	all, perr := cgroupfs.ParseCPUList(b)
	if err != nil || perr != nil || len(all) == 0 {
		o.fail(fmt.Errorf("cgroup /: read cpuset.cpus: %w", errors.Join(cgroupfs.ErrnoOf(err), perr)))
		return []qos.IntentResult{o.result(qos.IntentCpuset, parent, at)}
	}
	for anc := range ancestors(parent) {
		if anc != "/" {
			o.run(ctx, w.widen(anc, all))
		}
	}
	o.run(ctx, w.widen(parent, all))
	return []qos.IntentResult{o.result(qos.IntentCpuset, parent, at)}
}
