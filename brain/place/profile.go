package place

// Profile is the cluster-wide placement policy: default strategy, rules,
// quotas and the expected request mix.
type Profile struct {
	// Strategy is the default scorer; empty means DefaultStrategyFor the
	// cluster's hosts.
	Strategy Strategy
	// AntiAffinity rules; see AntiAffinity.
	AntiAffinity []AntiAffinity
	// Spreads spread apps across failure domains.
	Spreads []Spread
	// Quotas caps groups; groups without an entry are not capped.
	Quotas []Quota
	// Lending lets a group exceed its quota by borrowing what other groups
	// leave unused (see Quota).
	Lending bool
	// CurvePoints is the length of every demand curve (e.g. 96 for a day in
	// 15-minute steps); 0 forbids curves.
	CurvePoints int
	// Shapes is the expected mix of future requests used by the
	// fragmentation-aware strategies. When empty, the cluster learns the mix
	// from the requests it has seen (their popularity so far).
	Shapes []Shape
	// SampleFeasible bounds the work per decision: hosts are visited in a
	// seeded random order and scoring stops after this many feasible hosts
	// (0 = visit and score every host). Sampling trades placement quality
	// for speed, as Nomad's limited candidate sets do.
	SampleFeasible int
	// ScoreDims lists the dimensions the scorers and the fragmentation
	// measure weigh besides GPUs (empty = every dimension). Filters always
	// check every dimension.
	ScoreDims []string
	// ScoreSteps, when > 0, quantises every score in [0,1] to that many
	// steps before ranking, ties broken at random (seeded) — what
	// kube-scheduler score plugins do with their 0..100 integer scores.
	// Replays of published experiments use 100; 0 ranks on exact scores.
	ScoreSteps int
	// TiesByHostOrder gives exact ties to the host listed first in the
	// snapshot instead of a seeded random pick among them. Consistent tie
	// order packs (ties keep landing on the same hosts); it is also how
	// the FGD paper's published numbers behave, which replays rely on.
	TiesByHostOrder bool
}

// AntiAffinity says: on a host that runs App, at most MaxOther instances
// of Other may run. MaxOther 0 means never together. The rule holds in
// both directions of arrival (placing Other next to App, or App next to
// more than MaxOther instances of Other, are both rejected). When App ==
// Other the rule caps the app itself: next to one instance at most
// MaxOther more, i.e. at most MaxOther+1 instances per host.
type AntiAffinity struct {
	App      string
	Other    string
	MaxOther int
}

// Spread keeps App's instances balanced across the failure domains named
// by the host label DomainLabel, as Kubernetes topology spread does: the
// chosen domain's instance count after the placement minus the smallest
// count over all domains before it (every distinct value of the label
// among the hosts) is at most MaxSkew (>= 1). Hosts without the label
// cannot take the app.
type Spread struct {
	App         string
	DomainLabel string
	MaxSkew     int
}

// Quota caps the sum of a group's placements per dimension (and in
// milli-GPUs). A group's own (not borrowed) placements never exceed it.
// With Profile.Lending, a request that would exceed its group's quota may
// still be placed as Borrowed when, after the placement, the total that
// all groups run over their quotas stays within the total all groups leave
// unused under theirs, in every capped dimension. Borrowed placements are
// the first preemption victims: any request that stays within its own
// group's quota may evict them regardless of priority.
type Quota struct {
	Group string
	// Limit caps each listed dimension; unlisted dimensions are not capped.
	Limit Resources
	// GPUMilli caps the group's milli-GPUs; negative means not capped.
	GPUMilli int64
}

// Shape is one kind of request in the expected mix, with its popularity.
type Shape struct {
	Demand Resources
	GPU    GPURequest
	// Weight is the relative popularity (> 0); weights need not sum to 1.
	Weight float64
}
