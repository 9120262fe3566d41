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
// (in any of hierarchies) to OfflineOOMScoreAdj, so that the kernel's own
// OOM killer picks offline work first, as Sluice's killer would. Online
// tasks are left to their runtime: lowering them is not Sluice's call.
// Tasks that exit meanwhile are skipped.
func applyOOMScore(ctx context.Context, proc FS, parent string, dryRun bool, at time.Time, hierarchies ...FS) qos.IntentResult {
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
			want:   strconv.Itoa(OfflineOOMScoreAdj),
			same:   sameInt(OfflineOOMScoreAdj),
		})
	}
	r := o.result(IntentOfflineOOMScore, parent, at)
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
	failed bool
}

// apply returns the listing's result, or false when it was not due.
func (p *oomPace) apply(ctx context.Context, cfg Config, parent string, dryRun bool, at time.Time, hierarchies ...FS) (qos.IntentResult, bool) {
	if p.ran && cfg.OOMScoreInterval > 0 && !p.failed && p.dryRun == dryRun && p.parent == parent &&
		!at.Before(p.at) && at.Sub(p.at) < cfg.OOMScoreInterval {
		return qos.IntentResult{}, false
	}
	r := applyOOMScore(ctx, cfg.Proc, parent, dryRun, at, hierarchies...)
	*p = oomPace{ran: true, at: at, dryRun: dryRun, parent: parent, failed: r.Status == qos.ResultFailed}
	return r, true
}
