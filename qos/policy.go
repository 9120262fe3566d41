package qos

import (
	"time"

	"github.com/sluicehq/sluice/netqos"
	"github.com/sluicehq/sluice/rdt"
)

// Policy is a validated, resolved policy file. Percentages are fractions
// resolved to float64 in [0,1]; durations are time.Duration. The YAML form
// and its loader (ParsePolicy) live in policyfile.go.
type Policy struct {
	Version int
	// DryRun turns enforcement off: the agent computes and reports plans only.
	DryRun bool
	Rules  []ClassRule
	// OfflineParent is the cgroup (relative to each hierarchy root) that
	// holds offline work; the offline CPU and memory caps are written there.
	// Default "/sluice/offline"; on Kubernetes hosts typically
	// "/kubepods/besteffort".
	OfflineParent string
	// OnStop is what the agent leaves on the offline parent when it stops:
	// keep (default, the last caps stay clamped) or release (unlimited).
	OnStop   StopBehaviour
	Sampling SamplingPolicy
	CPU      CPUPolicy
	Memory   MemoryPolicy
	Kill     KillPolicy
	// RDT is cache and memory-bandwidth partitioning (resctrl).
	RDT rdt.Policy
	// Deprecated lists the fields the file set in an old spelling that
	// still works (llc), with their lines, for the loader to show.
	Deprecated []Problem
	Network    NetworkPolicy
}

// ClassRule classes host cgroups that are not containers by path glob
// (path.Match syntax, matched against the cgroup path relative to the
// hierarchy root, e.g. "/system.slice/*.service"). First match wins.
type ClassRule struct {
	Name     string
	Cgroup   string
	Class    Class
	Priority int
}

// SamplingPolicy sets the agent's ticks.
type SamplingPolicy struct {
	HostInterval      time.Duration // default 100ms
	ContainerInterval time.Duration // default 1s
	// PSIWindow is the PSI trigger window; kernels without CAP_SYS_RESOURCE
	// need a multiple of 2s. PSIThreshold is the stall time per window.
	PSIWindow    time.Duration
	PSIThreshold time.Duration
}

// CPUPolicy is the CPU water level and offline lending shape.
type CPUPolicy struct {
	// HighWater is the share of host CPU online+system may use before
	// offline is squeezed (0..1).
	HighWater float64
	// OfflineFloor is the share of host CPU offline always keeps (0..1).
	OfflineFloor float64
	// RampPerSecond is how fast the offline budget may grow, as a share of
	// host CPU per second (0..1). Shrinking is immediate.
	RampPerSecond float64
	// OnlineRunqLatencyP99 is the target for online run-queue latency (0 = off).
	OnlineRunqLatencyP99 time.Duration
	// DeadBand is the smallest budget change worth making, as a share of
	// host CPU (0..1): smaller differences are ignored so the quota does
	// not follow sampling noise.
	DeadBand float64
	// GrowHold is how long the computed budget must stay above the current
	// one before it grows (cuts are immediate). It is also how long online
	// run-queue latency must stay calm before a latency squeeze is lifted.
	GrowHold time.Duration
}

// MemoryPolicy is the memory water level.
type MemoryPolicy struct {
	// HighWater is the share of host memory online+system may use (0..1).
	HighWater float64
	// OfflineFloor is the share of host memory offline always keeps (0..1).
	OfflineFloor float64
	// RampPerSecond is how fast the offline limit may grow, as a share of
	// host memory per second (0..1). Shrinking is immediate.
	RampPerSecond float64
	// DeadBand is the smallest limit change worth making (share of host memory).
	DeadBand float64
	// GrowHold is how long the computed limit must stay above the current
	// one before it grows.
	GrowHold time.Duration
}

// KillPolicy controls priority kills of offline work.
type KillPolicy struct {
	// Grace is how long offline memory may stay above its limit before a
	// victim is chosen.
	Grace time.Duration
	// CoolDown is the minimum time between two kills.
	CoolDown time.Duration
}

// NetworkPolicy is the network section: the policy model of package
// netqos (devices, gold and silver guarantees, headroom, ramp, ingress,
// DSCP), which enforces it.
type NetworkPolicy = netqos.Policy

// StopBehaviour is what the agent does to the offline caps when it stops.
type StopBehaviour string

const (
	// StopKeep leaves the last caps in place; the zero value means keep too.
	StopKeep StopBehaviour = "keep"
	// StopRelease lifts the offline CPU and memory caps.
	StopRelease StopBehaviour = "release"
)
