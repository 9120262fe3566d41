// Package target runs the brain's target on this host: its QoS overrides
// become the qos.Targets the agent's loop hands to qos.Decide, and its
// containers are converged through containerd by a worker of their own
// (image pulls are slow; the loop never waits for them), which
// acknowledges each version it applied with its per-container results.
//
// The link (agent/brainlink) keeps the last target across a lost brain and
// an agent restart and drops its overrides after the staleness limit; this
// package only reads it. Until the host has held a target once, nothing is
// converged: an agent that never heard from the brain must not stop what
// an earlier agent launched.
package target
