// Package netqos is the pure model of Sluice's network tiers: gold (system
// and control traffic, and anything unclassified), silver (online) and
// bronze (offline). It holds the policy (devices, gold and silver
// guarantees, headroom, ramp, ingress, DSCP; Validate), the desired HTB
// tree per device (Desire), the dynamic bronze ceiling controller (Decide)
// and the diff between a desired and an observed tree (Diff). It does no
// I/O and reads no clock, so the decision core can import it.
//
// The kernel side: netqos/tc (the tree through netlink), netqos/classify
// (the eBPF classifier, bpf/netclass.c) and netqos/node (both, for the
// agent's loop, with metrics).
//
// # The tree
//
// Per shaped device: root HTB 5100: (default class gold), 5100:1 at the
// link rate, and 5100:10/20/30 for gold/silver/bronze with HTB priorities
// 0/1/2, so spare bandwidth goes to gold, then silver, then bronze. Gold
// and silver are guaranteed their policy rates and may borrow up to the
// link; bronze is guaranteed what the guarantees and headroom leave, and
// its ceiling is link - gold used - silver used - headroom, from the class
// byte counters of the previous tick: cut at once when gold or silver
// grow, grown back by at most the ramp per second, rounded down to 1% of
// the link so that noise does not rewrite the class every tick. Bursts are
// 1 ms of the rate plus an MTU and quanta rate/1000 bounded to
// [1600, 200000] bytes, both set explicitly (HTB's r2q default makes
// quanta absurd at multi-gigabit rates). Handles 5100: to 51ff: are
// Sluice's; nothing outside them is written.
//
// # Classification, and what survives a network namespace crossing
//
// HTB puts a packet into the class its skb->priority names when that
// names one of its classes, before any filter. A cgroup/sock_create
// program stamps each new socket's priority with its cgroup's tier class,
// and every packet of the socket carries it: host-network processes need
// nothing else (measured in classify's tests: each lands in its class).
//
// A container in its own network namespace sends through a veth into the
// host namespace, then is routed (or bridged and routed) to the uplink.
// Measured and read from the kernel (6.x):
//
//   - skb->priority does not survive: dev_forward_skb zeroes it when the
//     packet crosses the veth, and ip_forward rewrites it from the TOS
//     anyway. A container's traffic with only the socket program lands in
//     gold (tested).
//   - skb->mark does not survive the veth either: skb_scrub_packet clears
//     it between namespaces. A mark set inside the container is lost.
//   - the socket does survive the veth (skb_scrub_packet keeps skb->sk on
//     current kernels; measured on 6.18 and Debian's 6.1), up to ip_rcv in
//     the host namespace, which orphans it. So a tc program on the
//     host-side veth's ingress still sees the sending socket's cgroup
//     (bpf_skb_ancestor_cgroup_id).
//   - a mark set in the host namespace survives routing to the uplink.
//
// Hence three programs: sock_create (priority, host processes), stamp_veth
// on every container's host-side veth ingress (the socket's tier into
// Sluice's mark bits, DefaultMarkMask 0x0e000000, configurable), and
// stamp_uplink on the shaped device's egress before the qdisc (a Sluice
// mark into the tier's class priority, and the tier's DSCP if the policy
// sets one). The tc programs attach through TCX where the kernel has it
// (6.6+) and as clsact cls_bpf filters of Sluice's own priority before
// that (the VM lane's 6.1 kernel runs the classification tests this way).
// Tier lookup is by v2 cgroup id, deepest listed ancestor
// first, so the agent lists tier parents (the offline parent) or single
// containers; on cgroup v1 hosts the same cgroups exist in the v2
// hierarchy at /sys/fs/cgroup/unified, where the programs attach. The DSCP
// survives everything and reaches the fabric, but it is the policy's to
// set, not a carrier.
//
// # Ingress
//
// At an ifb device there is no socket left to classify by, so bronze's
// incoming traffic is policed where the receiving socket is known: a
// cgroup_skb/ingress program counts bytes per tier (unclassified sockets
// as gold, like their egress) and drops bronze
// packets above bronze's ingress budget (a token bucket of 100 ms of the
// budget). The budget follows the same rule as the egress ceiling, against
// the sum of the shaped links and the per-tier received bytes. Dropping at
// the socket makes TCP senders back off; it does not stop the bytes
// crossing the link, so it protects a congested downlink only as far as
// the senders are TCP.
package netqos
