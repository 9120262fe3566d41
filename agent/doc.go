// Package agent is Sluice's host loop: sample -> decide -> enforce -> report.
//
// Only this package knows all three kinds of code. The samplers
// (agent/sample), discovery (agent/discovery), the decision core (qos) and the
// enforcers (qos/cgroup, agent/killer) are handed to it as small interfaces
// declared here, so tests can drive the loop with stateful fakes.
//
// Every enforcer implements the one Enforcer interface and is listed in
// Config.Enforcers (cmd/sluice-agent builds that list). Inline enforcers
// (the cgroup one: the CPU and memory caps) run in the loop; each other
// enforcer runs in its own worker with a one-slot mailbox holding the
// latest plan, so a slow one never delays the caps, and its results reach
// the next Observation.
//
// Two tickers drive sampling: a fast host tick (default 100 ms: every
// class's exact CPU counter every time — the root cgroup's for host busy
// time, the offline parent's, and the online and system workloads', one
// per workload or one per directory that holds only one class's workloads
// (planFastReads); /proc/meminfo and PSI averages about once a second as
// sluice-agent wires it) and a slower per-container tick (default 1 s). A
// PSI trigger wakes the loop at once.
// A tick whose plan equals the last enforced plan (qos.Plan.Equal) skips
// the enforcers; the kernel is re-read and corrected at least
// once per container interval.
// Every wake-up runs Decide on the freshest data, so a sharp rise of online
// CPU is answered in the same iteration that sees it.
package agent
