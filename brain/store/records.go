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
	// Spec is the job as it was when the replica was placed, kept once the
	// job's spec has changed and until a rolling update replaces the
	// replica; nil: the job's current spec.
	Spec *Job `json:"spec,omitempty"`
	// Version is the version of its host's target that first carried the
	// replica as it is: the host's agent runs it once it has applied that
	// version and reports it running.
	Version uint64 `json:"version,omitempty"`
}

// ID is the replica's fleet-wide ID.
func (p Placement) ID() string { return trace.ReplicaID(p.Job, p.Index) }

// Rollout is a job's rolling update where it needs to outlive the brain's
// memory: paused, with the reason, until the job's spec changes again.
type Rollout struct {
	Job    string `json:"job"`
	Paused bool   `json:"paused,omitempty"`
	Reason string `json:"reason,omitempty"`
}

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
