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
func applyOOMScore(ctx context.Context, proc FS, parent string, adj int, dryRun bool, at time.Time, hierarchies ...FS) qos.IntentResult {
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
	for _, pid := range sorted {
		o.run(ctx, step{
			fs:     proc,
			cgroup: "/" + strconv.Itoa(pid),
			file:   "oom_score_adj",
			want:   strconv.Itoa(adj),
			same:   sameInt(int64(adj)),
		})
	}
	r := o.result(qos.IntentOfflineOOMScore, parent, at)
	if r.Status == qos.ResultFailed {
		// Name the scope: per-pid errors read "cgroup /123: ..." otherwise.
		r.Err = fmt.Sprintf("oom_score_adj of tasks in %s: %s", parent, r.Err)
	}
	return r
}

// oomPace runs applyOOMScore at most once per Config.OOMScoreInterval.
type oomPace struct {
	ran    bool
	at     time.Time
	dryRun bool
	parent string
	adj    int
	failed bool
}

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
	r := applyOOMScore(ctx, cfg.Proc, parent, in.Adj, plan.DryRun, at, hierarchies...)
	*p = oomPace{ran: true, at: at, dryRun: plan.DryRun, parent: parent, adj: in.Adj, failed: r.Status == qos.ResultFailed}
	return r, true
}
