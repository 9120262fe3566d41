package server

import (
	"maps"
	"slices"
	"strings"
	"time"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/place"
	"github.com/sluicehq/sluice/brain/safety"
	"github.com/sluicehq/sluice/brain/store"
	"github.com/sluicehq/sluice/brain/trace"
)

// fleetState is what the brain keeps for the fleet view: the event stream
// and why each placement this brain made landed where it did (memory only,
// by placement key; written by the reconcile loop under mu).
type fleetState struct {
	events *Bus
	why    map[string]string
}

// fleetLive is what the brain keeps per host for the fleet view, from the
// heartbeats: usage per class (a heartbeat replaces the map, never writes
// into it) and when the kills of the last hour were reported.
type fleetLive struct {
	classUsage map[string]ClassUse
	killTimes  []time.Time
}

// initFleet checks the safety lines and starts the event stream.
func (b *Brain) initFleet() error {
	if b.cfg.Safety == (safety.Thresholds{}) {
		b.cfg.Safety = safety.DefaultThresholds()
	}
	if err := b.cfg.Safety.Validate(); err != nil {
		return err
	}
	b.events = NewBus(b.cfg.Logger.With("component", "events"), b.cfg.Now, b.cfg.Registry)
	b.why = map[string]string{}
	return nil
}

// noteSignals keeps what a heartbeat says for the fleet view: usage per
// class, and its kills counted into the last hour and published with
// their job (found in the host's target) and reason. Caller holds mu;
// publishing never blocks.
func (b *Brain) noteSignals(l *hostLive, host string, m *brainv1.HeartbeatRequest) {
	usage := make(map[string]ClassUse, len(m.GetUsage()))
	for _, u := range m.GetUsage() {
		usage[u.GetClass()] = ClassUse{CPUMilli: u.GetCpuMilli(), MemoryBytes: u.GetMemoryBytes()}
	}
	l.classUsage = usage
	now := b.now()
	cut := now.Add(-time.Hour)
	i := 0
	for i < len(l.killTimes) && !l.killTimes[i].After(cut) {
		i++
	}
	l.killTimes = l.killTimes[i:]
	var evs []Event
	for _, k := range m.GetKills() {
		l.killTimes = append(l.killTimes, now)
		e := Event{Time: now, Topic: TopicKill, Type: "killed", Host: host, Replica: k.GetContainer(), Reason: k.GetReason()}
		for _, c := range b.st.Targets[host].Containers {
			if c.ID == k.GetContainer() {
				e.Job = c.Job
				break
			}
		}
		evs = append(evs, e)
	}
	if n := len(l.killTimes) - maxKillTimes; n > 0 {
		l.killTimes = l.killTimes[n:]
	}
	b.events.Publish(evs...)
}

// maxKillTimes bounds the kill times kept per host: more than any safety
// line needs.
const maxKillTimes = 1024

// ClassUse is one class's usage on a host.
type ClassUse struct {
	CPUMilli    int64 `json:"cpu_milli"`
	MemoryBytes int64 `json:"memory_bytes"`
}

// FleetHost is one host as the fleet view shows it.
type FleetHost struct {
	Name   string            `json:"name"`
	State  string            `json:"state"` // up, down, draining
	Labels map[string]string `json:"labels,omitempty"`
	// Capacity is what the host registered; Requested what its target's
	// containers request (nil: none).
	Capacity  map[string]int64 `json:"capacity"`
	Requested map[string]int64 `json:"requested"`
	// Reported is false until the first heartbeat since this brain started;
	// the fields below it come from the last heartbeat.
	Reported        bool                `json:"reported"`
	LastHeartbeat   time.Time           `json:"last_heartbeat"`
	ClassUsage      map[string]ClassUse `json:"class_usage,omitempty"`
	LentCPUMilli    int64               `json:"lent_cpu_milli"`
	LentMemoryBytes int64               `json:"lent_memory_bytes"`
	// CPUWaterLevel is the brain's override of the host's water level;
	// nil: the host's local policy decides.
	CPUWaterLevel *float64 `json:"cpu_water_level,omitempty"`
	// AppliedWaterLevel is the water level the host's last decision
	// applied, from its heartbeat (0: not reported).
	AppliedWaterLevel float64        `json:"applied_cpu_water_level,omitempty"`
	OnlineRunqP99     time.Duration  `json:"online_runq_p99"`
	CPUPressurePct    float64        `json:"cpu_pressure_some_pct"`
	MemPressurePct    float64        `json:"memory_pressure_some_pct"`
	KillsLastHour     int            `json:"kills_last_hour"`
	Containers        int            `json:"containers"`
	Running           int            `json:"running"`
	TargetVersion     uint64         `json:"target_version"`
	AppliedVersion    uint64         `json:"applied_version"`
	Safety            safety.Verdict `json:"safety"`
}

// FleetReplica is one replica of a job and why it is where it is.
type FleetReplica struct {
	ID   string `json:"id"`
	Host string `json:"host,omitempty"`
	// Why is the placement's explanation when this brain made it.
	Why string `json:"why,omitempty"`
}

// FleetJob is one job as the fleet view shows it.
type FleetJob struct {
	Name          string         `json:"name"`
	Class         string         `json:"class"`
	Priority      int            `json:"priority"`
	Count         int            `json:"count"`
	Image         string         `json:"image,omitempty"`
	Replicas      []FleetReplica `json:"replicas"`
	PendingReason string         `json:"pending_reason,omitempty"`
}

// Fleet is a consistent copy of what the brain knows, for views.
type Fleet struct {
	At time.Time `json:"at"`
	// Hosts and Jobs are sorted by name.
	Hosts      []FleetHost       `json:"hosts"`
	Jobs       []FleetJob        `json:"jobs"`
	Thresholds safety.Thresholds `json:"thresholds"`
	TTL        time.Duration     `json:"ttl"`
}

// Fleet copies the brain's view of every host and job, with each host's
// colocation safety state. Only the copy holds the brain's lock (heartbeats
// wait on it); sorting and judging safety happen after.
func (b *Brain) Fleet() Fleet {
	b.mu.Lock()
	now := b.now()
	f := Fleet{At: now, Thresholds: b.cfg.Safety, TTL: b.ttl(), Hosts: make([]FleetHost, 0, len(b.st.Hosts))}
	sigs := make([]safety.Signals, 0, len(b.st.Hosts))
	for name, host := range b.st.Hosts {
		h, sig := b.fleetHost(name, host, now)
		f.Hosts = append(f.Hosts, h)
		sigs = append(sigs, sig)
	}
	for _, j := range b.jobsSorted() {
		f.Jobs = append(f.Jobs, b.fleetJob(j))
	}
	b.mu.Unlock()
	for i := range f.Hosts {
		h := &f.Hosts[i]
		// A heartbeat replaces the class usage map, never writes into it.
		h.ClassUsage = maps.Clone(h.ClassUsage)
		h.Safety = safety.Assess(sigs[i], f.Thresholds)
	}
	slices.SortFunc(f.Hosts, func(a, b FleetHost) int { return strings.Compare(a.Name, b.Name) })
	return f
}

// fleetHost describes a host and its safety signals; caller holds mu.
func (b *Brain) fleetHost(name string, h store.Host, now time.Time) (FleetHost, safety.Signals) {
	t := b.st.Targets[name]
	out := FleetHost{
		Name: name, State: hostState(h), Labels: h.Labels, Capacity: h.Capacity,
		Containers: len(t.Containers), TargetVersion: t.Version,
	}
	if len(t.Containers) > 0 {
		out.Requested = make(map[string]int64, 2)
	}
	for _, c := range t.Containers {
		for k, v := range c.Resources {
			out.Requested[k] += v
		}
	}
	if t.Overrides != nil && t.Overrides.CPUWaterLevel != nil {
		wl := *t.Overrides.CPUWaterLevel
		out.CPUWaterLevel = &wl
	}
	l := b.live[name]
	if l == nil || !l.reportedLend {
		return out, safety.Signals{}
	}
	cut := now.Add(-time.Hour)
	for _, k := range l.killTimes {
		if k.After(cut) {
			out.KillsLastHour++
		}
	}
	out.Reported, out.LastHeartbeat = true, l.lastSeen
	out.ClassUsage = l.classUsage
	out.LentCPUMilli, out.LentMemoryBytes = l.lentCPUMilli, l.lentMemoryBytes
	out.OnlineRunqP99 = time.Duration(l.runqP99Us * float64(time.Microsecond))
	out.CPUPressurePct, out.MemPressurePct = l.cpuPSI, l.memPSI
	out.AppliedWaterLevel = l.waterLevel
	out.Running, out.AppliedVersion = l.running, l.applied
	sig := safety.Signals{
		Reported: true, OnlineRunqP99: out.OnlineRunqP99, CPUPressureSomePct: l.cpuPSI, MemoryPressureSomePct: l.memPSI,
		KillsLastHour: out.KillsLastHour, OfflineCPUMilli: l.classUsage[string(trace.ClassOffline)].CPUMilli,
	}
	if c := h.Capacity[place.DimCPU]; c > 0 {
		sig.LentCPUShare = float64(l.lentCPUMilli) / float64(c)
	}
	return out, sig
}

// fleetJob describes a job; caller holds mu.
func (b *Brain) fleetJob(j trace.Job) FleetJob {
	out := FleetJob{Name: j.Name, Class: string(j.App.Class.Or()), Priority: j.Priority, Count: j.Count, Image: j.App.Image}
	placed := map[int]store.Placement{}
	for _, p := range b.placementsOf(j.Name) {
		placed[p.Index] = p
	}
	for i := range j.Count {
		r := FleetReplica{ID: trace.ReplicaID(j.Name, i)}
		if p, ok := placed[i]; ok {
			r.Host = p.Host
			r.Why = b.why[store.PlacementKey(j.Name, i)]
			if r.Why == "" {
				r.Why = "placed before this brain started; sluicectl explain shows how the job scores now"
			}
		}
		out.Replicas = append(out.Replicas, r)
	}
	if len(placed) < j.Count {
		out.PendingReason = b.pendingReason[j.Name]
	}
	return out
}

// Events is the brain's event stream.
func (b *Brain) Events() *Bus { return b.events }
