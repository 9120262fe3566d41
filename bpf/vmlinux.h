/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * vmlinux.h: the few kernel types the Sluice BPF programs read, trimmed by
 * hand from `bpftool btf dump file /sys/kernel/btf/vmlinux format c`
 * (kernel 6.18, x86_64) instead of committing the 2.8 MB full dump.
 *
 * Every struct is marked preserve_access_index: the loader relocates each
 * field access against the running kernel's BTF by name (CO-RE), so only the
 * names and types of the fields used here must match the kernel, not the
 * layout or the other fields. The UAPI enums below are ABI and never change.
 *
 * To add a field: look its type up in the full dump and add only that field.
 */
#ifndef SLUICE_VMLINUX_H
#define SLUICE_VMLINUX_H

typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __s64 s64;
typedef __u64 u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
typedef int pid_t;
enum { false = 0, true = 1 };

/* UAPI: include/uapi/linux/bpf.h */
enum bpf_map_type {
	BPF_MAP_TYPE_UNSPEC = 0,
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_HASH = 5,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_QUEUE = 22,
	BPF_MAP_TYPE_RINGBUF = 27,
	BPF_MAP_TYPE_TASK_STORAGE = 29,
};

enum {
	BPF_F_NO_PREALLOC = 1,
};

enum {
	BPF_LOCAL_STORAGE_GET_F_CREATE = 1,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
};

/* Kernel-internal: values differ between configs, so only read them with
 * bpf_core_enum_value(). */
enum cgroup_subsys_id {
	cpu_cgrp_id = 1,
};

struct kernfs_node {
	/* Since 5.5 a u64 that equals the directory's inode number on 64-bit. */
	u64 id;
} __attribute__((preserve_access_index));

struct cgroup {
	struct kernfs_node *kn;
} __attribute__((preserve_access_index));

struct cgroup_subsys_state {
	struct cgroup *cgroup;
} __attribute__((preserve_access_index));

struct css_set {
	/* Length is CGROUP_SUBSYS_COUNT in the kernel; only the offset of the
	 * array is relocated, elements are pointers. */
	struct cgroup_subsys_state *subsys[1];
	struct cgroup *dfl_cgrp;
} __attribute__((preserve_access_index));

/* CONFIG_SCHED_INFO (selected by SCHEDSTATS and TASK_DELAY_ACCT): what
 * /proc/<pid>/schedstat prints. */
struct sched_info {
	unsigned long pcount;	 /* run-queue waits ended by a switch-in */
	unsigned long long run_delay; /* their total, ns of rq_clock */
} __attribute__((preserve_access_index));

struct sched_entity {
	u64 sum_exec_runtime; /* ns on a CPU, as cpuacct and cpu.stat count it */
} __attribute__((preserve_access_index));

struct task_struct {
	unsigned int __state;
	pid_t pid;
	u64 start_time;
	struct sched_entity se;
	struct sched_info sched_info;
	struct css_set *cgroups;
} __attribute__((preserve_access_index));

/* Before 5.14 the state field was `volatile long state`. */
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

#endif /* SLUICE_VMLINUX_H */
