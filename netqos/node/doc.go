// Package node runs Sluice's network tiers on one host: it reads the
// signals netqos.Decide needs (per-device class counters through netlink,
// per-tier receive counters from the eBPF classifier), applies the plan
// (HTB trees, the classifier's uplink and veth attachments, DSCP, bronze's
// ingress budget) and exports per device and tier metrics.
//
// An agent wires it in a few lines each tick:
//
//	sig, err := n.Signals(pol.Network, now)   // log err, keep going
//	plan, st = netqos.Decide(sig, pol.Network, st)
//	results := n.Apply(ctx, plan)
//
// and tells it which cgroups are online or offline with SetTier (or
// SetTiers, the whole set at once).
//
// The agent itself uses Enforcer: the same loop with the decision in
// qos.Decide (the plan's Network group), Signals for the Observation and
// Apply as one more agent.Enforcer, running in its own worker.
package node
