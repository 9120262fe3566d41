package place

// Request asks for one container to be placed.
type Request struct {
	// ID is unique among live placements.
	ID string
	// App groups instances for anti-affinity and spread; may be empty.
	App string
	// Group is the quota group (Fuxi-style); empty means no quota applies.
	Group string
	// Priority orders preemption: higher wins; victims have lower priority.
	Priority int
	// Demand is the peak demand per dimension.
	Demand Resources
	// Curves, when set for a dimension, replaces that dimension's flat
	// demand by a curve over the profile's day (Profile.CurvePoints points):
	// a host fits when, at every point, the sum of everything on it stays
	// within capacity. A flat demand counts as constant over the day. A
	// Demand entry for a curved dimension must be absent or equal to the
	// curve's peak. A placement keeps the request's maps and slices as
	// given (instances of one app may share them); do not change them
	// after Place or Add.
	Curves map[string][]int64
	// GPU is the request's GPU need.
	GPU GPURequest
	// Selector lists labels a host must carry, all of them, with equal values.
	Selector map[string]string
	// Strategy overrides the profile's scorer when not empty.
	Strategy Strategy
	// Seed seeds every random choice made for this request (sampling order,
	// the random scorer, tie breaks after the deterministic ones).
	Seed uint64
	// Preempt allows evicting lower-priority (and borrowed) placements when
	// nothing fits as is.
	Preempt bool
	// Explain asks for a per-host verdict in Decision.Hosts.
	Explain bool
}

// Placement is a request bound to a host.
type Placement struct {
	Request
	// Host is the chosen host's name.
	Host string
	// GPUIndices names the devices taken, ascending: Count indices for a
	// whole-GPU request, one for a shared one, none otherwise.
	GPUIndices []int
	// Borrowed is true when the placement runs on quota lent by other
	// groups; borrowed placements are the first preemption victims.
	Borrowed bool
}

// Snapshot is the cluster as the brain knows it: hosts and live placements.
type Snapshot struct {
	Hosts      []Host
	Placements []Placement
}
