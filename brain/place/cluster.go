package place

import "errors"

// ErrUnknownPlacement is returned by Remove for an ID that is not placed.
var ErrUnknownPlacement = errors.New("unknown placement")

// Cluster is the mutable placement state: every Place, Remove and Add
// updates per-host free vectors, per-GPU free milli-GPUs, per-app counts per
// host and per domain and per-group quota use incrementally, so a decision
// costs a pass over (a sample of) hosts, not a rebuild. A Cluster is not
// safe for concurrent use.
type Cluster struct {
	// fields in state.go
	st state
}

// New builds a cluster from a snapshot. It rejects bad input with an error
// naming the host or placement and the field: duplicate names or IDs,
// negative amounts, placements on unknown hosts, placements that overflow
// their host, bad GPU indices, invalid rules or quotas.
func New(snap Snapshot, prof Profile) (*Cluster, error) { return newCluster(snap, prof) }

// Place decides where req goes and commits it (evicting any victims). A
// request that fits nowhere is not an error: the Decision says Placed false
// and why. Errors are for invalid requests (duplicate ID, negative or
// unknown amounts, bad curves or GPU shapes); the cluster is unchanged then.
func (c *Cluster) Place(req Request) (Decision, error) { return c.decide(req, true) }

// Try decides like Place but changes nothing.
func (c *Cluster) Try(req Request) (Decision, error) { return c.decide(req, false) }

// Remove takes a placement off its host and returns it.
func (c *Cluster) Remove(id string) (Placement, error) { return c.remove(id) }

// Add binds an existing placement as given (host and GPU indices named by
// the caller), checking capacity, GPU and model fit but not rules, quotas
// or selectors: it records what already runs.
func (c *Cluster) Add(p Placement) error { return c.add(p) }

// Snapshot returns the hosts and live placements, placements sorted by ID.
func (c *Cluster) Snapshot() Snapshot { return c.snapshot() }

// Usage reports the cluster's allocation.
func (c *Cluster) Usage() Usage { return c.usage() }

// Decide is the one-shot form: build a cluster from snap, place req, return
// the decision.
func Decide(snap Snapshot, prof Profile, req Request) (Decision, error) {
	c, err := New(snap, prof)
	if err != nil {
		return Decision{}, err
	}
	return c.Place(req)
}

// Usage is the cluster's allocation at one instant.
type Usage struct {
	// Capacity and Allocated per dimension, summed over hosts (peaks for
	// curved dimensions).
	Capacity  Resources
	Allocated Resources
	// GPUMilliCapacity and GPUMilliAllocated sum every device.
	GPUMilliCapacity  int64
	GPUMilliAllocated int64
	// GPUMilliFragmented is the idle milli-GPU capacity that the expected
	// request mix cannot use (FGD's fragmentation measure, summed over
	// hosts: for each shape, the idle GPU milli a shape cannot take on its
	// host, weighted by the shape's popularity).
	GPUMilliFragmented float64
	// Placements is the number of live placements.
	Placements int
}
