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

/* When each runnable task was queued (0: not queued). tp_btf programs keep
 * it in task storage: no hashing, no bucket lock, freed with the task.
 * raw_tp programs cannot (their task pointers are untyped), so they use a
 * hash by pid whose entries exist only while a task waits (deleted at
 * switch-in, or at switch-out when it blocks): the bound is on runnable
 * tasks, not on all tasks. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} task_queued_at SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} queued_at SEC(".maps");

/* The task now on each CPU: when it was switched in and its cgroup, read
 * once at switch-in so switch-out need not walk the task's cgroup
 * pointers again. A task moved to another cgroup while running has the
 * rest of that slice charged to the old one. */
struct oncpu {
	__u64 since_ns; /* 0: idle, or nothing seen since attach */
	__u64 cgroup_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct oncpu);
} oncpu SEC(".maps");

/* Per-task run-queue delay sum and count (only with track_task_cgroup). */
struct task_wait_sum {
	__u64 delay_ns;
	__u64 waits;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct task_wait_sum);
} task_delay SEC(".maps");

#define DROP_CGROUP 0 /* cgroup_stats full */
#define DROP_QUEUED 1 /* queued_at full, or task storage not allocated */
#define DROP_TASK 2   /* task_delay full */
/* A task switched out while still marked queued: the program never saw
 * its last switch-in, so that wait (and the start of that run) is lost.
 * Seen on 6.18 under CFS bandwidth throttling, a few per thousand
 * switch-ins, with no recursion miss reported; cause unknown. */
#define DROP_MISSED_SWITCH_IN 3
#define DROP_SLOTS 4

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

/* The last slot holds everything from 2^31 ns up: a delay that needs more
 * than 32 bits goes there without a log2, and log2_u32 never exceeds 31. */
_Static_assert(HIST_SLOTS == 32, "hist_slot assumes 32 slots");

static __always_inline __u32 hist_slot(__u64 v)
{
	__u32 slot;

	if (v >> 32)
		return HIST_SLOTS - 1;
	slot = log2_u32((__u32)v);
	/* A no-op on 0..31, for the verifier: a comparison bounds only the
	 * register compared, and clang compares a zero-extended copy, which
	 * Linux 6.1 does not link back to the index ("R2 unbounded memory
	 * access"). A mask bounds the value itself, in whatever register it
	 * travels; barrier_var keeps clang from dropping it as redundant. */
	barrier_var(slot);
	return slot & (HIST_SLOTS - 1);
}

/*
 * Task field readers. `direct` is a compile-time constant after inlining:
 * tp_btf programs get BTF-typed task pointers and read fields with plain
 * loads (the verifier turns them into fault-safe loads), raw_tp programs
 * get untyped u64s and must use bpf_probe_read_kernel via BPF_CORE_READ,
 * one helper call per pointer hop. Both are CO-RE relocated.
 */
static __always_inline __u32 task_pid(struct task_struct *t, bool direct)
{
	return direct ? t->pid : BPF_CORE_READ(t, pid);
}

static __always_inline __u64 task_cgroup_id(struct task_struct *t, bool direct)
{
	if (key_mode == KEY_CGROUP_V1_CPU) {
		int idx = bpf_core_enum_value(enum cgroup_subsys_id, cpu_cgrp_id);
		struct cgroup_subsys_state *css = 0;
		struct css_set *cgroups;

		if (direct)
			return t->cgroups->subsys[idx]->cgroup->kn->id;
		cgroups = BPF_CORE_READ(t, cgroups);
		bpf_core_read(&css, sizeof(css), &cgroups->subsys[idx]);
		return BPF_CORE_READ(css, cgroup, kn, id);
	}
	if (direct)
		return t->cgroups->dfl_cgrp->kn->id;
	return BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
}

static __always_inline unsigned int task_state(struct task_struct *t, bool direct)
{
	if (bpf_core_field_exists(t->__state))
		return direct ? t->__state : BPF_CORE_READ(t, __state);
	if (direct)
		return ((struct task_struct___pre514 *)t)->state;
	return BPF_CORE_READ((struct task_struct___pre514 *)t, state);
}

/* Not inlined: the zero value takes 280 bytes of the 512-byte stack, and
 * is only built on the first event of a cgroup. */
static __noinline struct cgroup_stats *new_stats(__u64 cgid)
{
	struct cgroup_stats zero = {};
	struct cgroup_stats *s;

	/* NOEXIST: another CPU may have created it meanwhile; either way
	 * the second lookup finds this CPU's zeroed slot. */
	bpf_map_update_elem(&stats, &cgid, &zero, BPF_NOEXIST);
	s = bpf_map_lookup_elem(&stats, &cgid);
	if (!s)
		count_drop(DROP_CGROUP);
	return s;
}

static __always_inline struct cgroup_stats *stats_for(__u64 cgid)
{
	struct cgroup_stats *s = bpf_map_lookup_elem(&stats, &cgid);

	return s ? s : new_stats(cgid);
}

/* Marks t queued at now. keep_older: leave an earlier mark in place, as
 * sched_info_enqueue keeps last_queued. */
static __always_inline void mark_queued(struct task_struct *t, __u32 pid, __u64 now, bool keep_older, bool direct)
{
	if (!pid)
		return; /* idle tasks are never queued */
	if (direct) {
		__u64 *ts = bpf_task_storage_get(&task_queued_at, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);

		if (!ts) {
			count_drop(DROP_QUEUED);
			return;
		}
		if (!keep_older && *ts)
			count_drop(DROP_MISSED_SWITCH_IN);
		if (!keep_older || !*ts)
			*ts = now;
		return;
	}
	/* Overwrite in place rather than with BPF_ANY, which swaps in a new
	 * element from the free list. */
	__u64 *ts = bpf_map_lookup_elem(&queued_at, &pid);

	if (ts) {
		if (!keep_older) {
			count_drop(DROP_MISSED_SWITCH_IN);
			*ts = now;
		}
		return;
	}
	if (bpf_map_update_elem(&queued_at, &pid, &now, BPF_NOEXIST) == 0)
		return;
	/* -EEXIST: another CPU marked it meanwhile; otherwise the map is full. */
	if (!bpf_map_lookup_elem(&queued_at, &pid))
		count_drop(DROP_QUEUED);
}

/* Forgets that t was queued (it blocked). */
static __always_inline void unmark_queued(struct task_struct *t, __u32 pid, bool direct)
{
	if (direct) {
		__u64 *ts = bpf_task_storage_get(&task_queued_at, t, 0, 0);

		if (ts)
			*ts = 0;
		return;
	}
	bpf_map_delete_elem(&queued_at, &pid);
}

/* Returns when t was queued and clears the mark, or 0 if it was not. */
static __always_inline __u64 take_queued(struct task_struct *t, __u32 pid, bool direct)
{
	__u64 *ts, at;

	if (direct) {
		ts = bpf_task_storage_get(&task_queued_at, t, 0, 0);
		if (!ts)
			return 0;
		at = *ts;
		*ts = 0;
		return at;
	}
	ts = bpf_map_lookup_elem(&queued_at, &pid);
	if (!ts)
		return 0;
	at = *ts;
	bpf_map_delete_elem(&queued_at, &pid);
	return at;
}

static __always_inline bool task_on_cpu(struct task_struct *t, bool direct)
{
	if (!bpf_core_field_exists(t->on_cpu))
		return false; /* uniprocessor kernel */
	return direct ? t->on_cpu : BPF_CORE_READ(t, on_cpu);
}

static __always_inline int on_wakeup(struct task_struct *p, bool direct)
{
	/* A task woken before it got to switch out is still running: it is
	 * not queued (sched_info does not enqueue it either). Sleeping tasks
	 * are off the CPU by the time the tracepoint fires. */
	if (task_on_cpu(p, direct))
		return 0;
	mark_queued(p, task_pid(p, direct), bpf_ktime_get_ns(), true, direct);
	return 0;
}

/* Returns the counters it charged (of cur->cgroup_id), or NULL. */
static __always_inline struct cgroup_stats *switch_out(struct task_struct *prev, struct oncpu *cur, __u64 now, bool direct)
{
	__u32 pid = task_pid(prev, direct);
	struct cgroup_stats *s;
	bool runnable;

	if (!pid)
		return 0;
	/* The state field, not the tracepoint's prev_state, decides: it is
	 * what sched_info_depart looks at, and it stays TASK_RUNNING for a
	 * task dequeued by CFS bandwidth throttling, whose wait until it runs
	 * again the kernel counts as run delay too. */
	runnable = task_state(prev, direct) == TASK_RUNNING;
	if (runnable)
		mark_queued(prev, pid, now, false, direct);
	else
		/* Usually a no-op; removes a mark left by a missed switch-in
		 * (DROP_MISSED_SWITCH_IN) so it cannot inflate a later wait. */
		unmark_queued(prev, pid, direct);

	if (!cur->since_ns)
		return 0; /* first switch seen on this CPU since attach */
	s = stats_for(cur->cgroup_id);
	if (!s)
		return 0;
	s->oncpu_ns += now - cur->since_ns;
	if (runnable)
		s->preemptions += 1;
	return s;
}

/* prev_stats: what switch_out charged, reused when next is in the same
 * cgroup (one hash lookup fewer on most switches). */
static __always_inline void switch_in(struct task_struct *next, struct oncpu *cur, __u64 now,
				      struct cgroup_stats *prev_stats, bool direct)
{
	__u32 pid = task_pid(next, direct);
	__u64 queued, delay, cgid, prev_cgid = cur->cgroup_id;
	struct cgroup_stats *s;

	if (!pid) {
		cur->since_ns = 0; /* idle time is nobody's CPU time */
		return;
	}
	cgid = task_cgroup_id(next, direct);
	cur->since_ns = now;
	cur->cgroup_id = cgid;

	queued = take_queued(next, pid, direct);
	if (!queued)
		return; /* queued before attach, or a sample dropped */
	delay = now > queued ? now - queued : 0;

	s = prev_stats && prev_cgid == cgid ? prev_stats : stats_for(cgid);
	if (s) {
		s->runq_hist[hist_slot(delay)] += 1;
		s->runq_delay_ns += delay;
	}

	if (track_task_cgroup && cgid == track_task_cgroup) {
		struct task_wait_sum *sum = bpf_map_lookup_elem(&task_delay, &pid);
		struct task_wait_sum first = {.delay_ns = delay, .waits = 1};

		if (sum) {
			/* Only this task's switch-in writes it: no other CPU can. */
			sum->delay_ns += delay;
			sum->waits += 1;
		} else if (bpf_map_update_elem(&task_delay, &pid, &first, BPF_NOEXIST)) {
			count_drop(DROP_TASK);
		}
	}
}

static __always_inline int on_switch(struct task_struct *prev, struct task_struct *next, bool direct)
{
	__u64 now = bpf_ktime_get_ns();
	__u32 zero = 0;
	struct oncpu *cur = bpf_map_lookup_elem(&oncpu, &zero);

	if (!cur)
		return 0; /* cannot happen: the array has one slot per CPU */
	struct cgroup_stats *prev_stats = switch_out(prev, cur, now, direct);

	switch_in(next, cur, now, prev_stats, direct);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(tp_btf_sched_wakeup, struct task_struct *p)
{
	return on_wakeup(p, true);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(tp_btf_sched_wakeup_new, struct task_struct *p)
{
	return on_wakeup(p, true);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(tp_btf_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(prev, next, true);
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(raw_tp_sched_wakeup, struct task_struct *p)
{
	return on_wakeup(p, false);
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(raw_tp_sched_wakeup_new, struct task_struct *p)
{
	return on_wakeup(p, false);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(raw_tp_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(prev, next, false);
}
