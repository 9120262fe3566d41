package place

// Decision is the answer to one request.
type Decision struct {
	// Placed is false when no host fits, even with preemption.
	Placed bool
	// Placement is the binding (host, GPU indices, borrowed) when Placed.
	Placement Placement
	// Victims are the placements evicted to make room, when any; Place has
	// already removed them from the cluster.
	Victims []Placement
	// Strategy is the scorer that ranked the hosts.
	Strategy Strategy
	// Score explains the chosen host's rank.
	Score Score
	// Considered is how many hosts were examined; Feasible how many passed
	// every filter. With Profile.SampleFeasible, Considered may be less
	// than the cluster's size.
	Considered int
	Feasible   int
	// Rejections counts rejected hosts per reason, most frequent first
	// (ties by reason text).
	Rejections []ReasonCount
	// Hosts holds one verdict per examined host when Request.Explain is
	// set: in snapshot order, or in visit order when the profile samples.
	Hosts []HostVerdict
}

// Score is a host's rank under a strategy: higher Total wins. Parts names
// each ingredient, in a fixed order per strategy.
type Score struct {
	Total float64
	Parts []ScorePart
}

// ScorePart is one named ingredient of a Score.
type ScorePart struct {
	Name  string
	Value float64
}

// Reason is why a host was rejected, general enough to aggregate across
// hosts: "insufficient cpu", "gpu model", "selector zone",
// "anti-affinity web/db", "spread web by rack", "quota team-a memory".
type Reason string

// ReasonCount is the number of hosts rejected for one reason.
type ReasonCount struct {
	Reason Reason
	Hosts  int
}

// HostVerdict is one host's part in a decision.
type HostVerdict struct {
	Host     string
	Feasible bool
	// Reason and Detail explain a rejection: Detail carries the numbers
	// ("need 4000, free 1500", "point 37: need 900, free 200").
	Reason Reason
	Detail string
	// Score is set for feasible hosts that were scored.
	Score Score
}
