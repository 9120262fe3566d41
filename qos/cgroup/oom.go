package cgroup

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/qos"
)

// applyOOMScore sets oom_score_adj of every task under the offline parent
// (in any of hierarchies) to adj (the plan's OfflineOOMScore). Online
// tasks are left to their runtime: lowering them is not Sluice's call.
// Tasks that exit meanwhile are skipped.
// Tasks in known (held at adj by the previous listing, still listed) are
// not read again; held returns the tasks held at adj by this one.
func applyOOMScore(ctx context.Context, proc FS, parent string, adj int, dryRun bool, at time.Time, known map[int]struct{}, hierarchies ...FS) (r qos.IntentResult, held map[int]struct{}) {
	o := outcome{dryRun: dryRun}
	pids := map[int]struct{}{}
	for _, h := range hierarchies {
		if err := procsUnder(h, parent, maxDepth, pids); err != nil {
			o.fail(err)
		}
	}
	sorted := make([]int, 0, len(pids))
	for p := range pids {
		sorted = append(sorted, p)
	}
	slices.Sort(sorted)
	held = make(map[int]struct{}, len(sorted))
	for _, pid := range sorted {
		if _, ok := known[pid]; ok {
			held[pid] = struct{}{}
			continue
		}
		one := outcome{dryRun: dryRun}
		live := one.run(ctx, step{
			fs:     proc,
			cgroup: "/" + strconv.Itoa(pid),
			file:   "oom_score_adj",
			want:   strconv.Itoa(adj),
			same:   sameInt(int64(adj)),
		})
		o.errs, o.wrote, o.pending = append(o.errs, one.errs...), o.wrote || one.wrote, o.pending || one.pending
		if live && len(one.errs) == 0 && !one.pending {
			held[pid] = struct{}{}
		}
	}
	r = o.result(qos.IntentOfflineOOMScore, parent, at)
	if r.Status == qos.ResultFailed {
		// Name the scope: per-pid errors read "cgroup /123: ..." otherwise.
		r.Err = fmt.Sprintf("oom_score_adj of tasks in %s: %s", parent, r.Err)
	}
	return r, held
}

// oomPace runs applyOOMScore at most once per Config.OOMScoreInterval.
type oomPace struct {
	ran    bool
	at     time.Time
	dryRun bool
	parent string
	adj    int
	failed bool
	// held: the tasks the last listing found at adj or set to it. The
	// next listing reads the score only of tasks not in it (new ones),
	// except every oomRecheckEvery-th listing, which reads them all: a
	// task keeps its score unless it raises it itself (lowering it takes
	// CAP_SYS_RESOURCE) or its pid is reused by a task that lands below
	// the offline parent between two listings; the full re-read bounds
	// both. With a hundred offline tasks it saves a hundred file reads
	// per listing.
	held     map[int]struct{}
	listings int
}

// oomRecheckEvery is how often (in listings) every task's score is read.
const oomRecheckEvery = 6

// apply holds the plan's OfflineOOMScore intent and returns the listing's
// result, or false when it was not due (or the plan has no such intent,
// or the enforcer has no /proc).
func (p *oomPace) apply(ctx context.Context, cfg Config, plan qos.Plan, parent string, at time.Time, hierarchies ...FS) (qos.IntentResult, bool) {
	in := plan.OfflineOOMScore
	if cfg.Proc == nil || in.Reason.IsZero() {
		return qos.IntentResult{}, false
	}
	if p.ran && cfg.OOMScoreInterval > 0 && !p.failed && p.dryRun == plan.DryRun && p.parent == parent && p.adj == in.Adj &&
		!at.Before(p.at) && at.Sub(p.at) < cfg.OOMScoreInterval {
		return qos.IntentResult{}, false
	}
	var known map[int]struct{}
	same := p.ran && p.dryRun == plan.DryRun && p.parent == parent && p.adj == in.Adj
	if same && p.listings%oomRecheckEvery != 0 {
		known = p.held
	}
	listings := 1
	if same {
		listings = p.listings + 1
	}
	r, held := applyOOMScore(ctx, cfg.Proc, parent, in.Adj, plan.DryRun, at, known, hierarchies...)
	*p = oomPace{ran: true, at: at, dryRun: plan.DryRun, parent: parent, adj: in.Adj, failed: r.Status == qos.ResultFailed,
		held: held, listings: listings}
	return r, true
}
