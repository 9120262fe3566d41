package store

import (
	"time"

	"github.com/sluicehq/sluice/brain/trace"
)

// Host is a registered host.
type Host struct {
	Name         string            `json:"name"`
	NodeID       string            `json:"node_id"`
	Capacity     map[string]int64  `json:"capacity"`
	GPUs         int               `json:"gpus,omitempty"`
	GPUModel     string            `json:"gpu_model,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	CgroupMode   string            `json:"cgroup_mode,omitempty"`
	Capabilities []string          `json:"capabilities,omitempty"`
	Cordoned     bool              `json:"cordoned,omitempty"`
	Down         bool              `json:"down,omitempty"`
}

// Job is a submitted job.
type Job = trace.Job

// Placement binds one replica of a job to a host.
type Placement struct {
	Job        string `json:"job"`
	Index      int    `json:"index"`
	Host       string `json:"host"`
	GPUIndices []int  `json:"gpu_indices,omitempty"`
	Borrowed   bool   `json:"borrowed,omitempty"`
}

// ID is the replica's fleet-wide ID.
func (p Placement) ID() string { return trace.ReplicaID(p.Job, p.Index) }

// Container is one container a host should run.
type Container struct {
	ID        string            `json:"id"`
	Job       string            `json:"job"`
	App       string            `json:"app"`
	Image     string            `json:"image"`
	Command   []string          `json:"command,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Resources map[string]int64  `json:"resources"`
	Class     string            `json:"class"`
	Priority  int               `json:"priority,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Restart   string            `json:"restart"`
}

// Overrides tighten a host's local QoS policy; nil fields leave it be.
type Overrides struct {
	CPUWaterLevel         *float64 `json:"cpu_water_level,omitempty"`
	MemoryWaterLevel      *float64 `json:"memory_water_level,omitempty"`
	OfflineCPUCapMilli    *int64   `json:"offline_cpu_cap_milli,omitempty"`
	OfflineMemoryCapBytes *int64   `json:"offline_memory_cap_bytes,omitempty"`
}

// Target is what the brain wants one host to run, at a version that only
// grows.
type Target struct {
	Host    string `json:"host"`
	Version uint64 `json:"version"`
	// Containers are sorted by ID.
	Containers []Container `json:"containers,omitempty"`
	Overrides  *Overrides  `json:"overrides,omitempty"`
}

// Revocation cuts a host's certificates off: those issued up to Cutoff
// are refused (brain/auth.Revocations).
type Revocation struct {
	Host   string    `json:"host"`
	Cutoff time.Time `json:"cutoff"`
	By     string    `json:"by,omitempty"`
}
