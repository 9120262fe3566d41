package qos

import (
	"slices"
	"time"

	"github.com/sluicehq/sluice/rdt"
)

// Plan is what the decision core wants the kernel to be: every value an
// enforcer writes is in it, each intent with a structured Reason (worded
// only when shown). Enforcers translate intents to kernel files and report
// results; they decide nothing. Enforcers are level-triggered: applying the
// same plan twice changes nothing.
//
// The plan is a struct of named intent groups, one enforcer per group (the
// cgroup enforcer takes the offline CPU, memory, OOM score and cpuset
// groups; the killer takes Kills). An intent whose Reason is zero is absent.
type Plan struct {
	// DryRun mirrors the policy switch: enforcers must not write when set.
	DryRun bool `json:"dryRun"`
	// OfflineParent is the cgroup the offline CPU and memory intents apply
	// to (the policy's offlineParent), relative to each hierarchy root.
	OfflineParent string       `json:"offlineParent"`
	OfflineCPU    CPUIntent    `json:"offlineCPU"`
	OfflineMemory MemoryIntent `json:"offlineMemory"`
	// OfflineOOMScore is the oom_score_adj of every task below the offline
	// parent.
	OfflineOOMScore OOMScoreIntent `json:"offlineOOMScore"`
	// Network is the network tiers: trees, bronze's ceilings, classified
	// cgroups (see NetworkIntent).
	Network NetworkIntent `json:"network,omitzero"`
	// Kills lists offline victims in the order they should die. At most one
	// kill per cool-down window is planned.
	Kills []KillIntent `json:"kills,omitempty"`
	// Cpusets pins workloads to CPUs (Hippo cpuset modes); empty leaves
	// every cpuset alone. It is empty until some online workload holds an
	// exclusive or reserved cpuset (see CpusetState.Active); then it lists
	// the offline parent first
	// and every classed workload after it by cgroup path (parents before
	// children). Unclassed host processes are out of its reach, so
	// "exclusive" means exclusive among workloads.
	Cpusets []CpusetIntent `json:"cpusets,omitempty"`
	// Cache is the resctrl groups (cache ways and memory bandwidth per
	// class) and the cgroups whose tasks belong in each; empty on a host
	// without resctrl or with the rdt section disabled. Its DryRun
	// mirrors the plan's.
	Cache rdt.Plan `json:"cache,omitzero"`
}

// Intent kinds, as used in IntentResult.Intent and IntentSummary.Kind.
const (
	IntentOfflineCPU    = "offline-cpu"
	IntentOfflineMemory = "offline-memory"
	IntentKill          = "kill"
	IntentCpuset        = "cpuset"
	// IntentOfflineOOMScore reports the oom_score_adj of offline tasks.
	IntentOfflineOOMScore = "offline-oom-score"
	// IntentCacheGroup (cache.go) reports one resctrl group.
)

// Equal reports whether two plans ask for the same values: the same
// intents present with the same values. Reasons are not compared beyond
// presence: their figures may differ while what is written does not. A new
// intent group adds its comparison here (the agent skips enforcing a plan
// equal to the last one).
func (p Plan) Equal(q Plan) bool {
	return p.DryRun == q.DryRun && p.OfflineParent == q.OfflineParent && p.Network.equal(q.Network) &&
		p.OfflineCPU.equal(q.OfflineCPU) && p.OfflineMemory.equal(q.OfflineMemory) &&
		p.OfflineOOMScore.equal(q.OfflineOOMScore) &&
		slices.EqualFunc(p.Kills, q.Kills, KillIntent.equal) &&
		slices.EqualFunc(p.Cpusets, q.Cpusets, CpusetIntent.equal) &&
		cacheEqual(p.Cache, q.Cache)
}

func (c CPUIntent) equal(d CPUIntent) bool {
	return c.Reason.IsZero() == d.Reason.IsZero() && c.YieldReason.IsZero() == d.YieldReason.IsZero() &&
		c.BudgetMilli == d.BudgetMilli && c.QuotaMicros == d.QuotaMicros && c.PeriodMicros == d.PeriodMicros &&
		c.Weight == d.Weight && c.Idle == d.Idle
}

func (m MemoryIntent) equal(n MemoryIntent) bool {
	return m.Reason.IsZero() == n.Reason.IsZero() && m.HighBytes == n.HighBytes && m.MaxBytes == n.MaxBytes
}

func (o OOMScoreIntent) equal(p OOMScoreIntent) bool {
	return o.Reason.IsZero() == p.Reason.IsZero() && o.Adj == p.Adj
}

func (k KillIntent) equal(l KillIntent) bool {
	return k.ID == l.ID && k.Namespace == l.Namespace && k.Name == l.Name && k.CgroupPath == l.CgroupPath &&
		k.Class == l.Class && k.Priority == l.Priority
}

func (c CpusetIntent) equal(d CpusetIntent) bool {
	return c.CgroupPath == d.CgroupPath && c.Mode == d.Mode && slices.Equal(c.CPUs, d.CPUs) &&
		c.Reason.IsZero() == d.Reason.IsZero()
}

// CpusetIntent pins one cgroup to CPUs.
type CpusetIntent struct {
	// CgroupPath is relative to each hierarchy root, e.g. "/online/web".
	CgroupPath string     `json:"cgroupPath"`
	Mode       CpusetMode `json:"mode"`
	// CPUs lists the logical CPU numbers, ascending.
	CPUs   []int  `json:"cpus,omitempty"`
	Reason Reason `json:"reason"`
}

// CPUIntent is the offline parent cgroup's CPU: its CFS bandwidth cap
// (v1 cpu.cfs_quota_us / cpu.cfs_period_us, v2 cpu.max) and how it yields
// to other work (v1 cpu.shares, v2 cpu.weight, and cpu.idle).
type CPUIntent struct {
	// BudgetMilli is the offline budget in milli-CPUs.
	BudgetMilli int64 `json:"budgetMilli"`
	// QuotaMicros and PeriodMicros are what the kernel receives:
	// quota = budget x period / 1000, never below the kernel's minimum.
	QuotaMicros  int64  `json:"quotaMicros"`
	PeriodMicros int64  `json:"periodMicros"`
	Reason       Reason `json:"reason"`
	// Weight is on the cgroup v2 scale (cpu.weight, 1-10000); v1
	// enforcers convert it to cpu.shares.
	Weight uint64 `json:"weight"`
	// Idle is the cpu.idle flag where the kernel has one (5.15+).
	Idle bool `json:"idle"`
	// YieldReason explains Weight and Idle.
	YieldReason Reason `json:"yieldReason"`
}

// OOMScoreIntent holds the oom_score_adj of the offline parent's tasks.
type OOMScoreIntent struct {
	// Adj is the oom_score_adj (-1000..1000).
	Adj    int    `json:"adj"`
	Reason Reason `json:"reason"`
}

// MemoryIntent caps the offline parent cgroup's memory.
type MemoryIntent struct {
	// HighBytes is where reclaim starts (v1 soft limit, v2 memory.high).
	HighBytes uint64 `json:"highBytes"`
	// MaxBytes is the hard limit (v1 memory.limit_in_bytes, v2 memory.max).
	MaxBytes uint64 `json:"maxBytes"`
	Reason   Reason `json:"reason"`
}

// KillIntent names one offline victim.
type KillIntent struct {
	ID         string `json:"id"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	CgroupPath string `json:"cgroupPath"`
	// Class is the victim's class; the killer refuses anything but offline
	// (defence in depth: the decision core never plans other classes).
	Class    Class  `json:"class"`
	Priority int    `json:"priority"`
	Reason   Reason `json:"reason"`
}

// IntentResult reports what an enforcer did with one intent.
type IntentResult struct {
	// Intent names the intent kind: IntentOfflineCPU, IntentOfflineMemory,
	// IntentOfflineOOMScore, IntentKill, IntentCpuset or IntentCacheGroup
	// (later enforcers add their own kinds).
	Intent string `json:"intent"`
	// Target is the offline parent for CPU, memory and OOM score intents,
	// the KillIntent.ID for kills, the CpusetIntent.CgroupPath for
	// cpusets and the resctrl group's name for cache groups.
	Target string       `json:"target"`
	Status ResultStatus `json:"status"`
	Err    string       `json:"error,omitempty"`
	At     time.Time    `json:"at,omitzero"`
}

// ResultStatus is the outcome of enforcing one intent.
type ResultStatus string

const (
	ResultApplied     ResultStatus = "applied"
	ResultUnchanged   ResultStatus = "unchanged"
	ResultFailed      ResultStatus = "failed"
	ResultUnsupported ResultStatus = "unsupported"
	ResultDryRun      ResultStatus = "dry-run"
)

// Targets is what the brain wants this host to be. Empty until the brain
// pushes targets; the local policy alone decides then.
//
// Targets tighten the policy, never loosen it: a water level above the
// policy's is held at the policy's, and an offline cap below the policy's
// floor is held at the floor (the floor is what the SRE promised offline
// work). Every override in force is named in the lend reason
// (LendFigures.Target), bounded or not.
type Targets struct {
	// CPUWaterLevelPercent overrides the policy's CPU water level when > 0.
	CPUWaterLevelPercent float64 `json:"cpuWaterLevelPercent"`
	// MemoryWaterLevelPercent overrides the policy's memory water level when > 0.
	MemoryWaterLevelPercent float64 `json:"memoryWaterLevelPercent"`
	// OfflineCPUCapMilli, when set, caps the offline CPU budget.
	OfflineCPUCapMilli *int64 `json:"offlineCPUCapMilli,omitempty"`
	// OfflineMemoryCapBytes, when set, caps the offline memory limit.
	OfflineMemoryCapBytes *int64 `json:"offlineMemoryCapBytes,omitempty"`
	// Version is the brain's target version the overrides came from, for
	// the reasons; 0 when unknown.
	Version uint64 `json:"version,omitempty"`
}

// IsZero reports targets that override nothing.
func (t Targets) IsZero() bool {
	return t.CPUWaterLevelPercent <= 0 && t.MemoryWaterLevelPercent <= 0 &&
		t.OfflineCPUCapMilli == nil && t.OfflineMemoryCapBytes == nil
}
