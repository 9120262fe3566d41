package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/store"
	"github.com/sluicehq/sluice/brain/trace"
)

// A job whose spec changes keeps its replicas on the spec they were placed
// with (store.Placement.Spec) and replaces them a few at a time: at most
// the job's max_unavailable replicas are down or starting at once, the
// next ones go once their agents report the new ones running. A batch that
// does not come up within the update timeout pauses the rollout with the
// reason, durably, until the spec changes again (a new spec, or the
// previous one to roll back: replicas already on it are kept as they are).
// Replicas of an earlier spec that their agent reports not running are
// replaced at once: replacing them costs no availability.

// rollTrack is a rollout's progress clock, in memory: a restarted brain
// gives every rollout a full timeout again, as it gives hosts a full TTL.
type rollTrack struct {
	// since is when a replica was last replaced or came up.
	since time.Time
	// running is how many replicas on the current spec ran then.
	running int
}

// replicaState is what the brain knows of one replica's container.
type replicaState int

const (
	stateUnknown replicaState = iota // its agent has not reported since it got the replica as it is
	stateRunning
	stateNotRunning
)

// stateOf reads a replica's state from its host's last heartbeat, which
// counts only when it reports a target version that holds the replica as
// placed.
func stateOf(l seen, p store.Placement) replicaState {
	if !l.heard || l.statesVersion < p.Version {
		return stateUnknown
	}
	if l.states[p.ID()] == "running" {
		return stateRunning
	}
	return stateNotRunning
}

// sameSpec reports whether two versions of a job run the same replicas:
// they differ at most in count and update policy, which change no
// replica.
func sameSpec(a, b trace.Job) bool {
	a.Count, b.Count = 0, 0
	a.Update, b.Update = trace.UpdatePolicy{}, trace.UpdatePolicy{}
	x, errA := json.Marshal(a)
	y, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(x, y)
}

// submitJob folds a submitted job into w: unchanged, nothing; a changed
// spec keeps every placed replica on the spec it runs until the rollout
// replaces it.
func (b *Brain) submitJob(w *work, j trace.Job) {
	old, known := w.jobs[j.Name]
	if known && sameSpec(old, j) && old.Count == j.Count && old.Update == j.Update {
		return
	}
	w.jobs[j.Name] = j
	w.dirty[store.JobKey(j.Name)] = true
	if !known || sameSpec(old, j) {
		return
	}
	for _, key := range slices.Sorted(maps.Keys(w.placements)) {
		p := w.placements[key]
		if p.Job != j.Name {
			continue
		}
		switch {
		case p.Spec == nil:
			spec := old
			p.Spec = &spec
		case sameSpec(*p.Spec, j):
			// Back on the spec this replica runs: nothing to replace.
			p.Spec = nil
		default:
			continue
		}
		// The container does not change, so neither does its target.
		w.placements[key] = p
		w.dirty[key] = true
	}
	w.rolls[j.Name] = rollTrack{since: b.now(), running: -1}
	if _, ok := w.rollouts[j.Name]; ok {
		delete(w.rollouts, j.Name)
		w.dirty[store.RolloutKey(j.Name)] = true
	}
}

// roll replaces, for every job with replicas on an earlier spec, as many
// as its update policy allows, and pauses rollouts whose batch is overdue.
// It runs before placeMissing, which places the replaced replicas anew.
func (b *Brain) roll(w *work) {
	// Only jobs rolling or holding replicas of an earlier spec are looked
	// at: a pass must not cost more with every job that is settled.
	rolling := map[string]bool{}
	for name := range w.rolls {
		rolling[name] = true
	}
	for name := range w.rollouts {
		rolling[name] = true
	}
	for _, p := range w.placements {
		if p.Spec != nil {
			rolling[p.Job] = true
		}
	}
	if len(rolling) == 0 {
		return
	}
	byJob := map[string][]store.Placement{}
	for _, p := range w.placements {
		if rolling[p.Job] {
			byJob[p.Job] = append(byJob[p.Job], p)
		}
	}
	now := b.now()
	for _, name := range slices.Sorted(maps.Keys(rolling)) {
		j, ok := w.jobs[name]
		if !ok {
			continue
		}
		ps := byJob[name]
		sort.Slice(ps, func(a, c int) bool { return ps[a].Index < ps[c].Index })
		var outdated, dead []store.Placement
		running, waiting := 0, ""
		for _, p := range ps {
			st := stateOf(w.live[p.Host], p)
			switch {
			case p.Spec != nil && st == stateNotRunning:
				dead = append(dead, p)
			case p.Spec != nil:
				outdated = append(outdated, p)
			case st == stateRunning:
				running++
			case waiting == "":
				waiting = fmt.Sprintf("replica %s on %s not running", p.ID(), p.Host)
				if st == stateUnknown {
					waiting = fmt.Sprintf("replica %s on %s not reported running", p.ID(), p.Host)
				}
			}
		}
		unavailable := j.Count - running - len(outdated) - len(dead)
		if unavailable > 0 && waiting == "" {
			waiting = fmt.Sprintf("%d replicas not placed: %s", j.Count-len(ps), w.reasons[name])
		}
		track, tracked := w.rolls[name]
		if len(outdated)+len(dead) == 0 && (!tracked || unavailable <= 0) {
			delete(w.rolls, name)
			if _, ok := w.rollouts[name]; ok {
				delete(w.rollouts, name)
				w.dirty[store.RolloutKey(name)] = true
			}
			continue
		}
		if !tracked || track.running != running {
			track = rollTrack{since: now, running: running}
		}
		if w.rollouts[name].Paused {
			w.rolls[name] = track
			continue
		}
		replace := dead
		if n := j.Update.MaxUnavailableOr() - (unavailable + len(dead)); n > 0 {
			replace = append(replace, outdated[:min(n, len(outdated))]...)
		}
		for _, p := range replace {
			w.delPlacement(store.PlacementKey(p.Job, p.Index))
			w.replaced++
		}
		if len(replace) > 0 {
			track.since = now
		} else if timeout := j.Update.TimeoutOr(); unavailable > 0 && now.Sub(track.since) > timeout {
			reason := fmt.Sprintf("%s within %s", waiting, timeout)
			w.rollouts[name] = store.Rollout{Job: name, Paused: true, Reason: reason}
			w.dirty[store.RolloutKey(name)] = true
			b.log.Warn("rollout paused", "job", name, "reason", reason)
		}
		w.rolls[name] = track
	}
}

// rolloutPB describes a job's rollout; caller holds mu.
func (b *Brain) rolloutPB(j trace.Job) *brainv1.Rollout {
	out := &brainv1.Rollout{State: "done", MaxUnavailable: int32(j.Update.MaxUnavailableOr())}
	for _, p := range b.placementsOf(j.Name) {
		if p.Spec != nil {
			out.Outdated++
			continue
		}
		if l := b.live[p.Host]; l != nil && stateOf(l.seen(), p) == stateRunning {
			out.Running++
		}
	}
	if t, ok := b.rolls[j.Name]; ok {
		out.State = "rolling"
		out.LastProgressUnixMs = t.since.UnixMilli()
	} else if out.Outdated > 0 {
		out.State = "rolling" // before the first pass of a restarted brain
	}
	if r := b.st.Rollouts[j.Name]; r.Paused {
		out.State, out.Reason = "paused", r.Reason
	}
	return out
}
