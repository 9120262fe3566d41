// Package cgrouptest provides stateful fake cgroup hierarchies — v2 (with
// the /proc files the enforcer touches) and v1 per controller (see V1) —
// for fast tests of exact file contents and write order.
//
// The v2 fake keeps its files in a temporary directory and models what the
// kernel accepts and rejects, following kernel/sched/core.c, kernel/cgroup
// and mm/memcontrol.c as of Linux 6.1: cpu.max quota at least 1ms and period
// 1ms..1s (EINVAL), cpu.weight 1..10000 (ERANGE) and EINVAL while cpu.idle
// is 1, cpu.idle only 0 or 1, memory limits rounded down to pages (memory.max
// below memory.high is allowed, as in the kernel), controller files present
// only when the parent's cgroup.subtree_control enables the controller, the
// no-internal-processes rule (EBUSY), cgroup.kill accepting only "1"
// (ERANGE), read-only files (EACCES) and vanished cgroups (ENOENT). Every
// write is logged, so tests check ordering and idempotency.
package cgrouptest
