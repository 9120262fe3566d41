// Package ebpf loads Sluice's BPF programs and reads what they measure.
//
// The run-queue sampler (Load, Sampler) attaches to the scheduler
// tracepoint sched_switch (tp_btf where the kernel allows tracing programs,
// raw_tp otherwise) and keeps, per cgroup, a log2 histogram of run-queue
// delay, the delay total and on-CPU time. It does not time anything itself:
// at each switch-out it charges the task's cgroup with what the kernel's own
// per-task counters (those of /proc/<pid>/schedstat) grew by since the
// task's previous switch-out, so its figures equal the kernel's
// schedstat and cpuacct / cpu.stat accounting. Cgroups are keyed by the id of either the cgroup v2 directory or the
// v1 cpu controller directory (both equal the directory's inode number, see
// CgroupID), fixed at load time from the host's cgroup layout (KeyModeFor
// and CgroupIDFor take the cgroupfs.Layout the agent detected at start).
//
// The same programs, with two more on sched_wakeup and sched_wakeup_new,
// post wake-ups to a ring buffer while the agent turns them on (SetWakes,
// SetWakeClass, NextWake): an online task woken, an online task preempting
// an offline one, an online wait above a threshold. They are hints for
// the agent's loop to look now, never measurements.
//
// When the kernel cannot run the programs (no BTF, no permission, too old)
// Probe and Load return an error wrapping ErrNotSupported, cilium/ebpf's
// sentinel, that names the missing feature: the agent then samples procfs
// only and keeps running. The agent runs Probe once at start and keeps its
// result in agent/capability's Capabilities, for /state and the enforcers.
//
// Summarize turns a histogram into the qos.LatencySummary the decision core
// reads; RunqLatencyCollector exports per-class histograms to Prometheus.
//
// The BPF C source is ../bpf/runq.c; runq_bpfel.go and runq_bpfel.o are
// generated from it by generate.sh (bpf2go) and committed so that building
// Sluice never needs clang.
package ebpf
