package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/place"
	"github.com/sluicehq/sluice/brain/store"
	"github.com/sluicehq/sluice/brain/trace"
)

// ListHosts lists every registered host with its state, use and versions.
func (b *Brain) ListHosts(ctx context.Context, _ *connect.Request[brainv1.ListHostsRequest]) (*connect.Response[brainv1.ListHostsResponse], error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := &brainv1.ListHostsResponse{}
	for _, name := range slices.Sorted(maps.Keys(b.st.Hosts)) {
		out.Hosts = append(out.Hosts, b.hostPB(name))
	}
	return connect.NewResponse(out), nil
}

// hostPB describes a host; caller holds mu.
func (b *Brain) hostPB(name string) *brainv1.Host {
	h := b.st.Hosts[name]
	t := b.st.Targets[name]
	used := map[string]int64{}
	for _, c := range t.Containers {
		for k, v := range c.Resources {
			used[k] += v
		}
	}
	out := &brainv1.Host{
		Name: h.Name, NodeId: h.NodeID, State: hostState(h), Capacity: &brainv1.Resources{Amounts: h.Capacity},
		Used: &brainv1.Resources{Amounts: used}, TargetVersion: t.Version, Labels: h.Labels, Containers: int32(len(t.Containers)),
		Overrides: overridesPB(t.Overrides),
	}
	if l := b.live[name]; l != nil {
		out.LastHeartbeatUnixMs = l.lastSeen.UnixMilli()
		out.AppliedVersion = l.applied
		if l.reportedLend {
			out.Lent = &brainv1.Resources{Amounts: map[string]int64{place.DimCPU: l.lentCPUMilli, place.DimMemory: l.lentMemoryBytes}}
		}
		if l.usage != nil {
			out.ReportedUsage = &brainv1.Resources{Amounts: maps.Clone(l.usage)}
		}
		out.OnlineRunqLatencyP99Us, out.CpuPressureSomeAvg10, out.MemoryPressureSomeAvg10 = l.runqP99Us, l.cpuPSI, l.memPSI
		out.ContainersRunning, out.Kills = int32(l.running), l.kills
	}
	return out
}

// DrainHost cordons a host: its replicas are placed elsewhere and its
// target emptied; nothing new lands there until UncordonHost.
func (b *Brain) DrainHost(ctx context.Context, req *connect.Request[brainv1.DrainHostRequest]) (*connect.Response[brainv1.DrainHostResponse], error) {
	h, err := b.cordon(ctx, req.Msg.GetName(), changeCordon)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&brainv1.DrainHostResponse{Host: h}), nil
}

// UncordonHost lets placements land on a drained host again.
func (b *Brain) UncordonHost(ctx context.Context, req *connect.Request[brainv1.UncordonHostRequest]) (*connect.Response[brainv1.UncordonHostResponse], error) {
	h, err := b.cordon(ctx, req.Msg.GetName(), changeUncordon)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&brainv1.UncordonHostResponse{Host: h}), nil
}

func (b *Brain) cordon(ctx context.Context, name string, kind changeKind) (*brainv1.Host, error) {
	b.mu.Lock()
	_, ok := b.st.Hosts[name]
	b.mu.Unlock()
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("host %q: unknown", name))
	}
	if err := b.enqueue(ctx, &change{kind: kind, name: name}); err != nil {
		return nil, unavailable(fmt.Errorf("host %s: %w", name, err))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hostPB(name), nil
}

// SetHostOverrides replaces a host's QoS overrides; the change reaches
// its agent as a new target version.
func (b *Brain) SetHostOverrides(ctx context.Context, req *connect.Request[brainv1.SetHostOverridesRequest]) (*connect.Response[brainv1.SetHostOverridesResponse], error) {
	name := req.Msg.GetName()
	o, err := overridesOf(req.Msg.GetOverrides())
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	_, ok := b.st.Hosts[name]
	b.mu.Unlock()
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("host %q: unknown", name))
	}
	if err := b.enqueue(ctx, &change{kind: changeOverrides, name: name, overrides: o}); err != nil {
		return nil, unavailable(fmt.Errorf("host %s: overrides: %w", name, err))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return connect.NewResponse(&brainv1.SetHostOverridesResponse{Host: b.hostPB(name)}), nil
}

// overridesOf checks overrides from the API: water levels in (0, 1],
// caps not negative; none set is nil.
func overridesOf(o *brainv1.QoSOverrides) (*store.Overrides, error) {
	if o == nil || (o.CpuWaterLevel == nil && o.MemoryWaterLevel == nil && o.OfflineCpuCapMilli == nil && o.OfflineMemoryCapBytes == nil) {
		return nil, nil
	}
	for field, v := range map[string]*float64{"overrides.cpu_water_level": o.CpuWaterLevel, "overrides.memory_water_level": o.MemoryWaterLevel} {
		if v != nil && (!(*v > 0) || *v > 1) {
			return nil, invalid(field, fmt.Sprintf("%v is outside (0, 1]", *v))
		}
	}
	for field, v := range map[string]*int64{"overrides.offline_cpu_cap_milli": o.OfflineCpuCapMilli, "overrides.offline_memory_cap_bytes": o.OfflineMemoryCapBytes} {
		if v != nil && *v < 0 {
			return nil, invalid(field, "negative")
		}
	}
	return &store.Overrides{
		CPUWaterLevel: o.CpuWaterLevel, MemoryWaterLevel: o.MemoryWaterLevel,
		OfflineCPUCapMilli: o.OfflineCpuCapMilli, OfflineMemoryCapBytes: o.OfflineMemoryCapBytes,
	}, nil
}

// SubmitJobs decodes a job file strictly and commits its jobs (a job of an
// existing name is replaced: count and spec). It returns once the jobs and
// their first placements are committed.
func (b *Brain) SubmitJobs(ctx context.Context, req *connect.Request[brainv1.SubmitJobsRequest]) (*connect.Response[brainv1.SubmitJobsResponse], error) {
	name := req.Msg.GetFileName()
	if name == "" {
		name = "job file"
	}
	jobs, err := trace.DecodeJobs(bytes.NewReader(req.Msg.GetFile()), name)
	if err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("submit: %w", err))
	}
	c := &change{kind: changeSubmit, jobs: jobs}
	if err := b.enqueue(ctx, c); err != nil {
		return nil, unavailable(fmt.Errorf("submit: %w", err))
	}
	if c.reply == nil {
		// Committed by a pass with nothing to write (an unchanged job).
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, j := range jobs {
			if cur, ok := b.st.Jobs[j.Name]; ok {
				j = cur
			}
			c.reply = append(c.reply, b.jobPB(j, false))
		}
	}
	return connect.NewResponse(&brainv1.SubmitJobsResponse{Jobs: c.reply}), nil
}

// jobPB describes a job; caller holds mu.
func (b *Brain) jobPB(j trace.Job, withSpec bool) *brainv1.Job {
	out := &brainv1.Job{
		Name: j.Name, App: j.App.Name, Class: string(j.App.Class.Or()), Priority: int32(j.Priority),
		Count: int32(j.Count), Image: j.App.Image,
	}
	placed := map[int]string{}
	for _, p := range b.placementsOf(j.Name) {
		placed[p.Index] = p.Host
	}
	for i := range j.Count {
		out.Replicas = append(out.Replicas, &brainv1.Replica{Id: trace.ReplicaID(j.Name, i), Host: placed[i]})
	}
	if len(placed) < j.Count {
		out.PendingReason = b.pendingReason[j.Name]
	}
	out.Rollout = b.rolloutPB(j)
	if withSpec {
		out.Spec, _ = json.Marshal(j)
	}
	return out
}

// ListJobs lists every job with its replicas.
func (b *Brain) ListJobs(ctx context.Context, _ *connect.Request[brainv1.ListJobsRequest]) (*connect.Response[brainv1.ListJobsResponse], error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := &brainv1.ListJobsResponse{}
	for _, j := range b.jobsSorted() {
		out.Jobs = append(out.Jobs, b.jobPB(j, false))
	}
	return connect.NewResponse(out), nil
}

// GetJob describes one job, with its spec.
func (b *Brain) GetJob(ctx context.Context, req *connect.Request[brainv1.GetJobRequest]) (*connect.Response[brainv1.GetJobResponse], error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	j, err := b.job(req.Msg.GetName())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&brainv1.GetJobResponse{Job: b.jobPB(j, true)}), nil
}

// job finds a job; caller holds mu.
func (b *Brain) job(name string) (trace.Job, error) {
	if err := trace.ValidName(name); err != nil {
		return trace.Job{}, invalid("name", err.Error())
	}
	j, ok := b.st.Jobs[name]
	if !ok {
		return j, connect.NewError(connect.CodeNotFound, fmt.Errorf("job %q: unknown", name))
	}
	return j, nil
}

// DeleteJob removes a job; its replicas leave their hosts' targets in the
// same transaction.
func (b *Brain) DeleteJob(ctx context.Context, req *connect.Request[brainv1.DeleteJobRequest]) (*connect.Response[brainv1.DeleteJobResponse], error) {
	b.mu.Lock()
	_, err := b.job(req.Msg.GetName())
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := b.enqueue(ctx, &change{kind: changeDelete, name: req.Msg.GetName()}); err != nil {
		return nil, unavailable(fmt.Errorf("delete %s: %w", req.Msg.GetName(), err))
	}
	return connect.NewResponse(&brainv1.DeleteJobResponse{}), nil
}

// Explain shows, per host, why a job's next replica would be rejected or
// how it would score (for a fully placed job: its first replica, as if it
// were placed anew).
func (b *Brain) Explain(ctx context.Context, req *connect.Request[brainv1.ExplainRequest]) (*connect.Response[brainv1.ExplainResponse], error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	j, err := b.job(req.Msg.GetName())
	if err != nil {
		return nil, err
	}
	w := &work{hosts: b.st.Hosts, jobs: b.st.Jobs, placements: maps.Clone(b.st.Placements), live: b.liveSnapshot()}
	index := 0
	have := map[int]bool{}
	for _, p := range b.placementsOf(j.Name) {
		have[p.Index] = true
	}
	for index < j.Count && have[index] {
		index++
	}
	if index == j.Count {
		index = 0
		delete(w.placements, store.PlacementKey(j.Name, 0))
	}
	online, offline, err := b.clusters(w)
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("explain %s: %w", j.Name, err))
	}
	c := online
	if j.App.Class.Or() == trace.ClassOffline {
		c = offline
	}
	r := j.Request(index)
	r.Explain = true
	dec, err := c.Try(r)
	if err != nil {
		return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("explain %s: %w", j.Name, err))
	}
	out := &brainv1.ExplainResponse{Job: j.Name, Replica: r.ID, Placeable: dec.Placed}
	if dec.Placed {
		out.ChosenHost = dec.Placement.Host
	}
	for _, v := range dec.Hosts {
		out.Hosts = append(out.Hosts, &brainv1.HostVerdict{Host: v.Host, Feasible: v.Feasible, Reason: string(v.Reason), Detail: v.Detail, Score: v.Score.Total})
	}
	return connect.NewResponse(out), nil
}
