package plan

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
)

// Options bound the planner's work. Work is counted, never timed: the
// same model, options and seed give the same result on any machine.
type Options struct {
	Seed uint64
	// Iterations is the local search's budget: one per move or swap
	// tried, one per container of a host it tries to empty. 0 means
	// DefaultIterations per container; negative, no local search.
	Iterations int
	// Sample is how many candidate hosts a container is scored on
	// (default 48).
	Sample int
	// Stop, when set, is asked every 1024 iterations whether to stop now
	// (a caller's wall-clock cap); the result then says Stopped.
	Stop func() bool
	// Keep leaves the containers that run now where they are and places
	// the others around them; otherwise Solve ignores where they run.
	Keep bool
	// Bound, when set, is the model's LowerBound, computed once by the
	// caller; otherwise Solve computes it to size the host pool.
	Bound *Bound
}

// DefaultIterations is the local search's budget per container. On the
// generated 68,000-container, 6,000-host, 98-point trace (simulate
// generate, seed 1) the greedy ends 4.9% above the bound, 3 iterations
// per container 3.2%, 20 per container 1.7% (1.36 million iterations,
// about 20 s on one core).
const DefaultIterations = 20

func (o Options) sample() int {
	if o.Sample <= 0 {
		return 48
	}
	return o.Sample
}

// Result is a plan: the placement and what it cost.
type Result struct {
	State *State
	// Greedy is the construction's cost, Final the cost after the local
	// search.
	Greedy, Final Breakdown
	Iterations    int
	// Improvements counts the local search's accepted changes.
	Improvements int
	// Stopped is true when Options.Stop ended the search early.
	Stopped bool
}

// Solve places every container from scratch (where they run now is
// ignored unless Options.Keep): a curve-aware greedy construction, then
// local search.
func Solve(m *Model, opts Options) *Result {
	s := NewState(m)
	var pinned []bool
	if opts.Keep {
		s = FromExisting(m)
		pinned = make([]bool, len(m.ctrs))
		for c := range m.ctrs {
			pinned[c] = m.ctrs[c].existing >= 0
		}
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x9a4c0de))
	g := &greedy{s: s, rng: rng, sample: opts.sample()}
	g.pool = g.openPool(opts.Bound)
	for _, c := range g.order() {
		if s.at[c] < 0 {
			g.place(c)
		}
	}
	res := &Result{State: s, Greedy: s.Breakdown()}
	budget := opts.Iterations
	if budget == 0 {
		budget = DefaultIterations * len(m.ctrs)
	}
	if budget > 0 {
		ls := &search{s: s, rng: rng, sample: opts.sample(), stop: opts.Stop, pinned: pinned}
		ls.run(budget)
		res.Iterations, res.Improvements, res.Stopped = ls.iters, ls.improved, ls.stopped
	}
	res.Final = s.Breakdown()
	return res
}

// greedy builds a placement container by container.
type greedy struct {
	s      *State
	rng    *rand.Rand
	sample int
	// pool is the hosts the relaxation says to use, spread over failure
	// domains; containers go there first.
	pool []int32
}

// order is largest kind first (by peak over the largest capacity), equal
// sizes in a seeded random order, so an app's instances arrive together
// only by chance.
func (g *greedy) order() []int {
	m := g.s.m
	key := make([]uint64, len(m.ctrs))
	idx := make([]int, len(m.ctrs))
	for i := range idx {
		idx[i] = i
		key[i] = g.rng.Uint64()
	}
	slices.SortFunc(idx, func(a, b int) int {
		sa, sb := m.kinds[m.ctrs[a].kind].size, m.kinds[m.ctrs[b].kind].size
		if c := cmp.Compare(sb, sa); c != 0 {
			return c
		}
		return cmp.Compare(key[a], key[b])
	})
	return idx
}

// openPool picks, per shape, as many hosts as the bound's relaxation
// uses (rounded up), taking hosts round-robin over their first spread
// label's domains when there is one.
func (g *greedy) openPool(known *Bound) []int32 {
	m := g.s.m
	var b Bound
	if known != nil {
		b = *known
	} else {
		var err error
		if b, err = LowerBound(m); err != nil {
			return nil
		}
	}
	var pool []int32
	for si := range m.shapes {
		want := int(math.Ceil(b.Hosts[si] - 1e-9))
		var hosts []int32
		for h := range m.hosts {
			if m.hosts[h].shape == si {
				hosts = append(hosts, int32(h))
			}
		}
		g.rng.Shuffle(len(hosts), func(i, j int) { hosts[i], hosts[j] = hosts[j], hosts[i] })
		if len(m.labels) > 0 {
			dom := m.labels[0].hostDom
			rank := map[int32]int{}
			seen := map[int32]int{}
			for _, h := range hosts {
				rank[h] = seen[dom[h]]
				seen[dom[h]]++
			}
			slices.SortStableFunc(hosts, func(a, b int32) int { return cmp.Compare(rank[a], rank[b]) })
		}
		pool = append(pool, hosts[:min(want, len(hosts))]...)
	}
	return pool
}

// cand is a scored host for one container: objective change first, then
// the rise of the host's peaks (a container that fills a valley of the
// host's curve raises no peak), then the fuller host.
type cand struct {
	h     int
	delta float64
	rise  float64
	fill  float64
}

func better(a, b cand) bool {
	const eps = 1e-9
	switch {
	case b.h < 0:
		return true
	case a.delta < b.delta-eps:
		return true
	case a.delta > b.delta+eps:
		return false
	case a.rise < b.rise-eps:
		return true
	case a.rise > b.rise+eps:
		return false
	}
	return a.fill > b.fill
}

// score scores container c on host h (from: its current host, or -1).
func (s *State) score(c, h, from int) (cand, bool) {
	if !s.rulesFit(c, h, from) {
		return cand{h: -1}, false
	}
	delta, rise, fill, ok := s.evalAdd(c, h)
	if !ok {
		return cand{h: -1}, false
	}
	if from >= 0 {
		delta += s.removeDelta(c)
	}
	return cand{h: h, delta: delta, rise: rise, fill: fill}, true
}

// place puts container c on the best sampled pool host; when none fits,
// on the best of all used hosts; then on the best empty host. Pool hosts
// are scored without their fixed cost: the relaxation has already decided
// to pay for them, and charging the first container for the whole host
// would pile penalty onto the hosts already open instead.
func (g *greedy) place(c int) {
	s := g.s
	best := cand{h: -1}
	try := func(h int, paid bool) {
		sc, ok := s.score(c, h, -1)
		if !ok {
			return
		}
		if paid && len(s.pods[h]) == 0 {
			sc.delta -= s.m.hosts[h].cost
		}
		if better(sc, best) {
			best = sc
		}
	}
	if n := len(g.pool); n > 0 {
		if n <= g.sample {
			for _, h := range g.pool {
				try(int(h), true)
			}
		} else {
			for range g.sample {
				try(int(g.pool[g.rng.IntN(n)]), true)
			}
		}
	}
	if best.h < 0 {
		for _, h := range s.usedList {
			try(int(h), false)
		}
	}
	if best.h < 0 {
		for h := range s.m.hosts {
			if len(s.pods[h]) == 0 {
				try(h, false)
			}
		}
	}
	if best.h >= 0 {
		s.add(c, best.h)
	}
}

// search improves a placement by moves, swaps and emptying hosts; only
// changes that lower the objective are kept.
type search struct {
	s        *State
	rng      *rand.Rand
	sample   int
	stop     func() bool
	pinned   []bool // containers the search must not move (nil: none)
	iters    int
	improved int
	stopped  bool
}

func (ls *search) fixed(c int) bool { return ls.pinned != nil && ls.pinned[c] }

func (ls *search) run(budget int) {
	s := ls.s
	n := len(s.m.ctrs)
	if n == 0 {
		return
	}
	next := 1024
	for ls.iters < budget {
		if ls.iters >= next {
			next += 1024
			if ls.stop != nil && ls.stop() {
				ls.stopped = true
				return
			}
		}
		switch r := ls.rng.IntN(100); {
		case r < 60:
			ls.iters++
			ls.relocate(ls.rng.IntN(n))
		case r < 85:
			ls.iters++
			ls.swap(ls.rng.IntN(n), ls.rng.IntN(n))
		default:
			ls.iters += ls.empty()
		}
	}
}

// relocate moves c to the best of a few sampled used hosts (and now and
// then an empty one) when that lowers the objective; an unplaced c is
// placed anywhere it fits.
func (ls *search) relocate(c int) {
	if ls.fixed(c) {
		return
	}
	s := ls.s
	from := int(s.at[c])
	if from < 0 {
		g := &greedy{s: s, rng: ls.rng, sample: ls.sample}
		g.place(c)
		if s.at[c] >= 0 {
			ls.improved++
		}
		return
	}
	best := ls.sampled(c, from, 8)
	if ls.rng.IntN(10) == 0 {
		if h := ls.randomEmpty(); h >= 0 {
			if sc, ok := s.score(c, h, from); ok && better(sc, best) {
				best = sc
			}
		}
	}
	if best.h >= 0 && best.delta < -1e-9 {
		s.remove(c)
		s.add(c, best.h)
		ls.improved++
	}
}

// sampled is the best destination for container c, on host from, among k
// used hosts drawn at random.
func (ls *search) sampled(c, from, k int) cand {
	s := ls.s
	best := cand{h: -1}
	for range min(k, len(s.usedList)) {
		h := int(s.usedList[ls.rng.IntN(len(s.usedList))])
		if h == from {
			continue
		}
		if sc, ok := s.score(c, h, from); ok && better(sc, best) {
			best = sc
		}
	}
	return best
}

func (ls *search) randomEmpty() int {
	s := ls.s
	if s.used == len(s.m.hosts) {
		return -1
	}
	for range 8 {
		if h := ls.rng.IntN(len(s.m.hosts)); len(s.pods[h]) == 0 {
			return h
		}
	}
	return -1
}

// swap exchanges the hosts of a and b when both fit and the objective
// drops.
func (ls *search) swap(a, b int) {
	s := ls.s
	ha, hb := int(s.at[a]), int(s.at[b])
	if ha < 0 || hb < 0 || ha == hb || s.m.ctrs[a].kind == s.m.ctrs[b].kind || ls.fixed(a) || ls.fixed(b) {
		return
	}
	before := s.obj
	s.remove(a)
	s.remove(b)
	if _, ok := s.tryAdd(a, hb, -1); ok {
		s.add(a, hb)
		if _, ok := s.tryAdd(b, ha, -1); ok {
			s.add(b, ha)
			if s.obj < before-1e-9 {
				ls.improved++
				return
			}
			s.remove(b)
		}
		s.remove(a)
	}
	s.add(a, ha)
	s.add(b, hb)
}

// empty tries to move every container off the least-filled of a few
// sampled used hosts; it keeps the result when the objective drops and
// returns the iterations spent.
func (ls *search) empty() int {
	s := ls.s
	if len(s.usedList) < 2 {
		return 1
	}
	victim := -1
	for range 4 {
		h := int(s.usedList[ls.rng.IntN(len(s.usedList))])
		if victim < 0 || len(s.pods[h]) < len(s.pods[victim]) {
			victim = h
		}
	}
	before := s.obj
	pods := slices.Clone(s.pods[victim])
	if slices.ContainsFunc(pods, func(c int32) bool { return ls.fixed(int(c)) }) {
		return 1
	}
	type moved struct{ c, from int }
	var done []moved
	ok := true
	for _, c := range pods {
		// Adding never lowers a host's penalty, so the most the rest can
		// still save is the victim's cost and penalty: stop when that
		// cannot bring the total below where it started.
		if s.obj-s.pen[victim]-s.m.hosts[victim].cost >= before-1e-9 {
			ok = false
			break
		}
		best := ls.sampled(int(c), victim, 16)
		if best.h < 0 {
			ok = false
			break
		}
		s.remove(int(c))
		s.add(int(c), best.h)
		done = append(done, moved{int(c), victim})
	}
	if ok && s.obj < before-1e-9 {
		ls.improved++
		return len(pods)
	}
	for i := len(done) - 1; i >= 0; i-- {
		s.remove(done[i].c)
		s.add(done[i].c, done[i].from)
	}
	return len(pods)
}
