// Package qos is Sluice's decision core and policy model.
//
// Decide turns an Observation (what the host looks like now), a Policy (what
// the SRE asked for), Targets (what the brain asked for) and the previous
// State into a Plan and the next State. The Plan is the whole decision:
// every value an enforcer will write (CFS quota and period, offline weight
// and idle flag, memory high and max, offline tasks' oom_score_adj,
// cpusets, kills) is a typed intent with a Reason, a structured value (the
// rule and the figures it used) worded only when shown (reason.go). It is pure: no clock reads (time arrives in the
// observation), no I/O, no goroutines, no logging. A test enforces that this
// package imports no I/O packages.
//
// What Decide computes:
//
//   - the offline CPU budget (milli-CPUs) and memory limit (high and max
//     bytes) for the offline parent cgroup: capacity x water level - online
//     use - system use, never below the floor, cut at once, grown only after
//     a hold period and then by a bounded ramp, with a dead band against
//     noise (lend.go);
//   - a further CPU squeeze while online run-queue p99 latency is above its
//     target (cpu.go);
//   - at most one priority kill of offline work per cool-down, once offline
//     memory has stayed above its limit for the grace period (kill.go);
//   - cpusets for Hippo's exclusive / reserved / shared modes (cpuset.go).
//
// ParsePolicy reads policy files strictly and reports every problem with
// its line and field path (policyfile.go); default-policy.yaml is both the
// built-in policy and the SRE reference for the format.
package qos
