// Package place is the brain's placement core: a snapshot of hosts and the
// containers already on them in, placements and their explanations out.
//
// It is pure business logic in the spirit of a scheduler's feasibility and
// ranking passes: no I/O, no clock, no goroutines, no logging (a test
// enforces that it imports no os, net or syscall package). Randomness is
// seeded from the request, and nothing depends on map iteration order, so
// the same snapshot, profile and request always give the same answer.
//
// A Cluster is the mutable, incrementally maintained state the brain and
// the simulator keep between decisions: per-host free vectors, per-GPU free
// milli-GPUs, per-app counts per host and per failure domain, per-group
// quota use. Place decides and commits; Try decides only; Remove undoes.
//
// Decisions run in three passes: filters (resource fit in every dimension
// and at every point of a demand curve, whole and shared GPUs with model
// constraints, host selectors, anti-affinity and per-host caps, failure-
// domain spread, group quotas with lending), then one scorer chosen by
// Strategy, then — only when nothing fits — priority preemption. Every
// rejected host is counted under its reason; with Request.Explain each host
// gets its own verdict.
package place
