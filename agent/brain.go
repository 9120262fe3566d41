package agent

import (
	"slices"

	"github.com/sluicehq/sluice/agent/brainlink"
	"github.com/sluicehq/sluice/agent/target"
	"github.com/sluicehq/sluice/qos"
)

// Brain is the host's link to the central brain as the loop sees it
// (agent/target.Runner). Safe for concurrent use.
type Brain interface {
	// Targets are the brain's QoS overrides in force now; qos.Decide
	// bounds them by the policy. Empty without a target or once stale.
	Targets() qos.Targets
	// Status is shown in /state.
	Status() target.Status
	// Containers are the targeted containers' states for heartbeats.
	Containers() []brainlink.ContainerState
}

// maxPendingKills bounds the kills kept for the next heartbeat when the
// brain is not reading them.
const maxPendingKills = 256

// noteKills keeps the kills the killer carried out for the next
// heartbeat, each with the reason the plan gave. Loop goroutine.
func (a *Agent) noteKills(results []qos.IntentResult, plan qos.Plan) {
	var ks []brainlink.Kill
	for _, r := range results {
		if r.Intent != qos.IntentKill || r.Status != qos.ResultApplied {
			continue
		}
		reason := "priority kill of offline work over its memory limit"
		if i := slices.IndexFunc(plan.Kills, func(k qos.KillIntent) bool { return k.ID == r.Target }); i >= 0 {
			reason = plan.Kills[i].Reason.String()
		}
		ks = append(ks, brainlink.Kill{Container: r.Target, Reason: reason})
	}
	if len(ks) == 0 {
		return
	}
	a.mu.Lock()
	a.kills = append(a.kills, ks...)
	if n := len(a.kills) - maxPendingKills; n > 0 {
		a.kills = slices.Delete(a.kills, 0, n)
	}
	a.mu.Unlock()
}

// BrainReport is the next heartbeat's report: per-class usage, what the
// host lends offline work now (the plan's budget and memory limit), online
// run-queue latency, PSI, the kills since the last report (taken: each is
// reported once) and the targeted containers. Safe for concurrent use.
func (a *Agent) BrainReport() brainlink.Report {
	a.mu.Lock()
	s := a.snapshot
	kills := a.kills
	a.kills = nil
	a.mu.Unlock()
	r := brainlink.Report{
		LentCPUMilli:      s.Plan.OfflineCPU.BudgetMilli,
		LentMemoryBytes:   int64(min(s.Plan.OfflineMemory.MaxBytes, 1<<62)),
		CPUPressureSome10: s.Host.PSI.CPUSomeAvg10,
		MemPressureSome10: s.Host.PSI.MemorySomeAvg10,
		Kills:             kills,
	}
	if l := s.Plan.OfflineCPU.Reason.Lend; l != nil {
		r.CPUWaterLevel = l.Level
	}
	for _, c := range qos.Classes {
		u, ok := s.Classes[c]
		if !ok {
			continue
		}
		r.Usage = append(r.Usage, brainlink.ClassUsage{Class: string(c), CPUMilli: u.CPUUsedMilli, MemoryBytes: int64(min(u.MemoryUsageBytes, 1<<62))})
		if c == qos.ClassOnline && u.RunqLatency != nil {
			r.OnlineRunqLatencyP99 = u.RunqLatency.P99
		}
	}
	if a.cfg.Brain != nil {
		r.Containers = a.cfg.Brain.Containers()
	}
	return r
}
