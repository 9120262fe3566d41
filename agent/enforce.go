package agent

import (
	"context"
	"log/slog"
	"slices"
	"sync"

	"github.com/sluicehq/sluice/qos"
)

// worker runs one enforcer that is not Inline, in its own goroutine, so
// that a slow Apply never holds up the loop. The loop posts every plan it
// enforces into a one-slot mailbox that keeps only the latest; the worker
// applies whatever is there when it is free, and the results wait for the
// loop's next iteration.
type worker struct {
	name string
	enf  Enforcer
	log  *slog.Logger
	mail chan qos.Plan
	// applied, when set, is called after each Apply's results are stored
	// (tests synchronise on it).
	applied func(name string)

	mu sync.Mutex
	// fresh holds results not yet handed to an Observation.
	fresh []qos.IntentResult
	// shown is the last non-empty batch handed to an Observation, kept for
	// /state; loop goroutine only.
	shown []qos.IntentResult
}

func newWorker(e Enforcement, log *slog.Logger) *worker {
	return &worker{name: e.Name, enf: e.Enforcer, log: log.With("enforcer", e.Name), mail: make(chan qos.Plan, 1)}
}

// post puts plan in the mailbox, replacing a plan the worker has not
// taken yet. Called from the loop goroutine only. Kills are edges, not
// levels: a replaced plan's kills that the new plan lacks are carried
// over, so a kill planned once is carried out once even when the next
// plan arrives before the killer was free.
func (w *worker) post(plan qos.Plan) {
	select {
	case old := <-w.mail:
		plan.Kills = carryKills(old.Kills, plan.Kills)
	default:
	}
	w.mail <- plan // the loop is the only sender and the slot is empty now
}

func carryKills(old, next []qos.KillIntent) []qos.KillIntent {
	var carried []qos.KillIntent
	for _, k := range old {
		if !slices.ContainsFunc(next, func(n qos.KillIntent) bool { return n.ID == k.ID }) {
			carried = append(carried, k)
		}
	}
	if len(carried) == 0 {
		return next
	}
	return append(carried, next...)
}

// run applies mailed plans until ctx ends.
func (w *worker) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case plan := <-w.mail:
			rs := w.enf.Apply(ctx, plan)
			for _, r := range rs {
				if r.Status == qos.ResultFailed {
					w.log.Error("enforce failed", "intent", r.Intent, "target", r.Target, "err", r.Err)
				}
			}
			w.mu.Lock()
			w.fresh = append(w.fresh, rs...)
			w.mu.Unlock()
			if w.applied != nil {
				w.applied(w.name)
			}
		}
	}
}

// take returns the results that arrived since the last take.
func (w *worker) take() []qos.IntentResult {
	w.mu.Lock()
	defer w.mu.Unlock()
	rs := w.fresh
	w.fresh = nil
	return rs
}

// startWorkers starts the workers once, for as long as ctx lives.
func (a *Agent) startWorkers(ctx context.Context) {
	if a.workersStarted {
		return
	}
	a.workersStarted = true
	for _, w := range a.workers {
		go w.run(ctx)
	}
}

// collectResults is what the next Observation reports: the inline
// enforcers' last results and every worker result that arrived since the
// previous iteration.
func (a *Agent) collectResults() []qos.IntentResult {
	rs := a.results
	for _, w := range a.workers {
		if fresh := w.take(); len(fresh) > 0 {
			a.metrics.enforced(fresh)
			w.shown = fresh
			rs = append(slices.Clip(rs), fresh...)
		}
	}
	return rs
}

// shownResults is what /state shows: the inline results of this iteration
// and the last results each worker reported to an Observation.
func (a *Agent) shownResults(inline []qos.IntentResult) []qos.IntentResult {
	rs := inline
	for _, w := range a.workers {
		if len(w.shown) > 0 {
			rs = append(slices.Clip(rs), w.shown...)
		}
	}
	return rs
}
