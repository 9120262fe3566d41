// Package rdt is Sluice's cache and memory-bandwidth isolation model:
// the hardware resctrl offers (Hardware), the policy's per-class floors
// and ceilings (Policy, checked against the hardware by Validate), the
// schemata text the kernel reads and writes (Schemata), and the dynamic
// controller (Decide).
//
// Decide follows Heracles rather than the static groups of open peers:
// online latency is the judge of harm, and the per-group monitoring
// counters (MBM bandwidth, llc_occupancy) say in which cache domains
// offline is to blame. When online's p99 is above its target, offline's
// ways and MB drop to their floors at once where offline holds at least
// SuspectShare of the domain's bandwidth or occupancy; when online has
// been calm for Ramp.Hold they grow back one Ramp step per Ramp.Every to
// their ceilings. Every group intent carries a structured Reason.
//
// Which latency judges harm: in the agent, qos.Decide passes the online
// class's run-queue p99 (eBPF), because that is the online latency the
// agent measures today. Run-queue latency judges CPU contention, not
// cache contention: an offline job that thrashes the cache while online
// never waits for a CPU leaves it calm, and offline keeps its ways. The
// seam for an application latency signal (request p99 from the service
// or a proxy) is qos.CacheSample.AppLatencyP99: when it is set, it
// judges instead, and nothing here changes.
//
// Layout: offline takes a contiguous run of ways at the low end of the
// mask (the high end when the low end holds the shareable_bits other
// agents use), online the rest up to its ceiling at the other end, so the
// two never overlap; system shares the default group unless the policy
// gives it a group. MB values are rounded up to bandwidth_gran as the
// kernel does, so what is written reads back unchanged.
//
// The package is pure like qos, which imports it: no I/O, no clock, no
// goroutines (purity_test.go enforces an allow-list of imports). The
// kernel side (mount, probe, enforcer, task placement, monitoring) is
// rdt/resctrl; rdt/resctrltest is a fake mount that behaves like the
// kernel.
//
// Why not github.com/intel/goresctrl (v0.14.0): its pkg/rdt is built
// around package-level state (the resctrl info, the active configuration
// and the logger are package variables set by rdt.Initialize and
// SetConfig), it reads /proc/mounts and the resctrl root itself, and its
// info parsers and bitmask helpers are unexported, so nothing of it can
// be called on a fake tree or with hardware passed in. Its configuration
// is static (classes with fixed partitions), the opposite of a controller
// that resizes offline every tick, and it pulls OpenTelemetry and
// Kubernetes apimachinery into the agent. Sluice follows its ideas (user
// configuration compiled into kernel-facing values, fake trees per
// hardware variant, exact-text checks) and writes the small model itself.
package rdt
