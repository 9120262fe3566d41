package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/place"
	"github.com/sluicehq/sluice/brain/store"
	"github.com/sluicehq/sluice/brain/trace"
)

// maxLabels bounds what one registration may carry.
const (
	maxLabels       = 64
	maxCapabilities = 64
)

// Register records a host (or refreshes its record) and hands out the
// heartbeat interval. A name held by another node that is still alive is
// refused; a restarted agent (same node ID) is the same host at once.
func (b *Brain) Register(ctx context.Context, req *connect.Request[brainv1.RegisterRequest]) (*connect.Response[brainv1.RegisterResponse], error) {
	m := req.Msg
	if err := checkIdentity(m.GetNodeId(), m.GetName()); err != nil {
		return nil, err
	}
	capacity := m.GetCapacity().GetAmounts()
	switch {
	case capacity[place.DimCPU] <= 0:
		return nil, invalid("capacity.cpu", "must be positive (milli-CPUs)")
	case capacity[place.DimMemory] <= 0:
		return nil, invalid("capacity.memory", "must be positive (bytes)")
	case m.GetGpus() < 0:
		return nil, invalid("gpus", "negative")
	case m.GetGpus() > 0 && m.GetGpuModel() == "":
		return nil, invalid("gpu_model", "empty for a host with gpus")
	case len(m.GetLabels()) > maxLabels:
		return nil, invalid("labels", fmt.Sprintf("%d labels, at most %d", len(m.GetLabels()), maxLabels))
	case len(m.GetCapabilities()) > maxCapabilities:
		return nil, invalid("capabilities", fmt.Sprintf("%d entries, at most %d", len(m.GetCapabilities()), maxCapabilities))
	}
	for k, v := range capacity {
		if v < 0 {
			return nil, invalid("capacity."+k, "negative")
		}
	}
	labels := maps.Clone(m.GetLabels())
	if m.GetFailureDomain() != "" {
		if labels == nil {
			labels = map[string]string{}
		}
		labels[trace.DefaultDomainLabel] = m.GetFailureDomain()
	}
	h := store.Host{
		Name: m.GetName(), NodeID: m.GetNodeId(), Capacity: maps.Clone(capacity), GPUs: int(m.GetGpus()),
		GPUModel: m.GetGpuModel(), Labels: labels, CgroupMode: m.GetCgroupMode(), Capabilities: slices.Clone(m.GetCapabilities()),
	}
	b.mu.Lock()
	old, known := b.st.Hosts[h.Name]
	if known && old.NodeID != h.NodeID {
		l := b.live[h.Name]
		if !old.Down && l != nil && b.now().Sub(l.lastSeen) <= b.ttl() {
			b.mu.Unlock()
			return nil, connect.NewError(connect.CodeAlreadyExists,
				fmt.Errorf("register %s: the name is held by live node %s (last heartbeat %s ago); a host's node ID is kept in its agent's state directory",
					h.Name, old.NodeID, b.now().Sub(l.lastSeen).Round(time.Millisecond)))
		}
	}
	h.Cordoned = old.Cordoned
	same := known && hostRecordEqual(old, h)
	if l := b.live[h.Name]; l != nil {
		l.lastSeen = b.now()
	}
	b.mu.Unlock()
	if !same {
		if err := b.enqueue(ctx, &change{kind: changeRegister, host: h}); err != nil {
			return nil, unavailable(fmt.Errorf("register %s: %w", h.Name, err))
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.touch(h.Name)
	return connect.NewResponse(&brainv1.RegisterResponse{
		HeartbeatIntervalMs: b.interval().Milliseconds(),
		TargetVersion:       b.st.Targets[h.Name].Version,
		Epoch:               b.cfg.Epoch,
	}), nil
}

func hostRecordEqual(a, b store.Host) bool {
	return a.Name == b.Name && a.NodeID == b.NodeID && maps.Equal(a.Capacity, b.Capacity) && a.GPUs == b.GPUs &&
		a.GPUModel == b.GPUModel && maps.Equal(a.Labels, b.Labels) && a.CgroupMode == b.CgroupMode &&
		slices.Equal(a.Capabilities, b.Capabilities) && a.Cordoned == b.Cordoned && !a.Down && !b.Down
}

// touch records a sign of life; caller holds mu.
func (b *Brain) touch(name string) *hostLive {
	l := b.live[name]
	if l == nil {
		l = b.newLive()
		b.live[name] = l
	}
	l.lastSeen = b.now()
	return l
}

func (b *Brain) interval() time.Duration { return b.cfg.Liveness.Interval(len(b.st.Hosts)) }

// known checks the caller is the registered node of a known host; caller
// holds mu.
func (b *Brain) known(nodeID, name string) (store.Host, error) {
	if err := checkIdentity(nodeID, name); err != nil {
		return store.Host{}, err
	}
	h, ok := b.st.Hosts[name]
	if !ok {
		return h, connect.NewError(connect.CodeNotFound, fmt.Errorf("host %s: unknown: register first", name))
	}
	if h.NodeID != nodeID {
		return h, connect.NewError(connect.CodePermissionDenied,
			fmt.Errorf("host %s: registered by node %s, not %s", name, h.NodeID, nodeID))
	}
	return h, nil
}

func checkIdentity(nodeID, name string) error {
	if nodeID == "" || len(nodeID) > 128 {
		return invalid("node_id", "empty or longer than 128 bytes")
	}
	if err := trace.ValidName(name); err != nil {
		return invalid("name", err.Error())
	}
	return nil
}

// unavailable reports a change that did not commit: a refusal the loop
// gave (already a Connect error) keeps its code, anything else (etcd
// unreachable, the brain stopping) is Unavailable.
func unavailable(err error) error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	return connect.NewError(connect.CodeUnavailable, err)
}

func invalid(field, msg string) error {
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%s: %s", field, msg))
}

// Heartbeat records liveness and what the host lends, in memory only. A
// host marked down comes back up (a committed change, since its target
// was emptied).
func (b *Brain) Heartbeat(ctx context.Context, req *connect.Request[brainv1.HeartbeatRequest]) (*connect.Response[brainv1.HeartbeatResponse], error) {
	m := req.Msg
	level, done := b.shed.enter()
	defer done()
	if level >= shedLiveness {
		// Overloaded: answered unrecorded, without the brain's lock
		// (overload.go).
		b.shed.shedLiveness(b.now())
		return connect.NewResponse(&brainv1.HeartbeatResponse{HeartbeatIntervalMs: b.shed.interval().Milliseconds(), Epoch: b.cfg.Epoch}), nil
	}
	b.mu.Lock()
	h, err := b.known(m.GetNodeId(), m.GetName())
	if err != nil {
		b.mu.Unlock()
		return nil, err
	}
	cur := b.st.Targets[h.Name].Version
	if m.GetAppliedVersion() > cur {
		b.mu.Unlock()
		return nil, invalid("applied_version", fmt.Sprintf("%d is from the future: the host's target is at %d", m.GetAppliedVersion(), cur))
	}
	if m.GetLentCpuMilli() < 0 || m.GetLentMemoryBytes() < 0 {
		b.mu.Unlock()
		return nil, invalid("lent", "negative")
	}
	l := b.touch(h.Name)
	rolling := false
	if level >= shedDetail {
		b.shed.shedDetail()
	} else {
		rolling = b.heartbeatDetail(l, h.Name, m)
	}
	b.noteApplied(l, m.GetAppliedVersion())
	down := h.Down
	iv := b.interval()
	b.shed.setInterval(iv)
	resp := &brainv1.HeartbeatResponse{HeartbeatIntervalMs: iv.Milliseconds(), TargetVersion: cur, Epoch: b.cfg.Epoch}
	b.mu.Unlock()
	if rolling {
		b.poke()
	}
	if down {
		if err := b.enqueue(ctx, &change{kind: changeUp, name: h.Name}); err != nil {
			return nil, unavailable(fmt.Errorf("heartbeat %s: mark up: %w", h.Name, err))
		}
	}
	return connect.NewResponse(resp), nil
}

// heartbeatDetail records what a heartbeat says beyond liveness: what
// the host lends, its use, interference signals and containers; caller
// holds mu.
//
// It reports whether a rollout waits on a container state that changed.
func (b *Brain) heartbeatDetail(l *hostLive, name string, m *brainv1.HeartbeatRequest) (rolling bool) {
	l.lentCPUMilli, l.lentMemoryBytes, l.reportedLend = m.GetLentCpuMilli(), m.GetLentMemoryBytes(), true
	if l.usage == nil {
		l.usage = map[string]int64{}
	}
	var cpu, mem int64
	for _, u := range m.GetUsage() {
		cpu += u.GetCpuMilli()
		mem += u.GetMemoryBytes()
	}
	l.usage[place.DimCPU], l.usage[place.DimMemory] = cpu, mem
	l.runqP99Us, l.cpuPSI, l.memPSI = m.GetOnlineRunqLatencyP99Us(), m.GetCpuPressureSomeAvg10(), m.GetMemoryPressureSomeAvg10()
	l.waterLevel = m.GetCpuWaterLevel()
	l.kills += int64(len(m.GetKills()))
	b.noteSignals(l, name, m)
	l.running = 0
	states := make(map[string]string, len(m.GetContainers()))
	for _, c := range m.GetContainers() {
		if c.GetState() == "running" {
			l.running++
		}
		states[c.GetId()] = c.GetState()
	}
	// A rollout waits on these states: a change is worth a pass now.
	rolling = len(b.rolls) > 0 && (!l.heard || !maps.Equal(states, l.states) || l.statesVersion != m.GetAppliedVersion())
	l.heard, l.states, l.statesVersion = true, states, m.GetAppliedVersion()
	return rolling
}

// noteApplied records an applied version and its push lag; caller holds mu.
func (b *Brain) noteApplied(l *hostLive, v uint64) {
	if v <= l.applied {
		return
	}
	l.applied = v
	if t, ok := l.committed[v]; ok {
		b.m.pushLag.Observe(b.now().Sub(t).Seconds())
		delete(l.committed, v)
	}
}

// Ack records what the agent applied, with per-item results.
func (b *Brain) Ack(ctx context.Context, req *connect.Request[brainv1.AckRequest]) (*connect.Response[brainv1.AckResponse], error) {
	m := req.Msg
	// Acknowledgements are placement work: counted, never shed.
	_, done := b.shed.enter()
	defer done()
	b.mu.Lock()
	defer b.mu.Unlock()
	h, err := b.known(m.GetNodeId(), m.GetName())
	if err != nil {
		return nil, err
	}
	cur := b.st.Targets[h.Name].Version
	if m.GetAppliedVersion() > cur {
		return nil, invalid("applied_version", fmt.Sprintf("%d is from the future: the host's target is at %d", m.GetAppliedVersion(), cur))
	}
	for i, r := range m.GetResults() {
		switch r.GetResult() {
		case "applied", "failed", "unsupported":
		default:
			return nil, invalid(fmt.Sprintf("results[%d].result", i), fmt.Sprintf("%q: want applied, failed or unsupported", r.GetResult()))
		}
	}
	l := b.touch(h.Name)
	l.results = len(m.GetResults())
	b.noteApplied(l, m.GetAppliedVersion())
	return connect.NewResponse(&brainv1.AckResponse{}), nil
}

// Targets streams the host's target: a full document when the agent's
// version is not one the brain can build a delta from, then one update per
// committed change.
func (b *Brain) Targets(ctx context.Context, req *connect.Request[brainv1.TargetsRequest], stream *connect.ServerStream[brainv1.TargetsResponse]) error {
	m := req.Msg
	b.mu.Lock()
	h, err := b.known(m.GetNodeId(), m.GetName())
	if err != nil {
		b.mu.Unlock()
		return err
	}
	if cur := b.st.Targets[h.Name].Version; m.GetKnownVersion() > cur {
		b.mu.Unlock()
		return invalid("known_version", fmt.Sprintf("%d is from the future: the host's target is at %d", m.GetKnownVersion(), cur))
	}
	b.mu.Unlock()
	sent, first := m.GetKnownVersion(), true
	var l *hostLive
	for {
		// Fast path: the delta from the version this stream sent, built
		// when it was committed, sent without the lock.
		if l != nil {
			if sig := l.signal.Load(); sig != nil && sig.msg != nil && sig.msg.GetBaseVersion() == sent && !sig.msg.GetFull() {
				if err := stream.Send(sig.msg); err != nil {
					return fmt.Errorf("targets %s: send: %w", h.Name, err)
				}
				sent = sig.msg.GetVersion()
				if done, err := b.awaitChange(ctx, sig.changed, h.Name); done {
					return err
				}
				continue
			}
		}
		b.mu.Lock()
		l = b.live[h.Name]
		if l == nil {
			l = b.newLive()
			b.live[h.Name] = l
		}
		t := b.st.Targets[h.Name]
		var upd *brainv1.TargetsResponse
		if t.Version != sent || (first && sent == 0) {
			upd = b.update(l, t, sent)
		}
		if len(l.logReqs) > 0 {
			if upd == nil {
				// No change: the held version again, as an empty delta.
				upd = &brainv1.TargetsResponse{Version: sent, BaseVersion: sent, Overrides: overridesPB(t.Overrides), Epoch: b.cfg.Epoch}
			}
			upd.LogRequests, l.logReqs = l.logReqs, nil
		}
		wait := l.changed
		b.mu.Unlock()
		first = false
		if upd != nil {
			if err := stream.Send(upd); err != nil {
				return fmt.Errorf("targets %s: send: %w", h.Name, err)
			}
			sent = upd.GetVersion()
		}
		if done, err := b.awaitChange(ctx, wait, h.Name); done {
			return err
		}
	}
}

// awaitChange waits for a host's next target change; done when the stream
// ends instead: the agent went away (nil) or this brain stopped leading
// (Unavailable, so the agent goes to whoever leads next).
func (b *Brain) awaitChange(ctx context.Context, changed <-chan struct{}, host string) (done bool, err error) {
	select {
	case <-ctx.Done():
		return true, nil
	case <-b.stopped:
		return true, connect.NewError(connect.CodeUnavailable, fmt.Errorf("targets %s: this brain no longer leads", host))
	case <-changed:
		return false, nil
	}
}

// signal is a host's wake-up: changed closes at the next one; msg, when
// set, is the delta that led to the current version.
type signal struct {
	changed chan struct{}
	msg     *brainv1.TargetsResponse
}

// wake closes the host's changed channel and publishes the next one
// with msg; caller holds mu.
func (l *hostLive) wake(msg *brainv1.TargetsResponse) {
	close(l.changed)
	l.changed = make(chan struct{})
	l.signal.Store(&signal{changed: l.changed, msg: msg})
}

// update builds the update from version from to t: deltas when the
// history covers the gap, the full document otherwise; caller holds mu.
func (b *Brain) update(l *hostLive, t store.Target, from uint64) *brainv1.TargetsResponse {
	out := &brainv1.TargetsResponse{Version: t.Version, Overrides: overridesPB(t.Overrides), Epoch: b.cfg.Epoch}
	start := -1
	for i, d := range l.history {
		if d.From == from {
			start = i
			break
		}
	}
	if from == 0 || start < 0 || l.history[len(l.history)-1].To != t.Version {
		out.Full = true
		for _, c := range t.Containers {
			out.Upsert = append(out.Upsert, containerPB(c))
		}
		return out
	}
	out.BaseVersion = from
	up := map[string]store.Container{}
	rm := map[string]bool{}
	for _, d := range l.history[start:] {
		for _, c := range d.Upsert {
			up[c.ID] = c
			delete(rm, c.ID)
		}
		for _, id := range d.Remove {
			delete(up, id)
			rm[id] = true
		}
	}
	for _, id := range slices.Sorted(maps.Keys(up)) {
		out.Upsert = append(out.Upsert, containerPB(up[id]))
	}
	out.Remove = slices.Sorted(maps.Keys(rm))
	return out
}

func containerPB(c store.Container) *brainv1.Container {
	return &brainv1.Container{
		Id: c.ID, Job: c.Job, App: c.App, Image: c.Image, Command: c.Command, Env: c.Env,
		Resources: &brainv1.Resources{Amounts: c.Resources}, Class: c.Class, Priority: int32(c.Priority),
		Labels: c.Labels, Restart: c.Restart,
	}
}

func overridesPB(o *store.Overrides) *brainv1.QoSOverrides {
	if o == nil {
		return nil
	}
	return &brainv1.QoSOverrides{
		CpuWaterLevel: o.CPUWaterLevel, MemoryWaterLevel: o.MemoryWaterLevel,
		OfflineCpuCapMilli: o.OfflineCPUCapMilli, OfflineMemoryCapBytes: o.OfflineMemoryCapBytes,
	}
}
