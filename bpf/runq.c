//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * runq.c: per-cgroup run-queue latency and on-CPU time from the scheduler
 * tracepoint sched_switch.
 *
 * The kernel already counts both per task (CONFIG_SCHED_INFO; what
 * /proc/<pid>/schedstat prints): sched_info.run_delay sums the task's waits
 * on a run queue and sched_info.pcount counts them, se.sum_exec_runtime sums
 * its time on a CPU (the same deltas cpuacct.usage and cpu.stat add up).
 * The program only sorts that growth by cgroup: at each switch-out of a task
 * it adds to the task's cgroup what those three counters grew by since the
 * task's previous switch-out. A task is switched in once between two
 * switch-outs, so the growth is one wait (pcount + 1, ended by that
 * switch-in) and the run that followed it.
 *
 * Why it is built this way (the scheduler hot path pays for every
 * instruction; measured with BPF_STATS_RUN_TIME, see the ebpf package's
 * benchmarks):
 *   - the counting needs no wakeup programs and no clock reads (the
 *     wakeup programs below only post the agent's wake-ups, and cost a
 *     config load while it keeps them off): the kernel stamps queueing and
 *     running with its own run-queue clock already, and its sums include
 *     the waits of tasks moved between CPUs while queued (sched_info_dequeue
 *     adds those parts to run_delay), which a program timing wakeup to
 *     switch-in would have to track itself;
 *   - nothing at switch-in and nothing when the idle task leaves a CPU:
 *     only a task leaving the CPU costs a per-task lookup, a cgroup id and
 *     a counter update.
 * What it costs in accuracy: a wait is counted when the task leaves the
 * CPU after it, not when it gets the CPU; for a task that already existed
 * at load, the first switch-out only records where its counters stand (no
 * wait, no run counted). Tasks started later are counted from their fork.
 *
 * Each program exists twice: as tp_btf (BTF-typed, cheapest) and as raw_tp
 * (for kernels where tracing programs cannot load). Both bodies read task
 * fields with CO-RE so one implementation serves both.
 *
 * Counters are per-CPU and, while a cgroup holds its slot, only ever grow:
 * the Go side sums the CPUs and diffs consecutive reads instead of
 * resetting, so no sample is lost between a read and a reset and no
 * atomic instruction is needed here.
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
/* CLOCK_MONOTONIC at load, the clock of task->start_time: a task started
 * later has had every count since its fork (where they start at zero) in
 * front of the programs. */
volatile const __u64 loaded_ns = 0;

struct cgroup_stats {
	/* Whose counters these are on this CPU (0: nobody's). First, so
	 * that a reader copying the value in address order sees the owner
	 * before the counters it zeroed (see claim_stats). */
	__u64 cgroup_id;
	__u64 runq_hist[HIST_SLOTS];
	__u64 runq_delay_ns;
	__u64 oncpu_ns;
	/* Switched out while still runnable (preempted or throttled). */
	__u64 preemptions;
};

/*
 * Per-cgroup counters: a per-CPU array of slots, and a hash from cgroup id
 * to slot. Per-CPU: the scheduler hot path never shares a cache line
 * between CPUs. Slots rather than a per-CPU hash by cgroup id: each CPU
 * remembers the last cgroup it charged and that cgroup's slot
 * (last_cgroup), so that the usual switch-out, of a task in the same
 * cgroup as the last one, finds its counters with two array lookups
 * (which recent kernels inline) instead of hashing (measured: the hash
 * lookup was a fifth of the program's time).
 *
 * Bounded: when no slot is free, new cgroups are counted in
 * drops[DROP_CGROUP] instead; the agent forgets removed cgroups. The
 * loader fills free_slots with every slot; the programs take slots from
 * it, Sampler.Forget gives them back. Each CPU's copy of a slot carries
 * its owner: a CPU claims its copy (zeroes it and sets the owner) the
 * first time it charges a cgroup there, and the reader sums the copies
 * whose owner is the cgroup the hash maps to the slot. So a slot needs no
 * cross-CPU reset when it changes hands, and a CPU whose last_cgroup still
 * names a forgotten cgroup finds the owner changed and asks the hash again.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct cgroup_stats);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u32);
} cgroup_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 4096);
	__type(value, __u32);
} free_slots SEC(".maps");

struct last_cgroup {
	__u64 cgroup_id;
	__u32 slot;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct last_cgroup);
} last_cgroup SEC(".maps");

/* Where a task's kernel counters stood at its last switch-out. The first
 * two are read together: keep them in sched_info's order. */
struct last_switch_out {
	__u64 waits;        /* sched_info.pcount */
	__u64 run_delay_ns; /* sched_info.run_delay */
	__u64 exec_ns;      /* se.sum_exec_runtime */
	__u64 valid;        /* 0: not filled in yet (new slot) */
};

/* tp_btf programs keep it in task storage: no hashing, no bucket lock,
 * freed with the task, written only by the CPU the task runs on. raw_tp
 * programs cannot (their task pointers are untyped), so they use a hash by
 * pid, preallocated (kernels before 6.1 require it of tracing programs),
 * from which a task deletes its entry at its last switch-out: it holds the
 * live tasks that switched out since load. Not an LRU: a task pushed out
 * and counted again from its fork would be counted twice. When it is full
 * a task not in it is not counted (drops[DROP_TASK_SEEN]) until there is
 * room; then it is counted from its fork if it started after load (none of
 * it was counted before), or from that switch-out. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct last_switch_out);
} task_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, struct last_switch_out);
} task_seen_by_pid SEC(".maps");

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

#define DROP_CGROUP 0 /* no free stats slot */
/* No per-task slot: task storage not allocated, or the raw_tp hash full.
 * For a task that had a slot, nothing is lost: the growth is counted at
 * its next switch-out. */
#define DROP_TASK_SEEN 1
#define DROP_TASK 2 /* task_delay full */
/* Waits known only by their sum: a task's counters grew by more than one
 * wait between two switch-outs the program saw (it missed one, e.g. a
 * recursion miss). They are counted, in the histogram at their mean. */
#define DROP_MERGED_WAITS 3
#define DROP_SLOTS 4

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/*
 * Wake-ups: the agent's loop otherwise learns of an online burst at its
 * next 100 ms tick. Three moments say "look now":
 *   - WAKE_WOKEN (sched_wakeup, sched_wakeup_new): an online task was
 *     woken, the first moment an online burst exists. Posted whatever
 *     the woken task's CPU is running. The switch-outs below cannot see
 *     every burst start: a woken task that gets the CPU of an unclassed
 *     task (the one that woke it, say: wake-affine placement), or of a
 *     throttled class, preempts nobody they know, and its first wait is
 *     counted only at its next switch-out, which a busy loop reaches
 *     after tens of ms (measured: BenchmarkReactionLatency's slow
 *     bursts, the first post 37-120 ms after the burst began). The
 *     check on a wake-up while disarmed is a config load; armed, the
 *     woken task's cgroup and one lookup. The agent keeps the programs
 *     disarmed after acting and dismisses wake-ups whose online use did
 *     not jump.
 *   - WAKE_PREEMPT: an offline task leaves a CPU still runnable and an
 *     online task takes it. Online work wants CPU that offline work
 *     holds (with cpu.idle offline, online tasks preempt at wake-up, so
 *     their run delay alone may never rise).
 *   - WAKE_RUNQ: an online task's wait, now counted, exceeded the agent's
 *     threshold (the policy's online run-queue latency target): online
 *     tasks already running that start to queue.
 * The switch-out checks cost a branch on the usual path: only switch-outs
 * that pass the cheap test (prev preempted, or a wait above the
 * threshold) look up the classes in wake_class. Posting is rate limited
 * per CPU by wake_cfg.min_gap_ns, with a clock read only then. The agent
 * reads the exact counters when woken: an event is a hint, never a
 * measurement.
 */
#define WAKE_CLASS_ONLINE 1
#define WAKE_CLASS_OFFLINE 2
#define WAKE_PREEMPT 1
#define WAKE_RUNQ 2
#define WAKE_WOKEN 3

struct wake_config {
	__u64 runq_threshold_ns; /* 0: no WAKE_RUNQ */
	__u64 min_gap_ns;        /* per CPU, between two events */
	__u64 enabled;           /* 0: no events at all */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wake_config);
} wake_cfg SEC(".maps");

/* cgroup id (in key_mode) -> WAKE_CLASS_*, filled by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u32);
} wake_class SEC(".maps");

struct wake_event {
	__u64 cgroup_id; /* the online cgroup that wants CPU */
	__u64 delay_ns;  /* WAKE_RUNQ: the wait; WAKE_PREEMPT: 0 */
	__u32 kind;
	__u32 cpu;
};

/* Emits struct wake_event into BTF (it is only used through a pointer),
 * so bpf2go generates its Go twin. */
const struct wake_event *unused_wake_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} wake_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} wake_last SEC(".maps");

static __always_inline __u32 wake_class_of(__u64 cgid)
{
	__u32 *c = bpf_map_lookup_elem(&wake_class, &cgid);

	return c ? *c : 0;
}

static __noinline int post_wake(__u64 cgid, __u64 delay, __u32 kind, __u64 min_gap)
{
	struct wake_event *ev;
	__u32 zero = 0;
	__u64 *last, now;

	last = bpf_map_lookup_elem(&wake_last, &zero);
	if (!last)
		return 0;
	now = bpf_ktime_get_ns();
	if (*last && now - *last < min_gap)
		return 0;
	ev = bpf_ringbuf_reserve(&wake_events, sizeof(*ev), 0);
	if (!ev)
		return 0; /* the agent is behind: it has wake-ups to read already */
	*last = now;
	ev->cgroup_id = cgid;
	ev->delay_ns = delay;
	ev->kind = kind;
	ev->cpu = bpf_get_smp_processor_id();
	bpf_ringbuf_submit(ev, 0);
	return 0;
}

static __always_inline void count_drop(__u32 slot, __u64 n)
{
	__u64 *p = bpf_map_lookup_elem(&drops, &slot);
	if (p)
		*p += n;
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
 * one helper call per pointer hop. Both are CO-RE relocated. t is always
 * the task leaving the CPU, which is still "current".
 */
static __always_inline __u64 task_cgroup_id(struct task_struct *t, bool direct, bool current)
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
	/* One helper call instead of four probe reads: in sched_switch the
	 * outgoing task is still current. */
	if (current)
		return bpf_get_current_cgroup_id();
	return BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
}

/* Reads t's state; non-zero if t cannot be read. raw_tp task pointers
 * are not checked by the verifier: a read that fails stops the program
 * before it writes anything (only test runs pass such pointers). */
static __always_inline long task_state(struct task_struct *t, unsigned int *state, bool direct)
{
	long st, err;

	if (bpf_core_field_exists(t->__state)) {
		if (direct) {
			*state = t->__state;
			return 0;
		}
		return bpf_core_read(state, sizeof(*state), &t->__state);
	}
	/* Before 5.14: `volatile long state`. */
	if (direct) {
		*state = ((struct task_struct___pre514 *)t)->state;
		return 0;
	}
	err = bpf_core_read(&st, sizeof(st), &((struct task_struct___pre514 *)t)->state);
	*state = st;
	return err;
}

/* The slot the hash gives cgid, taking a free one for a new cgroup. */
static __always_inline long slot_of(__u64 cgid, __u32 *slot)
{
	__u32 *found = bpf_map_lookup_elem(&cgroup_slots, &cgid);

	if (found) {
		*slot = *found;
		return 0;
	}
	if (bpf_map_pop_elem(&free_slots, slot))
		return -1; /* none left */
	if (!bpf_map_update_elem(&cgroup_slots, &cgid, slot, BPF_NOEXIST))
		return 0;
	/* Another CPU gave cgid a slot meanwhile (or the hash is full):
	 * return ours and use theirs. */
	bpf_map_push_elem(&free_slots, slot, 0);
	found = bpf_map_lookup_elem(&cgroup_slots, &cgid);
	if (!found)
		return -1;
	*slot = *found;
	return 0;
}

/* Not inlined: taken when a CPU charges a cgroup other than its last one. */
static __noinline struct cgroup_stats *stats_slow(struct last_cgroup *last, __u64 cgid)
{
	struct cgroup_stats *s;
	__u32 slot;

	if (slot_of(cgid, &slot)) {
		count_drop(DROP_CGROUP, 1);
		return 0;
	}
	s = bpf_map_lookup_elem(&stats, &slot);
	if (!s)
		return 0; /* cannot happen: slots are below max_entries */
	if (s->cgroup_id != cgid) {
		/* This CPU's first charge to cgid in this slot: claim it. The
		 * counters are zeroed before the owner is set (x86 and arm64
		 * readers see this CPU's stores in order, a reader copies the
		 * owner first). */
		__builtin_memset(&s->runq_hist, 0, sizeof(*s) - sizeof(s->cgroup_id));
		barrier();
		s->cgroup_id = cgid;
	}
	last->cgroup_id = cgid;
	last->slot = slot;
	return s;
}

static __always_inline struct cgroup_stats *stats_for(__u64 cgid)
{
	struct last_cgroup *last;
	struct cgroup_stats *s;
	__u32 zero = 0;

	last = bpf_map_lookup_elem(&last_cgroup, &zero);
	if (!last)
		return 0; /* cannot happen: one slot per CPU */
	if (last->cgroup_id == cgid) {
		s = bpf_map_lookup_elem(&stats, &last->slot);
		if (s && s->cgroup_id == cgid)
			return s;
	}
	return stats_slow(last, cgid);
}

/* The slot of where t's counters stood, created empty on first use. */
static __always_inline struct last_switch_out *task_seen_get(struct task_struct *t, __u32 pid, bool direct)
{
	struct last_switch_out *seen;

	if (direct) {
		seen = bpf_task_storage_get(&task_seen, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (!seen)
			count_drop(DROP_TASK_SEEN, 1);
		return seen;
	}
	seen = bpf_map_lookup_elem(&task_seen_by_pid, &pid);
	if (seen)
		return seen;
	struct last_switch_out zero = {};

	/* NOEXIST: only the CPU the task runs on inserts it, so this fails
	 * only when the hash is full. */
	if (bpf_map_update_elem(&task_seen_by_pid, &pid, &zero, BPF_NOEXIST)) {
		count_drop(DROP_TASK_SEEN, 1);
		return 0;
	}
	seen = bpf_map_lookup_elem(&task_seen_by_pid, &pid);
	if (!seen)
		count_drop(DROP_TASK_SEEN, 1);
	return seen;
}

/* Reads t's counters into now (valid set). raw_tp: pcount and run_delay
 * with one probe read where they are adjacent, as in every kernel so far
 * (the check is resolved at load time). */
static __always_inline void task_counters(struct task_struct *t, struct last_switch_out *now, bool direct)
{
	now->valid = 1;
	if (direct) {
		now->waits = t->sched_info.pcount;
		now->run_delay_ns = t->sched_info.run_delay;
		now->exec_ns = t->se.sum_exec_runtime;
		return;
	}
	if (bpf_core_field_offset(t->sched_info.run_delay) == bpf_core_field_offset(t->sched_info.pcount) + 8 &&
	    bpf_core_field_size(t->sched_info.pcount) == 8) {
		bpf_core_read(now, 16, &t->sched_info.pcount);
	} else {
		now->waits = BPF_CORE_READ(t, sched_info.pcount);
		now->run_delay_ns = BPF_CORE_READ(t, sched_info.run_delay);
	}
	now->exec_ns = BPF_CORE_READ(t, se.sum_exec_runtime);
}

static __always_inline void track_task(__u32 pid, __u64 delay, __u64 waits)
{
	struct task_wait_sum *sum = bpf_map_lookup_elem(&task_delay, &pid);
	struct task_wait_sum first = {.delay_ns = delay, .waits = waits};

	if (sum) {
		/* Only this task's switch-out writes it: no other CPU can. */
		sum->delay_ns += delay;
		sum->waits += waits;
	} else if (bpf_map_update_elem(&task_delay, &pid, &first, BPF_NOEXIST)) {
		count_drop(DROP_TASK, 1);
	}
}

static __always_inline bool born_after_load(struct task_struct *t, bool direct)
{
	__u64 start = direct ? t->start_time : BPF_CORE_READ(t, start_time);

	return loaded_ns && start >= loaded_ns;
}

/* TASK_DEAD: the task's last switch-out (do_task_dead). */
#define TASK_DEAD 0x80

static __always_inline int on_switch(struct task_struct *prev, struct task_struct *next, bool direct)
{
	struct wake_config *wcfg;
	struct last_switch_out now, base, *seen;
	struct cgroup_stats *s;
	__u64 delay, exec, waits, cgid;
	unsigned int state;
	bool first;
	__u32 pid, zero = 0;

	/* prev is still current: raw_tp gets its pid without a probe read. */
	pid = direct ? prev->pid : (__u32)bpf_get_current_pid_tgid();
	if (task_state(prev, &state, direct))
		return 0;
	if (!pid)
		return 0; /* the idle task: idle time is nobody's */
	seen = task_seen_get(prev, pid, direct);
	if (!seen)
		return 0;
	task_counters(prev, &now, direct);
	/* Not valid: the first switch-out seen, nothing to diff against. A
	 * counter that went back means the slot is not this task's past
	 * (raw_tp: a pid reused after a missed last switch-out): start afresh
	 * rather than count a wrap-around. */
	base = *seen;
	first = !base.valid || now.waits < base.waits || now.run_delay_ns < base.run_delay_ns ||
		now.exec_ns < base.exec_ns;
	if (first && born_after_load(prev, direct)) {
		/* Its counters started at zero at fork, after load. */
		__builtin_memset(&base, 0, sizeof(base));
		first = false;
	}
	delay = now.run_delay_ns - base.run_delay_ns;
	waits = now.waits - base.waits;
	exec = now.exec_ns - base.exec_ns;
	if (!direct && state == TASK_DEAD)
		/* The task's last switch-out: its slot can go (task storage
		 * goes with the task by itself), and must not be written
		 * after, when it may belong to another pid already. */
		bpf_map_delete_elem(&task_seen_by_pid, &pid);
	else
		*seen = now;
	if (first)
		return 0;

	cgid = task_cgroup_id(prev, direct, true);
	wcfg = bpf_map_lookup_elem(&wake_cfg, &zero);
	if (wcfg && wcfg->enabled && state == TASK_RUNNING && next && wake_class_of(cgid) == WAKE_CLASS_OFFLINE) {
		__u64 next_cgid = task_cgroup_id(next, direct, false);

		if (wake_class_of(next_cgid) == WAKE_CLASS_ONLINE)
			post_wake(next_cgid, 0, WAKE_PREEMPT, wcfg->min_gap_ns);
	}
	s = stats_for(cgid);
	if (!s)
		return 0;
	s->oncpu_ns += exec;
	if (state == TASK_RUNNING)
		s->preemptions += 1;
	if (!waits && !delay)
		return 0; /* switched in without having queued */
	if (wcfg && wcfg->enabled && wcfg->runq_threshold_ns && delay / (waits ? waits : 1) > wcfg->runq_threshold_ns &&
	    wake_class_of(cgid) == WAKE_CLASS_ONLINE)
		post_wake(cgid, delay / (waits ? waits : 1), WAKE_RUNQ, wcfg->min_gap_ns);
	if (waits == 1) {
		s->runq_hist[hist_slot(delay)] += 1;
	} else if (waits) {
		s->runq_hist[hist_slot(delay / waits)] += waits;
		count_drop(DROP_MERGED_WAITS, waits);
	} else {
		/* Delay without a switch-in: not seen so far; keep the total
		 * and the histogram in step by counting it as one wait. */
		waits = 1;
		s->runq_hist[hist_slot(delay)] += 1;
	}
	s->runq_delay_ns += delay;

	if (track_task_cgroup && cgid == track_task_cgroup)
		track_task(pid, delay, waits);
	return 0;
}

/* A task was woken (or, new, first woken): post WAKE_WOKEN if it is
 * online and wake-ups are on. Runs for every wake-up on the host, so the
 * disarmed path is one array lookup and a branch. */
static __always_inline int on_wakeup(struct task_struct *p, bool direct)
{
	struct wake_config *wcfg;
	__u32 zero = 0;
	__u64 cgid;

	wcfg = bpf_map_lookup_elem(&wake_cfg, &zero);
	if (!wcfg || !wcfg->enabled || !p)
		return 0;
	cgid = task_cgroup_id(p, direct, false);
	/* 0: the read failed (raw_tp: p is no task; only test runs pass
	 * such pointers); no cgroup has id 0. */
	if (cgid && wake_class_of(cgid) == WAKE_CLASS_ONLINE)
		post_wake(cgid, 0, WAKE_WOKEN, wcfg->min_gap_ns);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(tp_btf_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(prev, next, true);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(raw_tp_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(prev, next, false);
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(tp_btf_sched_wakeup, struct task_struct *p)
{
	return on_wakeup(p, true);
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(raw_tp_sched_wakeup, struct task_struct *p)
{
	return on_wakeup(p, false);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(tp_btf_sched_wakeup_new, struct task_struct *p)
{
	return on_wakeup(p, true);
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(raw_tp_sched_wakeup_new, struct task_struct *p)
{
	return on_wakeup(p, false);
}
