package qos

import (
	"cmp"
	"slices"
	"time"
)

// decideKills plans at most one priority kill of offline work.
//
// Offline memory (less what already-killed victims still hold) must stay
// above the offline hard limit for the kill grace before anyone dies: the
// limit is lowered first and the kernel gets the grace to reclaim. Then one
// offline workload is chosen (see victimOrder) and at most one kill is
// planned per cool-down. Online and system work are never candidates.
//
// Results from the enforcer (Intent "kill", Target = KillIntent.ID) feed
// back: an applied kill marks the victim killed until it is gone from the
// samples, so it is neither chosen again nor counted; a failed or
// unsupported kill releases the cool-down it started and passes over that
// victim for one cool-down, so the next one can be tried at once.
func decideKills(obs Observation, pol Policy, mem MemoryIntent, prev KillState) ([]KillIntent, KillState) {
	present := workloadIndex{ws: obs.Workloads}
	next := KillState{OverSince: prev.OverSince, LastKillAt: prev.LastKillAt}
	if prev.Pending != nil {
		p := *prev.Pending
		next.Pending = &p
	}
	for _, k := range prev.Killed {
		if present.get(k.ID) != nil {
			next.Killed = append(next.Killed, k)
		}
	}
	for _, k := range prev.Failed {
		if present.get(k.ID) != nil && obs.Time.Sub(k.At) < pol.Kill.CoolDown {
			next.Failed = append(next.Failed, k)
		}
	}
	next.applyResults(obs, &present)

	if obs.Host.MemTotalBytes == 0 {
		// No memory figures, no limit: never kill on a broken sample.
		next.OverSince = time.Time{}
		return nil, next
	}
	offlineUsed := obs.Class(ClassOffline).MemoryUsageBytes
	for _, k := range next.Killed {
		offlineUsed -= min(offlineUsed, present.get(k.ID).MemoryUsageBytes)
	}
	if offlineUsed <= mem.MaxBytes {
		next.OverSince = time.Time{}
		return nil, next
	}
	if next.OverSince.IsZero() || obs.Time.Before(next.OverSince) {
		next.OverSince = obs.Time
	}
	overFor := obs.Time.Sub(next.OverSince)
	if overFor < pol.Kill.Grace {
		return nil, next
	}
	// A clock that went backwards also reads as "inside the cool-down".
	if !next.LastKillAt.IsZero() && obs.Time.Sub(next.LastKillAt) < pol.Kill.CoolDown {
		return nil, next
	}
	cands := candidates(obs.Workloads, next, mem.MaxBytes)
	if len(cands) == 0 {
		return nil, next
	}
	v := cands[0]
	next.LastKillAt = obs.Time
	next.Pending = &KillRecord{ID: v.w.ID, CgroupPath: v.w.CgroupPath, At: obs.Time}
	why := Reason{Rule: RuleKillOverLimit, Kill: &KillFigures{
		OfflineUsedBytes: offlineUsed, LimitBytes: mem.MaxBytes, OverFor: overFor, Grace: pol.Kill.Grace,
		CoolDown: pol.Kill.CoolDown, Victim: v.w.Name, Candidates: len(cands), Priority: v.w.Priority,
		StartedAt: v.w.StartedAt, Share: v.share, VictimLimitBytes: v.limit, VictimUsedBytes: v.w.MemoryUsageBytes,
	}}
	return []KillIntent{{
		ID:         v.w.ID,
		Namespace:  v.w.Namespace,
		Name:       v.w.Name,
		CgroupPath: v.w.CgroupPath,
		Class:      v.w.Class,
		Priority:   v.w.Priority,
		Reason:     why,
	}}, next
}

// applyResults folds the enforcer's kill reports into the state.
func (k *KillState) applyResults(obs Observation, present *workloadIndex) {
	for _, r := range obs.Results {
		if r.Intent != IntentKill {
			continue
		}
		pending := k.Pending != nil && k.Pending.ID == r.Target
		switch r.Status {
		case ResultApplied:
			if w := present.get(r.Target); w != nil && !hasRecord(k.Killed, r.Target) {
				k.Killed = append(k.Killed, KillRecord{ID: r.Target, CgroupPath: w.CgroupPath, At: obs.Time})
			}
		case ResultFailed, ResultUnsupported:
			if w := present.get(r.Target); w != nil && !hasRecord(k.Failed, r.Target) {
				k.Failed = append(k.Failed, KillRecord{ID: r.Target, CgroupPath: w.CgroupPath, At: obs.Time})
			}
			if pending && k.LastKillAt.Equal(k.Pending.At) {
				k.LastKillAt = time.Time{}
			}
		}
		if pending {
			k.Pending = nil
		}
	}
	// A pending victim that vanished without a report died anyway.
	if k.Pending != nil && present.get(k.Pending.ID) == nil {
		k.Pending = nil
	}
}

func hasRecord(rs []KillRecord, id string) bool {
	return slices.ContainsFunc(rs, func(r KillRecord) bool { return r.ID == id })
}

type candidate struct {
	w     *WorkloadSample
	limit uint64
	share float64
}

// candidates lists the offline workloads that may be killed, best victim
// first (victimOrder). Workloads using no memory are left out: killing
// them frees nothing.
func candidates(ws []WorkloadSample, k KillState, parentLimit uint64) []candidate {
	var out []candidate
	for i := range ws {
		w := &ws[i]
		if w.Class != ClassOffline || w.MemoryUsageBytes == 0 || hasRecord(k.Killed, w.ID) || hasRecord(k.Failed, w.ID) {
			continue
		}
		limit := w.MemoryLimitBytes
		if limit == 0 || limit > parentLimit {
			limit = parentLimit
		}
		share := 0.0
		if limit > 0 {
			share = float64(w.MemoryUsageBytes) / float64(limit)
		}
		out = append(out, candidate{w: w, limit: limit, share: share})
	}
	slices.SortFunc(out, victimOrder)
	return out
}

// victimOrder ranks victims: lowest priority first; then youngest (latest
// StartedAt: it has lost the least work); then the largest share of its
// memory limit (its own limit, or the offline parent's when it has none
// or a looser one); then ID, so the choice is deterministic.
func victimOrder(a, b candidate) int {
	if c := cmp.Compare(a.w.Priority, b.w.Priority); c != 0 {
		return c
	}
	if c := b.w.StartedAt.Compare(a.w.StartedAt); c != 0 {
		return c
	}
	if c := cmp.Compare(b.share, a.share); c != 0 {
		return c
	}
	return cmp.Compare(a.w.ID, b.w.ID)
}

// workloadIndex finds workloads by ID, indexing them on the first lookup:
// most decisions (nothing killed or pending, no kill results) look up
// none, and the index of a hundred workloads was most of what a decision
// allocated.
type workloadIndex struct {
	ws  []WorkloadSample
	ids map[string]*WorkloadSample
}

func (x *workloadIndex) get(id string) *WorkloadSample {
	if x.ids == nil {
		x.ids = make(map[string]*WorkloadSample, len(x.ws))
		for i := range x.ws {
			x.ids[x.ws[i].ID] = &x.ws[i]
		}
	}
	return x.ids[id]
}
