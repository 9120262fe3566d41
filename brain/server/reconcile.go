package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/place"
	"github.com/sluicehq/sluice/brain/store"
	"github.com/sluicehq/sluice/brain/trace"
)

type changeKind int

const (
	changeSubmit changeKind = iota
	changeDelete
	changeRegister
	changeCordon
	changeUncordon
	changeUp
	changeOverrides
)

// change is one queued request; done receives its outcome once.
type change struct {
	kind      changeKind
	jobs      []trace.Job
	name      string
	host      store.Host
	overrides *store.Overrides
	done      chan error
	// jobs' descriptions once committed (changeSubmit), built by the pass
	// under the lock it holds anyway: a flood's hundreds of callers do not
	// each queue for the lock again after their commit.
	reply []*brainv1.Job
}

func (c *change) finish(err error) {
	if c.done != nil {
		c.done <- err
		c.done = nil
	}
}

// enqueue queues c for the next pass and waits for its outcome.
func (b *Brain) enqueue(ctx context.Context, c *change) error {
	c.done = make(chan error, 1)
	done := c.done
	b.mu.Lock()
	b.pending = append(b.pending, c)
	b.mu.Unlock()
	b.poke()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("waiting for the brain to commit: %w", ctx.Err())
	}
}

// work is one pass's view: the cache plus this pass's edits.
type work struct {
	workEvents // what the pass publishes and explains (events.go)

	hosts      map[string]store.Host
	jobs       map[string]trace.Job
	placements map[string]store.Placement
	dirty      map[string]bool // keys changed (put or deleted)
	dirtyHosts map[string]bool // hosts whose target must be rewritten
	batch      store.Batch
	targets    map[string]store.Target
	deltas     map[string]delta
	done       []*change
	requeue    []*change
	reasons    map[string]string
	live       map[string]seen
	// overrides holds hosts' new QoS overrides (nil clears).
	overrides map[string]*store.Overrides
	// rollouts and rolls are the rollouts' durable and in-memory state
	// after this pass.
	rollouts  map[string]store.Rollout
	rolls     map[string]rollTrack
	replaced  int
	placed    int
	failed    int
	preempted int
	evicted   int
	more      bool
}

func (w *work) delPlacement(key string) {
	p := w.placements[key]
	delete(w.placements, key)
	w.dirty[key] = true
	w.dirtyHosts[p.Host] = true
}

// putPlacement stages a new placement; buildBatch stamps its Version.
func (w *work) putPlacement(p store.Placement) {
	key := store.PlacementKey(p.Job, p.Index)
	p.Version = 0
	w.placements[key] = p
	w.dirty[key] = true
	w.dirtyHosts[p.Host] = true
}

// pass runs one reconcile pass; more reports work left for another pass.
func (b *Brain) pass(ctx context.Context) (more bool, err error) {
	// Only this goroutine writes the cache (in apply, under mu), so the
	// plan reads it without the lock; what handlers write (the queue,
	// liveness) is copied under the lock first.
	b.mu.Lock()
	pending := b.pending
	b.pending = nil
	seen := b.liveSnapshot()
	b.mu.Unlock()
	tp := time.Now()
	w := b.plan(pending, seen)
	b.m.planSeconds.Observe(time.Since(tp).Seconds())
	if len(w.batch.Puts)+len(w.batch.Deletes) == 0 {
		b.mu.Lock()
		b.pendingReason = w.reasons
		b.rolls = w.rolls
		b.mu.Unlock()
		b.events.Publish(w.events...)
		for _, c := range w.done {
			c.finish(nil)
		}
		b.requeue(w.requeue)
		return w.more || len(w.requeue) > 0, nil
	}
	t0 := time.Now()
	rev, err := b.cfg.Store.Commit(ctx, &w.batch)
	lat := time.Since(t0).Seconds()
	switch {
	case err == nil:
		b.m.txnSeconds.WithLabelValues("ok").Observe(lat)
	case errors.Is(err, store.ErrConflict):
		b.m.txnSeconds.WithLabelValues("conflict").Observe(lat)
		b.requeue(append(w.done, w.requeue...))
		if lerr := b.reload(ctx); lerr != nil {
			return true, lerr
		}
		return true, err
	default:
		// etcd unreachable, or the batch refused: the callers whose
		// changes rode in it hear so (nothing of it was committed) rather
		// than wait on a change that may never commit and would block
		// every later one.
		b.m.txnSeconds.WithLabelValues("error").Observe(lat)
		for _, c := range w.done {
			c.finish(fmt.Errorf("commit: %w", err))
		}
		b.requeue(w.requeue)
		return true, err
	}
	b.mu.Lock()
	b.apply(w, rev)
	for _, c := range w.done {
		if c.kind == changeSubmit {
			c.reply = make([]*brainv1.Job, 0, len(c.jobs))
			for _, j := range c.jobs {
				if cur, ok := b.st.Jobs[j.Name]; ok {
					j = cur
				}
				c.reply = append(c.reply, b.jobPB(j, false))
			}
		}
	}
	b.mu.Unlock()
	b.events.Publish(w.events...)
	for _, c := range w.done {
		c.finish(nil)
	}
	b.requeue(w.requeue)
	b.m.passes.Inc()
	b.m.placements.WithLabelValues("placed").Add(float64(w.placed))
	b.m.placements.WithLabelValues("unplaceable").Add(float64(w.failed))
	b.m.placements.WithLabelValues("preempted").Add(float64(w.preempted))
	b.m.placements.WithLabelValues("evicted").Add(float64(w.evicted))
	b.m.placements.WithLabelValues("replaced").Add(float64(w.replaced))
	return w.more || len(w.requeue) > 0, nil
}

func (b *Brain) requeue(cs []*change) {
	if len(cs) == 0 {
		return
	}
	b.mu.Lock()
	b.pending = append(cs, b.pending...)
	b.mu.Unlock()
}

func (b *Brain) reload(ctx context.Context) error {
	st, err := b.cfg.Store.Load(ctx)
	if err != nil {
		return fmt.Errorf("reload after conflict: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.st = st
	b.indexJobs()
	for name := range st.Hosts {
		if b.live[name] == nil {
			b.live[name] = b.newLive()
		}
	}
	for name, l := range b.live {
		// The history no longer describes the stored versions.
		l.history = nil
		if _, ok := st.Hosts[name]; !ok {
			delete(b.live, name)
		}
		l.wake(nil)
	}
	return nil
}

// seen is a host's liveness as a pass sees it.
type seen struct {
	lastSeen        time.Time
	lentCPUMilli    int64
	lentMemoryBytes int64
	reportedLend    bool
	// heard: a heartbeat came since the brain started; states are the
	// containers' states it reported (never written, only replaced) at
	// applied version statesVersion.
	heard         bool
	states        map[string]string
	statesVersion uint64
}

// seen copies what handlers write about the host; caller holds mu.
func (l *hostLive) seen() seen {
	return seen{l.lastSeen, l.lentCPUMilli, l.lentMemoryBytes, l.reportedLend, l.heard, l.states, l.statesVersion}
}

// liveSnapshot copies what handlers write about hosts; caller holds mu.
func (b *Brain) liveSnapshot() map[string]seen {
	out := make(map[string]seen, len(b.live))
	for name, l := range b.live {
		out[name] = l.seen()
	}
	return out
}

// plan computes one pass from the cache, the queued changes and the hosts'
// liveness, and returns the batch to commit without touching the cache.
// Only the reconcile goroutine calls it.
func (b *Brain) plan(pending []*change, live map[string]seen) *work {
	w := &work{
		hosts: maps.Clone(b.st.Hosts), jobs: maps.Clone(b.st.Jobs), placements: maps.Clone(b.st.Placements),
		dirty: map[string]bool{}, dirtyHosts: map[string]bool{}, targets: map[string]store.Target{},
		deltas: map[string]delta{}, reasons: map[string]string{}, live: live, overrides: map[string]*store.Overrides{},
		rollouts: maps.Clone(b.st.Rollouts), rolls: maps.Clone(b.rolls),
	}
	budget := b.cfg.Store.MaxOps()
	if budget <= 0 {
		budget = store.DefaultMaxTxnOps
	}
	// Leave room for the placements and target bumps of the changes taken.
	changeBudget := budget / 4
	used := 0
	for i, c := range pending {
		if used >= changeBudget {
			w.requeue = append(w.requeue, pending[i:]...)
			break
		}
		n, err := b.applyChange(w, c)
		if err != nil {
			c.finish(err)
			continue
		}
		used += n
		w.done = append(w.done, c)
	}
	b.markDown(w)
	// Drop placements of deleted jobs, down or cordoned hosts, and replicas
	// beyond a job's count.
	for key, p := range w.placements {
		j, ok := w.jobs[p.Job]
		h := w.hosts[p.Host]
		switch {
		case !ok || p.Index >= j.Count:
			w.delPlacement(key)
		case h.Down || h.Cordoned || h.Name == "":
			w.delPlacement(key)
			w.evicted++
			w.events = append(w.events, Event{Topic: TopicEviction, Type: "evicted", Host: p.Host, Job: p.Job, Replica: p.ID(), Reason: evictionReason(h, p.Host)})
		}
	}
	b.roll(w)
	b.placeMissing(w, budget)
	b.buildBatch(w)
	return w
}

// applyChange folds one queued change into w and returns its op
// estimate, or why the change cannot be made.
func (b *Brain) applyChange(w *work, c *change) (int, error) {
	switch c.kind {
	case changeSubmit:
		n := 0
		for _, j := range c.jobs {
			if old, ok := w.jobs[j.Name]; ok {
				// Pinning the replicas' spec writes each of them.
				n += 2 * old.Count
			}
			b.submitJob(w, j)
		}
		return n + 2*len(c.jobs), nil
	case changeDelete:
		if _, ok := w.jobs[c.name]; ok {
			delete(w.jobs, c.name)
			w.dirty[store.JobKey(c.name)] = true
		}
		delete(w.rolls, c.name)
		if _, ok := w.rollouts[c.name]; ok {
			delete(w.rollouts, c.name)
			w.dirty[store.RolloutKey(c.name)] = true
		}
		return 4, nil
	case changeRegister:
		// Two nodes may race for one name past the handler's check: the
		// first one committed wins.
		if old, ok := w.hosts[c.host.Name]; ok && old.NodeID != c.host.NodeID {
			l, seen := w.live[old.Name]
			live := seen && !old.Down && b.now().Sub(l.lastSeen) <= b.ttl()
			if live || w.dirty[store.HostKey(old.Name)] {
				return 0, connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("register %s: the name is held by live node %s", old.Name, old.NodeID))
			}
		}
		if old, ok := w.hosts[c.host.Name]; !ok || old.Down {
			typ, why := "registered", "new host"
			if ok {
				typ, why = "up", "registered again"
			}
			w.events = append(w.events, Event{Topic: TopicHost, Type: typ, Host: c.host.Name, Reason: why})
		}
		w.hosts[c.host.Name] = c.host
		w.dirty[store.HostKey(c.host.Name)] = true
		return 2, nil
	case changeOverrides:
		if _, ok := w.hosts[c.name]; !ok {
			return 0, connect.NewError(connect.CodeNotFound, fmt.Errorf("host %q: unknown", c.name))
		}
		w.overrides[c.name] = c.overrides
		w.dirtyHosts[c.name] = true
		return 2, nil
	case changeCordon, changeUncordon, changeUp:
		h, ok := w.hosts[c.name]
		if !ok {
			return 0, connect.NewError(connect.CodeNotFound, fmt.Errorf("host %q: unknown", c.name))
		}
		switch {
		case c.kind == changeCordon && !h.Cordoned:
			w.events = append(w.events, Event{Topic: TopicHost, Type: "draining", Host: c.name, Reason: "drained by an operator"})
		case c.kind == changeUncordon && h.Cordoned:
			w.events = append(w.events, Event{Topic: TopicHost, Type: "uncordoned", Host: c.name, Reason: "uncordoned by an operator"})
		case c.kind == changeUp && h.Down:
			w.events = append(w.events, Event{Topic: TopicHost, Type: "up", Host: c.name, Reason: "heartbeats resumed"})
		}
		switch c.kind {
		case changeCordon:
			h.Cordoned = true
		case changeUncordon:
			h.Cordoned = false
		case changeUp:
			h.Down = false
		}
		w.hosts[c.name] = h
		w.dirty[store.HostKey(c.name)] = true
		return 2, nil
	}
	return 0, fmt.Errorf("unknown change kind %d", c.kind)
}

// markDown marks hosts silent for longer than their TTL down.
func (b *Brain) markDown(w *work) {
	now := b.now()
	ttl := b.ttl()
	for name, h := range w.hosts {
		l, ok := w.live[name]
		if h.Down || !ok || now.Sub(b.shed.heardBy(l.lastSeen)) <= ttl {
			continue
		}
		h.Down = true
		w.hosts[name] = h
		w.dirty[store.HostKey(name)] = true
		w.dirtyHosts[name] = true
		b.log.Warn("host down: no heartbeat within its ttl", "host", name, "ttl", ttl, "last_seen", l.lastSeen)
		w.events = append(w.events, Event{Topic: TopicHost, Type: "down", Host: name,
			Reason: fmt.Sprintf("no heartbeat for %s (ttl %s)", now.Sub(l.lastSeen).Round(time.Millisecond), ttl)})
	}
}

type replica struct {
	job   trace.Job
	index int
}

// placeMissing places every job's missing replicas, highest priority
// first, until the op budget is spent.
func (b *Brain) placeMissing(w *work, budget int) {
	have := map[string]map[int]bool{}
	for _, p := range w.placements {
		if have[p.Job] == nil {
			have[p.Job] = map[int]bool{}
		}
		have[p.Job][p.Index] = true
	}
	var missing []replica
	for _, j := range w.jobs {
		for i := range j.Count {
			if !have[j.Name][i] {
				missing = append(missing, replica{j, i})
			}
		}
	}
	if len(missing) == 0 {
		return
	}
	sort.Slice(missing, func(a, c int) bool {
		x, y := missing[a], missing[c]
		if x.job.Priority != y.job.Priority {
			return x.job.Priority > y.job.Priority
		}
		if x.job.Name != y.job.Name {
			return x.job.Name < y.job.Name
		}
		return x.index < y.index
	})
	online, offline, err := b.clusters(w)
	if err != nil {
		for _, r := range missing {
			w.reasons[r.job.Name] = err.Error()
		}
		b.log.Error("cannot build the placement view", "err", err)
		return
	}
	for _, r := range missing {
		// A placement costs a guard and a put for itself and, at most, a
		// guard and a put for its host's target.
		if len(w.dirty)+2*len(w.dirtyHosts)+4 > budget*3/4 {
			w.more = true
			return
		}
		c := online
		if r.job.App.Class.Or() == trace.ClassOffline {
			c = offline
		}
		req := r.job.Request(r.index)
		t0 := time.Now()
		dec, err := c.Place(req)
		b.m.placeSeconds.Observe(time.Since(t0).Seconds())
		if err != nil {
			b.placementFailed(w, r, err.Error())
			continue
		}
		if !dec.Placed {
			b.placementFailed(w, r, rejectionText(dec, r.job.App.Class.Or()))
			continue
		}
		for _, v := range dec.Victims {
			key, ok := placementKeyOfID(w, v.ID)
			if ok {
				victim := w.placements[key]
				why := fmt.Sprintf("%s preempted by %s (priority %d)", v.ID, req.ID, req.Priority)
				w.reasons[victim.Job] = why
				w.events = append(w.events, Event{Topic: TopicEviction, Type: "preempted", Host: victim.Host, Job: victim.Job, Replica: v.ID, Reason: why})
				w.delPlacement(key)
				w.preempted++
			}
		}
		w.putPlacement(store.Placement{
			Job: r.job.Name, Index: r.index, Host: dec.Placement.Host,
			GPUIndices: dec.Placement.GPUIndices, Borrowed: dec.Placement.Borrowed,
		})
		w.explain(store.PlacementKey(r.job.Name, r.index), placementText(dec))
		w.placed++
	}
}

func placementKeyOfID(w *work, id string) (string, bool) {
	for key, p := range w.placements {
		if p.ID() == id {
			return key, true
		}
	}
	return "", false
}

func rejectionText(dec place.Decision, class trace.Class) string {
	if dec.Considered == 0 && (len(dec.Rejections) == 0 || dec.Rejections[0].Hosts == 0) {
		if class == trace.ClassOffline {
			return "no host is up and lending to offline work"
		}
		return "no host is up (registered, heartbeating, not drained)"
	}
	s := fmt.Sprintf("no host fits: %d considered", dec.Considered)
	for i, r := range dec.Rejections {
		if i == 3 {
			break
		}
		s += fmt.Sprintf(", %d %s", r.Hosts, r.Reason)
	}
	return s
}

// clusters builds the two placement views: online and system jobs against
// capacity, offline jobs against what hosts lend.
func (b *Brain) clusters(w *work) (online, offline *place.Cluster, err error) {
	prof := place.Profile{SampleFeasible: b.cfg.SampleFeasible}
	curveSet := false
	for _, name := range slices.Sorted(maps.Keys(w.jobs)) {
		j := w.jobs[name]
		aas, spreads := j.App.Rules(j.DomainLabel)
		prof.AntiAffinity = append(prof.AntiAffinity, aas...)
		prof.Spreads = append(prof.Spreads, spreads...)
		if len(j.App.Curves) > 0 && !curveSet {
			prof.CurvePoints, curveSet = j.CurvePoints, true
		}
	}
	var onSnap, offSnap place.Snapshot
	offUsed := map[string]place.Resources{}
	for _, key := range slices.Sorted(maps.Keys(w.placements)) {
		p := w.placements[key]
		j := specOf(w, p)
		pp := place.Placement{Request: b.request(j, p.Index, prof.CurvePoints), Host: p.Host, GPUIndices: p.GPUIndices, Borrowed: p.Borrowed}
		if j.App.Class.Or() == trace.ClassOffline {
			offSnap.Placements = append(offSnap.Placements, pp)
			u := offUsed[p.Host]
			if u == nil {
				u = place.Resources{}
				offUsed[p.Host] = u
			}
			for k, v := range pp.Demand {
				u[k] += v
			}
		} else {
			onSnap.Placements = append(onSnap.Placements, pp)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(w.hosts)) {
		h := w.hosts[name]
		if h.Down || h.Cordoned {
			continue
		}
		ph := place.Host{Name: h.Name, Labels: h.Labels, Capacity: place.Resources(maps.Clone(h.Capacity)), GPUs: h.GPUs, GPUModel: h.GPUModel}
		onSnap.Hosts = append(onSnap.Hosts, ph)
		off := ph
		off.Capacity = place.Resources(maps.Clone(h.Capacity))
		var lentCPU, lentMem int64
		if l := w.live[name]; l.reportedLend {
			lentCPU, lentMem = l.lentCPUMilli, l.lentMemoryBytes
		}
		// Offline work fits in what the host lends now; what already runs
		// there stays (its agent squeezes it), but nothing more is added.
		off.Capacity[place.DimCPU] = max(lentCPU, offUsed[name][place.DimCPU])
		off.Capacity[place.DimMemory] = max(lentMem, offUsed[name][place.DimMemory])
		offSnap.Hosts = append(offSnap.Hosts, off)
	}
	if online, err = place.New(onSnap, prof); err != nil {
		return nil, nil, fmt.Errorf("online placement view: %w", err)
	}
	if offline, err = place.New(offSnap, prof); err != nil {
		return nil, nil, fmt.Errorf("offline placement view: %w", err)
	}
	return online, offline, nil
}

// request is replica i's request; curves of another length than the
// cluster's are flattened to their peak.
func (b *Brain) request(j trace.Job, i, curvePoints int) place.Request {
	r := j.Request(i)
	if len(r.Curves) > 0 && j.CurvePoints != curvePoints {
		r.Curves = nil
	}
	return r
}

// buildBatch turns w's edits into the transaction and the new targets.
func (b *Brain) buildBatch(w *work) {
	revs := b.st.Revs
	b.buildTargets(w)
	for key := range w.dirty {
		w.batch.Guard(key, revs[key])
		if name, ok := strings.CutPrefix(key, store.HostKey("")); ok {
			w.batch.Put(key, w.hosts[name])
			continue
		}
		var rec any
		var ok bool
		if name, isJob := strings.CutPrefix(key, store.JobKey("")); isJob {
			rec, ok = w.jobs[name]
		} else if name, isRollout := strings.CutPrefix(key, store.RolloutKey("")); isRollout {
			rec, ok = w.rollouts[name]
		} else if p, isPlaced := w.placements[key]; isPlaced {
			if p.Version == 0 {
				// A new placement: the first target holding it is its
				// host's after this batch.
				p.Version = b.st.Targets[p.Host].Version
				if t, bumped := w.targets[p.Host]; bumped {
					p.Version = t.Version
				}
				w.placements[key] = p
			}
			rec, ok = p, true
		}
		if ok {
			w.batch.Put(key, rec)
		} else {
			w.batch.Deletes = append(w.batch.Deletes, key)
		}
	}
}

// buildTargets rewrites the targets of the hosts w touched.
func (b *Brain) buildTargets(w *work) {
	revs := b.st.Revs
	byHost := map[string][]store.Container{}
	for host := range w.dirtyHosts {
		byHost[host] = nil
	}
	for _, p := range w.placements {
		if _, ok := byHost[p.Host]; ok {
			byHost[p.Host] = append(byHost[p.Host], containerOf(specOf(w, p), p))
		}
	}
	for host, cs := range byHost {
		sort.Slice(cs, func(i, j int) bool { return cs[i].ID < cs[j].ID })
		old := b.st.Targets[host]
		d := diffTargets(old.Containers, cs)
		overrides, changed := w.overrides[host]
		if !changed {
			overrides = old.Overrides
		}
		if len(d.Upsert) == 0 && len(d.Remove) == 0 && old.Version > 0 && !changed {
			continue
		}
		t := store.Target{Host: host, Version: old.Version + 1, Containers: cs, Overrides: overrides}
		d.From, d.To = old.Version, t.Version
		key := store.TargetKey(host)
		w.batch.Guard(key, revs[key])
		w.batch.Put(key, t)
		w.targets[host] = t
		w.deltas[host] = d
	}
}

// specOf is the job as replica p runs it: the spec it was placed with
// while a rollout has not replaced it, else the job's.
func specOf(w *work, p store.Placement) trace.Job {
	if p.Spec != nil {
		return *p.Spec
	}
	return w.jobs[p.Job]
}

// containerOf is what a host runs for replica p of job j.
func containerOf(j trace.Job, p store.Placement) store.Container {
	a := j.App
	return store.Container{
		ID: p.ID(), Job: j.Name, App: a.Name, Image: a.Image, Command: a.Command, Env: a.Env,
		Resources: j.App.Demand(), Class: string(a.Class.Or()), Priority: j.Priority,
		Labels: map[string]string{
			"sluice.io/job": j.Name, "sluice.io/replica": p.ID(),
			"sluice.io/class": string(a.Class.Or()), "sluice.io/priority": fmt.Sprint(j.Priority),
		},
		Restart: string(a.Restart.Or()),
	}
}

// diffTargets lists what turns old into new (both sorted by ID).
func diffTargets(old, cur []store.Container) delta {
	var d delta
	o := map[string]store.Container{}
	for _, c := range old {
		o[c.ID] = c
	}
	seen := map[string]bool{}
	for _, c := range cur {
		seen[c.ID] = true
		if prev, ok := o[c.ID]; !ok || !sameContainer(prev, c) {
			d.Upsert = append(d.Upsert, c)
		}
	}
	for _, c := range old {
		if !seen[c.ID] {
			d.Remove = append(d.Remove, c.ID)
		}
	}
	return d
}

func sameContainer(a, b store.Container) bool {
	return a.ID == b.ID && a.Job == b.Job && a.App == b.App && a.Image == b.Image && slices.Equal(a.Command, b.Command) &&
		maps.Equal(a.Env, b.Env) && maps.Equal(a.Resources, b.Resources) && a.Class == b.Class &&
		a.Priority == b.Priority && maps.Equal(a.Labels, b.Labels) && a.Restart == b.Restart
}

// apply makes a committed pass the cache; caller holds mu.
func (b *Brain) apply(w *work, rev int64) {
	b.st.Hosts, b.st.Jobs, b.st.Placements, b.st.Rollouts = w.hosts, w.jobs, w.placements, w.rollouts
	b.rolls = w.rolls
	b.indexJobs()
	for key := range w.batch.Puts {
		b.st.Revs[key] = rev
	}
	for _, key := range w.batch.Deletes {
		delete(b.st.Revs, key)
	}
	b.st.Revision = rev
	b.pendingReason = w.reasons
	for key := range w.dirty {
		if why, ok := w.why[key]; ok {
			b.why[key] = why
		} else if _, ok := w.placements[key]; !ok {
			delete(b.why, key)
		}
	}
	now := b.now()
	for name := range w.hosts {
		if b.live[name] == nil {
			b.live[name] = &hostLive{lastSeen: now, changed: make(chan struct{}), committed: map[uint64]time.Time{}}
		}
	}
	for host, t := range w.targets {
		b.st.Targets[host] = t
		l := b.live[host]
		if l == nil {
			continue
		}
		l.history = append(l.history, w.deltas[host])
		if n := len(l.history) - b.cfg.HistoryPerHost; n > 0 {
			l.history = slices.Delete(l.history, 0, n)
		}
		l.committed[t.Version] = now
		for v := range l.committed {
			if v+uint64(b.cfg.HistoryPerHost) < t.Version {
				delete(l.committed, v)
			}
		}
		// The delta every stream at the previous version sends, built
		// once here rather than by each stream under the lock. A queued
		// log request needs the slow path: it rides with the update.
		var msg *brainv1.TargetsResponse
		if d := w.deltas[host]; d.From > 0 && len(l.logReqs) == 0 {
			msg = b.update(l, t, d.From)
		}
		l.wake(msg)
	}
	b.updateHostGauge()
}
