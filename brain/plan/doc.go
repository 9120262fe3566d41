// Package plan is the capacity planner behind "sluicectl simulate plan",
// "bound" and "reschedule": a cost objective over whole placements, a
// curve-aware strategy that minimises it, a lower bound to measure any
// placement against, and rescheduling plans whose every step is feasible.
//
// It is pure like brain/place: no I/O, no clock, no goroutines; every
// random choice comes from a seed, and work is counted in iterations, so
// the same input and seed give the same answer on any machine.
//
// # The objective
//
// For a placement, with H the hosts running at least one container, T the
// curve points (1 when no curves), and for each penalised dimension d its
// target τ_d, steepness k_d and weight w_d:
//
//	cost = Σ_{h∈H} c_h · (1 + Σ_d w_d · (1/T) Σ_t φ_d(u_{h,d,t}))
//	φ_d(u) = exp(k_d·x) − 1 − k_d·x,  x = max(0, u − τ_d)
//
// where c_h is the host's cost (a host shape's price, default 1) and
// u_{h,d,t} is the host's utilisation of d at point t: the sum of its
// containers' demands at t (a flat demand is the same at every point) over
// its capacity. φ is zero up to the target, convex, and has a continuous
// slope, so the penalty is "exponential above the target" without a kink.
// A host used all day at the target costs c_h; the penalty is in the same
// unit (host cost), so "cost 812.4" reads as "as dear as 812.4 hosts".
// The planner reads φ by linear interpolation on a 4,096-step table, which
// is never below the exact value (φ is convex): costs it reports are at
// most a hair above the formula's, and the bound, computed exactly, stays
// below them.
//
// Feasibility is checked at every point: capacity of every dimension,
// host selectors, anti-affinity (place.AntiAffinity's meaning, per host),
// spread skew across failure domains (after every change, including a
// container's removal). Quotas do not depend on where containers run and
// are not checked; GPU requests are refused (fgd-pack is the GPU planner).
//
// # The strategy
//
// Solve sizes a host pool by the bound's relaxation (hosts per shape,
// rounded up, spread over failure domains), then places containers
// largest first, each on the best of a seeded sample of pool hosts: the
// least rise of the objective, then the least rise of the host's peaks
// (a container whose curve fills the host's valleys raises none, which is
// how day and night instances pair up), then the fuller host. Local
// search follows: moves, swaps, and emptying a host, each kept only when
// the objective drops, within a budget counted in iterations. Planner
// offers it to the simulator as the "cost" strategy; place.StrategyCost is
// its per-request form for the brain.
//
// # Rescheduling
//
// Reschedule starts from where containers run now (a state that breaks a
// rule is refused, ErrInfeasibleStart) and chooses moves one at a time,
// each applied and checked after the container stops and after it starts
// elsewhere, so the list in order is a feasible migration with one
// container in flight; it empties hosts (fewest containers first) while
// that lowers the cost, then moves containers off the hottest hosts, and
// moves no container twice. With InFlight K, consecutive moves are grouped
// into batches of at most K whose state after all their stops keeps every
// rule. ReplayMoves replays a MovePlan and checks every intermediate state
// with the validator (Check), which recomputes everything from the
// containers' hosts and shares nothing with the planner's bookkeeping.
//
// # The bound
//
// Bound relaxes the problem: containers are divisible, every host of a
// shape (cost and capacity) carries the same load, and at every point and
// dimension the cluster's total demand may be split among shapes freely;
// rules are dropped. For n_s hosts of shape s (real, 0 ≤ n_s ≤ hosts of
// the shape) the cheapest split at a point solves a convex water-filling;
// the total F(n) is convex in n (the perspective of a convex function,
// minimised over the split), and Bound minimises it by nested ternary
// search (one or two shapes). Any placement costs at least F(n) for n =
// its used hosts per shape (Jensen), so Bound never exceeds a real cost.
// With three or more shapes Bound falls back to the cheapest fractional
// cover of every dimension's peak, without penalty (still a lower bound,
// and the result says so).
package plan
