// Package tc is the kernel side of Sluice's network tiers: it resolves the
// policy's devices, reads each device's HTB tree and per-tier counters
// through netlink, and applies only the difference to the tree the pure
// model (package netqos) wants.
//
// Ownership: Sluice owns the tc handle majors netqos.HandleMajorFirst to
// netqos.HandleMajorLast on a device. Qdiscs and classes outside that range
// are never written; a root qdisc someone else installed is reported with
// netqos.ErrForeignRoot and left alone unless the policy allows replacing
// it. The kernel, not the agent's memory, is the source of truth, so an
// agent that restarts reads its tree back and changes nothing that is
// already right.
package tc
