// Package netqos is the pure model of Sluice's network tiers: the policy
// (devices, gold and silver guarantees, headroom, ramp, ingress, DSCP),
// the desired HTB tree per device, the dynamic bronze ceiling controller
// (Decide) and the diff between a desired and an observed tree. It does no
// I/O and reads no clock, so the decision core can import it.
//
// The kernel side is in netqos/tc (the HTB tree through netlink) and
// netqos/classify (the eBPF classifier).
package netqos
