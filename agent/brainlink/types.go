package brainlink

import "time"

// Registration is what the agent tells the brain about its host once.
type Registration struct {
	// Capacity per dimension: "cpu" in milli-CPUs, "memory" in bytes,
	// extended resources in their units.
	Capacity      map[string]int64
	GPUs          int
	GPUModel      string
	Labels        map[string]string
	FailureDomain string
	CgroupMode    string
	Capabilities  []string
}

// ClassUsage is one class's use.
type ClassUsage struct {
	Class       string
	CPUMilli    int64
	MemoryBytes int64
}

// Kill is one kill since the last heartbeat.
type Kill struct {
	Container string
	Reason    string
}

// ContainerState is one targeted container as the agent sees it.
type ContainerState struct {
	ID       string
	Job      string
	State    string // running, exited, failed, pending
	Restarts int
}

// Report is what each heartbeat carries; the agent loop fills it.
type Report struct {
	Usage []ClassUsage
	// What the host lends to offline work now.
	LentCPUMilli    int64
	LentMemoryBytes int64
	// Interference signals.
	OnlineRunqLatencyP99 time.Duration
	CPUPressureSome10    float64
	MemPressureSome10    float64
	// CPUWaterLevel is the water level the last decision applied (0..1).
	CPUWaterLevel float64
	Kills         []Kill
	Containers    []ContainerState
}

// Reporter gives the report for the next heartbeat. It is called from the
// link's goroutine and must not block for long.
type Reporter func() Report

// Container is one container the host should run: the fields a container
// converger needs (converge.Spec's image, command, env, resources, class,
// priority, labels, restart policy), in the brain's words.
type Container struct {
	ID        string            `json:"id"`
	Job       string            `json:"job"`
	App       string            `json:"app"`
	Image     string            `json:"image"`
	Command   []string          `json:"command,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Resources map[string]int64  `json:"resources,omitempty"`
	Class     string            `json:"class"`
	Priority  int               `json:"priority"`
	Labels    map[string]string `json:"labels,omitempty"`
	// Restart: always, on-failure or never.
	Restart string `json:"restart"`
}

// Overrides tighten the host's local QoS policy; nil fields leave it be.
// The decision core bounds them by the policy's hard limits.
type Overrides struct {
	CPUWaterLevel         *float64 `json:"cpu_water_level,omitempty"`
	MemoryWaterLevel      *float64 `json:"memory_water_level,omitempty"`
	OfflineCPUCapMilli    *int64   `json:"offline_cpu_cap_milli,omitempty"`
	OfflineMemoryCapBytes *int64   `json:"offline_memory_cap_bytes,omitempty"`
}

// Target is the host's target at a version.
type Target struct {
	Version uint64 `json:"version"`
	// Epoch is the highest leader epoch heard when the target was taken:
	// kept on disk, so a restarted agent still refuses a deposed leader.
	Epoch uint64 `json:"epoch,omitempty"`
	// Containers are sorted by ID.
	Containers []Container `json:"containers"`
	Overrides  *Overrides  `json:"overrides,omitempty"`
}

// ItemResult is the outcome of applying one target item.
type ItemResult struct {
	ID      string
	Result  string // applied, failed or unsupported
	Message string
}

// Status is the link's state for /state and metrics.
type Status struct {
	NodeID      string
	Registered  bool
	LastContact time.Time
	// Stale is true once nothing was heard from the brain for longer than
	// the staleness limit: overrides have fallen back to local policy.
	Stale          bool
	TargetVersion  uint64
	AppliedVersion uint64
	LastError      string
	// Brain is the brain URL in use; Epoch the highest leader epoch heard.
	Brain string
	Epoch uint64
	// RefusedStale counts target updates refused for a stale epoch.
	RefusedStale int
}
