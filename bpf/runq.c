//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * runq.c: per-cgroup run-queue latency and on-CPU time from the scheduler
 * tracepoints sched_wakeup, sched_wakeup_new and sched_switch.
 *
 * Each program exists twice: as tp_btf (BTF-typed, cheapest) and as raw_tp
 * (for kernels where tracing programs cannot load). Both bodies read task
 * fields with CO-RE probe reads so one implementation serves both.
 *
 * Run-queue delay follows the kernel's own sched_info accounting (the
 * run_delay field of /proc/<pid>/schedstat) so the two can be compared:
 *   - a task is "queued" from its wakeup (or from being switched out while
 *     still TASK_RUNNING, i.e. preempted or throttled) until it is switched in;
 *   - the delay is charged at switch-in to the cgroup the task is in then.
 * On-CPU time is switch-out minus the same CPU's last switch-in, charged to
 * the outgoing task's cgroup.
 *
 * Counters are per-CPU and only ever grow: the Go side sums the CPUs and
 * diffs consecutive reads instead of resetting, so no sample is lost
 * between a read and a reset and no atomic instruction is needed here.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char __license[] SEC("license") = "Dual BSD/GPL";

/* Log2 histogram of run-queue delay in nanoseconds: slot i counts delays d
 * with floor(log2(d)) == i (slot 0 also holds 0), the last slot everything
 * from 2^(HIST_SLOTS-1) ns (~2.1 s) up. Keep in step with HistSlots in Go. */
#define HIST_SLOTS 32

#define TASK_RUNNING 0

/* Key modes, chosen by the loader from the host's cgroup mode. */
#define KEY_CGROUP_V2 0     /* default hierarchy (cgroup2) id */
#define KEY_CGROUP_V1_CPU 1 /* v1 cpu controller hierarchy id */

/* Load-time constants (.rodata): the verifier prunes the branches not taken. */
volatile const __u32 key_mode = KEY_CGROUP_V2;
/* Non-zero: also sum run-queue delay per task for tasks in this cgroup
 * (tests compare it with /proc/<pid>/schedstat). */
volatile const __u64 track_task_cgroup = 0;

struct cgroup_stats {
	__u64 runq_hist[HIST_SLOTS];
	__u64 runq_delay_ns;
	__u64 oncpu_ns;
	/* Switched out while still runnable (preempted or throttled). */
	__u64 preemptions;
};

/* Per-cgroup counters. Per-CPU: the scheduler hot path never shares a
 * cache line between CPUs. Bounded: when full, new cgroups are counted in
 * drops[DROP_CGROUP] instead; the agent forgets removed cgroups. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct cgroup_stats);
} stats SEC(".maps");

/* When each runnable task was queued, by pid. Entries exist only while a
 * task waits (deleted at switch-in, or at switch-out when it blocks), so
 * the bound is on runnable tasks, not on all tasks. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} queued_at SEC(".maps");

/* When the task now on each CPU was switched in. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} oncpu_since SEC(".maps");

/* Per-task run-queue delay sum (only with track_task_cgroup). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} task_delay SEC(".maps");

#define DROP_CGROUP 0 /* cgroup_stats full */
#define DROP_QUEUED 1 /* queued_at full */
#define DROP_TASK 2   /* task_delay full */
#define DROP_SLOTS 3

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

static __always_inline void count_drop(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &slot);
	if (n)
		*n += 1;
}

static __always_inline __u32 log2_u32(__u32 v)
{
	__u32 r, shift;

	r = (v > 0xFFFF) << 4;
	v >>= r;
	shift = (v > 0xFF) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xF) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	r |= (v >> 1);
	return r;
}

static __always_inline __u32 hist_slot(__u64 v)
{
	__u32 hi = v >> 32;
	__u32 slot = hi ? log2_u32(hi) + 32 : log2_u32((__u32)v);

	return slot < HIST_SLOTS ? slot : HIST_SLOTS - 1;
}

static __always_inline __u64 task_cgroup_id(struct task_struct *t)
{
	struct css_set *cgroups = BPF_CORE_READ(t, cgroups);

	if (key_mode == KEY_CGROUP_V1_CPU) {
		struct cgroup_subsys_state *css = 0;
		int idx = bpf_core_enum_value(enum cgroup_subsys_id, cpu_cgrp_id);

		bpf_core_read(&css, sizeof(css), &cgroups->subsys[idx]);
		return BPF_CORE_READ(css, cgroup, kn, id);
	}
	return BPF_CORE_READ(cgroups, dfl_cgrp, kn, id);
}

static __always_inline unsigned int task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___pre514 *)t, state);
}

/* Not inlined: the zero value takes 280 bytes of the 512-byte stack and is
 * needed from both switch_out and switch_in. */
static __noinline struct cgroup_stats *stats_for(__u64 cgid)
{
	struct cgroup_stats zero = {};
	struct cgroup_stats *s = bpf_map_lookup_elem(&stats, &cgid);

	if (s)
		return s;
	/* NOEXIST: another CPU may have created it meanwhile; either way
	 * the second lookup finds this CPU's zeroed slot. */
	bpf_map_update_elem(&stats, &cgid, &zero, BPF_NOEXIST);
	s = bpf_map_lookup_elem(&stats, &cgid);
	if (!s)
		count_drop(DROP_CGROUP);
	return s;
}

static __always_inline void mark_queued(__u32 pid, __u64 now, __u64 flags)
{
	if (!pid)
		return; /* idle tasks are never queued */
	if (bpf_map_update_elem(&queued_at, &pid, &now, flags) == 0)
		return;
	/* -EEXIST under NOEXIST is expected (already queued); only a full
	 * map loses a sample. */
	if (flags != BPF_NOEXIST || !bpf_map_lookup_elem(&queued_at, &pid))
		count_drop(DROP_QUEUED);
}

static __always_inline int on_wakeup(struct task_struct *p)
{
	/* NOEXIST: a task that is already queued keeps its older timestamp,
	 * as sched_info_enqueue keeps last_queued. */
	mark_queued(BPF_CORE_READ(p, pid), bpf_ktime_get_ns(), BPF_NOEXIST);
	return 0;
}

static __always_inline void switch_out(struct task_struct *prev, __u64 now)
{
	__u32 pid = BPF_CORE_READ(prev, pid);
	__u32 zero = 0;
	__u64 *since;
	struct cgroup_stats *s;
	bool runnable;

	if (!pid)
		return;
	/* The state field, not the tracepoint's prev_state, decides: it is
	 * what sched_info_depart looks at, and it stays TASK_RUNNING for a
	 * task dequeued by CFS bandwidth throttling, whose wait until it runs
	 * again the kernel counts as run delay too. */
	runnable = task_state(prev) == TASK_RUNNING;
	if (runnable)
		mark_queued(pid, now, BPF_ANY);
	else
		bpf_map_delete_elem(&queued_at, &pid);

	since = bpf_map_lookup_elem(&oncpu_since, &zero);
	if (!since || !*since)
		return; /* first switch seen on this CPU since attach */
	s = stats_for(task_cgroup_id(prev));
	if (!s)
		return;
	s->oncpu_ns += now - *since;
	if (runnable)
		s->preemptions += 1;
}

static __always_inline void switch_in(struct task_struct *next, __u64 now)
{
	__u32 pid = BPF_CORE_READ(next, pid);
	__u32 zero = 0;
	__u64 *since, *queued, delay, cgid;
	struct cgroup_stats *s;

	since = bpf_map_lookup_elem(&oncpu_since, &zero);
	if (since)
		*since = pid ? now : 0; /* idle time is nobody's CPU time */
	if (!pid)
		return;

	queued = bpf_map_lookup_elem(&queued_at, &pid);
	if (!queued)
		return; /* queued before attach, or a sample dropped */
	delay = now > *queued ? now - *queued : 0;
	bpf_map_delete_elem(&queued_at, &pid);

	cgid = task_cgroup_id(next);
	s = stats_for(cgid);
	if (s) {
		s->runq_hist[hist_slot(delay)] += 1;
		s->runq_delay_ns += delay;
	}

	if (track_task_cgroup && cgid == track_task_cgroup) {
		__u64 *sum = bpf_map_lookup_elem(&task_delay, &pid);

		if (sum) {
			__sync_fetch_and_add(sum, delay);
		} else if (bpf_map_update_elem(&task_delay, &pid, &delay, BPF_NOEXIST)) {
			count_drop(DROP_TASK);
		}
	}
}

static __always_inline int on_switch(struct task_struct *prev, struct task_struct *next)
{
	__u64 now = bpf_ktime_get_ns();

	switch_out(prev, now);
	switch_in(next, now);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(tp_btf_sched_wakeup, struct task_struct *p)
{
	return on_wakeup(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(tp_btf_sched_wakeup_new, struct task_struct *p)
{
	return on_wakeup(p);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(tp_btf_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(prev, next);
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(raw_tp_sched_wakeup, struct task_struct *p)
{
	return on_wakeup(p);
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(raw_tp_sched_wakeup_new, struct task_struct *p)
{
	return on_wakeup(p);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(raw_tp_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(prev, next);
}
