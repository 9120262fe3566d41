package qos

import (
	"time"

	"github.com/sluicehq/sluice/rdt"
)

// Values the kernel receives for offline work that no policy changes.
const (
	// CPUPeriod is the CFS period written with every quota (the kernel's default).
	CPUPeriod = 100 * time.Millisecond
	// MinCPUQuotaMicros is the kernel's min_cfs_quota_period: a smaller
	// quota is EINVAL on v1 and v2, so tiny budgets are clamped up to it.
	MinCPUQuotaMicros = 1000
	// OfflineCPUWeight is CGROUP_WEIGHT_MIN (v1: MIN_SHARES, 2).
	OfflineCPUWeight = 1
	// OfflineOOMScoreAdj makes the kernel's OOM killer pick offline tasks
	// first, the same order Sluice's killer uses (backstop only).
	OfflineOOMScoreAdj = 1000
)

// State is what Decide remembers between two decisions: hysteresis timers,
// the current budgets (so they ramp instead of jumping), the run-queue
// latency squeeze and the kill book-keeping. The zero value is the state
// before the first decision. It is plain data (JSON-serialisable) so the
// agent can show it and a test can write one down.
type State struct {
	// Network is the network tiers' controller state (bronze's ceilings
	// and the counters they were computed from).
	Network NetworkState `json:"network,omitzero"`

	// Time is the observation time of the decision that produced this state.
	Time time.Time `json:"time"`
	CPU  LendState `json:"cpu"`
	// SystemCPU is system use (classed and unclassed) averaged over the
	// last second, which the CPU budget subtracts (see smoothSystem).
	SystemCPU Smoothed    `json:"systemCpu,omitzero"`
	Memory    LendState   `json:"memory"`
	Runq      RunqState   `json:"runq"`
	Kill      KillState   `json:"kill"`
	Cpuset    CpusetState `json:"cpuset,omitempty"`
	// Cache is the cache and bandwidth controller's memory (offline's
	// allocation, calm and growth times).
	Cache rdt.State `json:"cache,omitzero"`
}

// LendState is one lent resource: the offline CPU budget (milli-CPUs) or
// the offline memory limit (bytes).
type LendState struct {
	// Value is the budget or limit last planned; meaningful when Set.
	Value int64 `json:"value"`
	Set   bool  `json:"set"`
	// Capacity is the host capacity Value was computed against. When the
	// host's capacity changes (CPU hotplug, a different host's state) the
	// lending restarts from the offline work's current use.
	Capacity int64 `json:"capacity"`
	// GrowSince is when the computed value first rose above Value by more
	// than the dead band; zero while it has not. Growth waits for the hold.
	GrowSince time.Time `json:"growSince,omitzero"`
}

// Smoothed is an exponentially weighted average (see smoothSystem).
type Smoothed struct {
	// Milli is the average, in milli-CPUs; meaningful when Set.
	Milli float64 `json:"milli"`
	Set   bool    `json:"set"`
}

// RunqState is the online run-queue latency squeeze, applied on top of the
// water level like Heracles' slack controller.
type RunqState struct {
	// Cut is the share of the lendable CPU span (budget above the floor)
	// withheld from offline because online latency was above target. 0
	// means no squeeze; 1 means offline is held at its floor.
	Cut float64 `json:"cut"`
	// CalmSince is when online p99 latency last fell below the calm line
	// (80% of target) while squeezed; the squeeze lifts after the hold.
	CalmSince time.Time `json:"calmSince,omitzero"`
}

// KillState is the priority killer's memory.
type KillState struct {
	// OverSince is when offline memory first stayed above its limit; zero
	// while it is not above.
	OverSince time.Time `json:"overSince,omitzero"`
	// LastKillAt is when the last kill was planned; the cool-down runs from it.
	LastKillAt time.Time `json:"lastKillAt,omitzero"`
	// Pending is the last planned victim until the enforcer reports on it.
	Pending *KillRecord `json:"pending,omitempty"`
	// Killed are victims reported killed that still show up in samples
	// (dying, or the sampler has not caught up). They are never chosen
	// again and their memory is not counted as offline use.
	Killed []KillRecord `json:"killed,omitempty"`
	// Failed are victims whose kill failed; they are passed over for one
	// cool-down so the next victim can be tried.
	Failed []KillRecord `json:"failed,omitempty"`
}

// KillRecord names one victim and when its kill was planned or reported.
type KillRecord struct {
	ID         string    `json:"id"`
	CgroupPath string    `json:"cgroupPath,omitempty"`
	At         time.Time `json:"at"`
}

// Decide turns what the host looks like (obs), what the SRE asked for (pol)
// and what the brain asked for (tgt) into a Plan, given what the previous
// decision left behind (prev). It is pure and deterministic: the only clock
// is obs.Time, and the same inputs always give the same outputs.
//
// CPU and memory lending follow the same shape: limit = capacity x water
// level - online use - system use, never below the floor; cuts are applied
// at once, growth waits until the computed value has stayed above the
// current one (by more than a dead band) for a hold period and then ramps.
// See decideCPU, decideMemory and decideKills for the details.
func Decide(obs Observation, pol Policy, tgt Targets, prev State) (Plan, State) {
	next := State{Time: obs.Time}
	elapsed := stepElapsed(prev.Time, obs.Time, pol)
	plan := Plan{DryRun: pol.DryRun, OfflineParent: pol.OfflineParent}

	plan.OfflineCPU, next.CPU, next.Runq, next.SystemCPU = decideCPU(obs, pol, tgt, prev, elapsed)
	plan.OfflineMemory, next.Memory = decideMemory(obs, pol, tgt, prev.Memory, elapsed)
	plan.Kills, next.Kill = decideKills(obs, pol, plan.OfflineMemory, prev.Kill)
	plan.Network, next.Network = decideNetwork(obs, pol, prev.Network)
	plan.OfflineCPU.Weight, plan.OfflineCPU.Idle = OfflineCPUWeight, true
	plan.OfflineCPU.YieldReason = Reason{Rule: RuleOfflineYields}
	plan.OfflineOOMScore = OOMScoreIntent{Adj: OfflineOOMScoreAdj, Reason: Reason{Rule: RuleOfflineOOMFirst}}
	plan.Cpusets, next.Cpuset = decideCpusets(obs, pol, prev.Cpuset)
	plan.Cache, next.Cache = decideCache(obs, pol, prev.Cache)
	return plan, next
}

// stepElapsed is the time since the previous decision used by the ramps.
// It is zero on the first decision and when the clock went backwards, and
// capped at two container intervals (at least 1s) so that an agent that
// stalled for a minute does not grant a minute's worth of ramp at once.
func stepElapsed(prev, now time.Time, pol Policy) time.Duration {
	if prev.IsZero() || !now.After(prev) {
		return 0
	}
	limit := max(2*pol.Sampling.ContainerInterval, time.Second)
	return min(now.Sub(prev), limit)
}

// override bounds the brain's water level (percent, 0 = none) and offline
// cap (nil = none) by the policy: the level never above the policy's, the
// cap never below the floor. It returns the level in force and the
// override's figures (nil when the brain overrides nothing here).
func override(policyLevel, targetPercent float64, capValue *int64, floor int64, version uint64) (float64, *TargetOverride) {
	if targetPercent <= 0 && capValue == nil {
		return policyLevel, nil
	}
	o := &TargetOverride{Version: version}
	level := policyLevel
	if targetPercent > 0 {
		o.Level = targetPercent / 100
		if o.Level > policyLevel {
			o.LevelBounded = true
		} else {
			level = o.Level
		}
	}
	if capValue != nil {
		o.Cap, o.CapSet = *capValue, true
		o.CapBounded = *capValue < floor
	}
	return level, o
}
