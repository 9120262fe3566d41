package qos

import "time"

// Plan is what the decision core wants the kernel to be. Each intent carries
// a Reason a person can read. Enforcers are level-triggered: applying the
// same plan twice changes nothing.
type Plan struct {
	// DryRun mirrors the policy switch: enforcers must not write when set.
	DryRun bool `json:"dryRun"`
	// OfflineParent is the cgroup the offline CPU and memory intents apply
	// to (the policy's offlineParent), relative to each hierarchy root.
	OfflineParent string       `json:"offlineParent"`
	OfflineCPU    CPUIntent    `json:"offlineCPU"`
	OfflineMemory MemoryIntent `json:"offlineMemory"`
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
}

// Intent kinds, as used in IntentResult.Intent and IntentSummary.Kind.
const (
	IntentOfflineCPU    = "offline-cpu"
	IntentOfflineMemory = "offline-memory"
	IntentKill          = "kill"
	IntentCpuset        = "cpuset"
)

// CpusetIntent pins one cgroup to CPUs.
type CpusetIntent struct {
	// CgroupPath is relative to each hierarchy root, e.g. "/online/web".
	CgroupPath string     `json:"cgroupPath"`
	Mode       CpusetMode `json:"mode"`
	// CPUs lists the logical CPU numbers, ascending.
	CPUs   []int  `json:"cpus,omitempty"`
	Reason string `json:"reason"`
}

// CPUIntent caps the offline parent cgroup's CPU.
type CPUIntent struct {
	// BudgetMilli is the offline budget in milli-CPUs (quota = budget x period / 1000).
	BudgetMilli int64  `json:"budgetMilli"`
	Reason      string `json:"reason"`
}

// MemoryIntent caps the offline parent cgroup's memory.
type MemoryIntent struct {
	// HighBytes is where reclaim starts (v1 soft limit, v2 memory.high).
	HighBytes uint64 `json:"highBytes"`
	// MaxBytes is the hard limit (v1 memory.limit_in_bytes, v2 memory.max).
	MaxBytes uint64 `json:"maxBytes"`
	Reason   string `json:"reason"`
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
	Reason   string `json:"reason"`
}

// IntentResult reports what an enforcer did with one intent.
type IntentResult struct {
	// Intent names the intent kind: IntentOfflineCPU, IntentOfflineMemory,
	// IntentKill or IntentCpuset.
	Intent string `json:"intent"`
	// Target is the offline parent for CPU and memory intents, the
	// KillIntent.ID for kills and the CpusetIntent.CgroupPath for cpusets.
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
type Targets struct {
	// CPUWaterLevelPercent overrides the policy's CPU water level when > 0.
	CPUWaterLevelPercent float64 `json:"cpuWaterLevelPercent"`
	// MemoryWaterLevelPercent overrides the policy's memory water level when > 0.
	MemoryWaterLevelPercent float64 `json:"memoryWaterLevelPercent"`
}
