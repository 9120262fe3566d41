//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * netclass.c: network tier classification by cgroup (no net_cls), for
 * cgroup v1 hosts (through the v2 hierarchy BPF attaches to) and v2 hosts.
 *
 * The agent fills cgroup_tiers with v2 cgroup ids (a tier parent such as
 * the offline parent, or single containers); a socket belongs to the tier
 * of its deepest listed ancestor. Four programs:
 *
 *   sock_create   (cgroup/sock_create, on the v2 root or a parent): stamps
 *                 the socket's priority with its tier's HTB class id. HTB
 *                 steers a packet whose priority names one of its classes
 *                 into that class without a filter, so host-network
 *                 processes need nothing more.
 *   stamp_veth    (tc ingress of a container's host-side veth): packets of a
 *                 container in its own network namespace lose their
 *                 priority when they cross the veth (the kernel zeroes it
 *                 in dev_forward_skb, and ip_forward rewrites it from the
 *                 TOS) and their mark (skb_scrub_packet clears it between
 *                 namespaces), but still carry their socket until the host
 *                 stack's ip_rcv orphans it. Here the socket's cgroup is
 *                 still known: the tier goes into the skb mark (Sluice's
 *                 mark bits only), which routing in the host namespace
 *                 keeps.
 *   stamp_uplink  (tc egress of the shaped device): turns a Sluice mark into
 *                 the tier's class id in skb->priority before the qdisc,
 *                 and rewrites the DSCP of the tier if the policy asks.
 *   police_ingress (cgroup_skb/ingress): counts received bytes per tier
 *                 (unclassified sockets as gold) and drops bronze packets
 *                 above bronze's ingress budget (a token bucket), where the
 *                 receiving socket is known.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define NUM_TIERS 3
#define GOLD 0
#define BRONZE 2
#define MAX_LEVEL 15 /* deepest cgroup nesting level looked up */
#define DSCP_KEEP 0xff

struct settings {
	__u32 classid[NUM_TIERS]; /* HTB class id (socket priority) per tier */
	__u32 mark[NUM_TIERS];    /* skb mark bits per tier, within mark_mask */
	__u32 mark_mask;
	__u8 dscp[NUM_TIERS];     /* DSCP per tier, DSCP_KEEP to leave it */
	__u8 pad;
};

struct police {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 rate_bytes_per_sec; /* 0: not policing */
	__u64 burst_bytes;
	__u64 tokens;
	__u64 last_ns;
};

struct tier_counter {
	__u64 bytes;
	__u64 packets;
	__u64 drops;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct settings);
} tier_settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);   /* v2 cgroup id */
	__type(value, __u32); /* tier */
} cgroup_tiers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct police);
} ingress_police SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NUM_TIERS);
	__type(key, __u32);
	__type(value, struct tier_counter);
} rx_counters SEC(".maps");

static __always_inline struct settings *get_settings(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&tier_settings, &zero);
}

static __always_inline int tier_of_id(__u64 id)
{
	__u32 *t;

	if (!id)
		return -1;
	t = bpf_map_lookup_elem(&cgroup_tiers, &id);
	if (!t || *t >= NUM_TIERS)
		return -1;
	return *t;
}

/* Tier of the current task's cgroup: its deepest listed ancestor. */
static __always_inline int tier_of_current(void)
{
#pragma unroll
	for (int level = MAX_LEVEL; level >= 0; level--) {
		int t = tier_of_id(bpf_get_current_ancestor_cgroup_id(level));
		if (t >= 0)
			return t;
	}
	return -1;
}

/* Tier of the socket that sent or receives skb (0 ids when it has none). */
static __always_inline int tier_of_skb(struct __sk_buff *skb)
{
#pragma unroll
	for (int level = MAX_LEVEL; level >= 0; level--) {
		int t = tier_of_id(bpf_skb_ancestor_cgroup_id(skb, level));
		if (t >= 0)
			return t;
	}
	return -1;
}

SEC("cgroup/sock_create")
int sock_create(struct bpf_sock *sk)
{
	struct settings *s = get_settings();
	int t;

	if (!s)
		return 1;
	t = tier_of_current();
	if (t >= 0 && t < NUM_TIERS)
		sk->priority = s->classid[t];
	return 1;
}

SEC("tc")
int stamp_veth(struct __sk_buff *skb)
{
	struct settings *s = get_settings();
	int t;

	if (!s || !s->mark_mask)
		return TC_ACT_UNSPEC;
	t = tier_of_skb(skb);
	if (t >= 0 && t < NUM_TIERS)
		skb->mark = (skb->mark & ~s->mark_mask) | (s->mark[t] & s->mark_mask);
	return TC_ACT_UNSPEC;
}

static __always_inline void set_dscp(struct __sk_buff *skb, __u8 dscp)
{
	__be16 old, new;
	__u16 h;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &old, sizeof(old)) < 0)
		return;
	h = bpf_ntohs(old);
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		/* version/ihl, then TOS: DSCP is the TOS's upper six bits. */
		h = (h & 0xff03) | ((__u16)dscp << 2);
		new = bpf_htons(h);
		if (new == old)
			return;
		bpf_l3_csum_replace(skb, ETH_HLEN + 10, old, new, sizeof(new));
		bpf_skb_store_bytes(skb, ETH_HLEN, &new, sizeof(new), 0);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		/* version(4) traffic class(8) flow label(20): DSCP is the traffic
		 * class's upper six bits. No header checksum in IPv6. */
		h = (h & 0xf03f) | ((__u16)dscp << 6);
		new = bpf_htons(h);
		if (new != old)
			bpf_skb_store_bytes(skb, ETH_HLEN, &new, sizeof(new), 0);
	}
}

SEC("tc")
int stamp_uplink(struct __sk_buff *skb)
{
	struct settings *s = get_settings();
	int t = -1;

	if (!s)
		return TC_ACT_UNSPEC;
#pragma unroll
	for (int i = 0; i < NUM_TIERS; i++) {
		if (skb->priority == s->classid[i])
			t = i;
	}
	if (t < 0 && s->mark_mask) {
#pragma unroll
		for (int i = 0; i < NUM_TIERS; i++) {
			if ((skb->mark & s->mark_mask) == s->mark[i])
				t = i;
		}
		if (t >= 0)
			skb->priority = s->classid[t];
	}
	if (t >= 0 && t < NUM_TIERS && s->dscp[t] != DSCP_KEEP)
		set_dscp(skb, s->dscp[t]);
	return TC_ACT_UNSPEC;
}

SEC("cgroup_skb/ingress")
int police_ingress(struct __sk_buff *skb)
{
	struct tier_counter *c;
	struct police *p;
	__u32 key, zero = 0;
	int t = tier_of_skb(skb);
	int pass = 1;

	/* Unclassified sockets count as gold, as their egress goes to gold's
	 * class: gold used is all that is not online or offline. */
	if (t < 0 || t >= NUM_TIERS)
		t = GOLD;
	key = t;
	if (t == BRONZE) {
		p = bpf_map_lookup_elem(&ingress_police, &zero);
		if (p && p->rate_bytes_per_sec) {
			__u64 now = bpf_ktime_get_ns();
			bpf_spin_lock(&p->lock);
			if (now > p->last_ns) {
				__u64 add = (now - p->last_ns) * p->rate_bytes_per_sec / 1000000000ULL;
				p->tokens = p->tokens + add > p->burst_bytes ? p->burst_bytes : p->tokens + add;
				p->last_ns = now;
			}
			if (p->tokens >= skb->len)
				p->tokens -= skb->len;
			else
				pass = 0;
			bpf_spin_unlock(&p->lock);
		}
	}
	c = bpf_map_lookup_elem(&rx_counters, &key);
	if (c) {
		if (pass) {
			c->bytes += skb->len;
			c->packets++;
		} else {
			c->drops++;
		}
	}
	return pass;
}

char __license[] SEC("license") = "Dual BSD/GPL";
