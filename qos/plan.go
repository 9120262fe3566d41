package qos

import "time"

// Plan is what the decision core wants the kernel to be. Each intent carries
// a Reason a person can read. Enforcers are level-triggered: applying the
// same plan twice changes nothing.
type Plan struct {
	// DryRun mirrors the policy switch: enforcers must not write when set.
	DryRun        bool
	OfflineCPU    CPUIntent
	OfflineMemory MemoryIntent
	// Kills lists offline victims in the order they should die. At most one
	// kill per cool-down window is planned.
	Kills []KillIntent
}

// CPUIntent caps the offline parent cgroup's CPU.
type CPUIntent struct {
	// BudgetMilli is the offline budget in milli-CPUs (quota = budget x period / 1000).
	BudgetMilli int64
	Reason      string
}

// MemoryIntent caps the offline parent cgroup's memory.
type MemoryIntent struct {
	// HighBytes is where reclaim starts (v1 soft limit, v2 memory.high).
	HighBytes uint64
	// MaxBytes is the hard limit (v1 memory.limit_in_bytes, v2 memory.max).
	MaxBytes uint64
	Reason   string
}

// KillIntent names one offline victim.
type KillIntent struct {
	ID         string
	Namespace  string
	Name       string
	CgroupPath string
	Priority   int
	Reason     string
}

// IntentResult reports what an enforcer did with one intent.
type IntentResult struct {
	// Intent names the intent kind: "offline-cpu", "offline-memory", "kill".
	Intent string
	Target string
	Status ResultStatus
	Err    string
	At     time.Time
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
	CPUWaterLevelPercent float64
	// MemoryWaterLevelPercent overrides the policy's memory water level when > 0.
	MemoryWaterLevelPercent float64
}
