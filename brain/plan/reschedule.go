package plan

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
)

// MovePlanVersion is the only version of a move list.
const MovePlanVersion = 1

// MovePlan is a migration: moves in order, grouped in batches of at most
// InFlight. A batch stops all its containers, then starts them all on
// their new hosts; the state after the stops and the state after the
// starts must both keep every rule. With InFlight 1 every move is its
// own batch: stop, then start elsewhere.
type MovePlan struct {
	Version  int    `json:"version"`
	InFlight int    `json:"in_flight"`
	Moves    []Move `json:"moves"`
}

// Move is one container's migration.
type Move struct {
	Step      int    `json:"step"`
	Batch     int    `json:"batch"`
	Container string `json:"container"`
	From      string `json:"from"`
	To        string `json:"to"`
}

// RescheduleOptions bound a rescheduling.
type RescheduleOptions struct {
	Seed uint64
	// MaxMoves caps the moves (0: 5% of the running containers, at
	// least 1).
	MaxMoves int
	// InFlight is the most containers a batch may hold stopped at once
	// (default 1).
	InFlight int
	// Iterations bounds the search: one per destination tried for one
	// container (0: DefaultIterations per running container).
	Iterations int
	// Sample is how many used hosts a container's destination is chosen
	// among (default 48).
	Sample int
	// Stop, when set, is asked now and then whether to stop (a caller's
	// wall-clock cap); the result then says Stopped.
	Stop func() bool
}

// Rescheduled is a rescheduling's outcome.
type Rescheduled struct {
	Before, After Breakdown
	Plan          MovePlan
	Iterations    int
	Stopped       bool
	// NotRunning counts containers with no host now; they are left out.
	NotRunning int
	Final      *State
}

// ErrInfeasibleStart is wrapped when the existing state already breaks a
// rule: no move order can keep "every state feasible" from there.
var ErrInfeasibleStart = errors.New("the existing state breaks rules")

// Reschedule plans moves from where containers run now to a cheaper
// placement. Each move is chosen and applied to the planner's state in
// turn, checked to keep every rule after the container stops and after
// it starts on its new host, so the list in order is a feasible
// migration; no container moves twice. It first empties the hosts whose
// containers can go elsewhere at a lower cost (fewest containers first),
// then moves containers off the hosts with the highest penalty.
func Reschedule(m *Model, opts RescheduleOptions) (*Rescheduled, error) {
	s := FromExisting(m)
	if v := Check(m, s.Placement()); len(v) > 0 {
		return nil, fmt.Errorf("reschedule: %w: %d problems, the first: %s", ErrInfeasibleStart, len(v), v[0])
	}
	running := 0
	for _, c := range m.ctrs {
		if c.existing >= 0 {
			running++
		}
	}
	r := &rescheduler{
		s: s, rng: rand.New(rand.NewPCG(opts.Seed, 0x5e5c)), moved: make([]bool, len(m.ctrs)),
		cap: opts.MaxMoves, budget: opts.Iterations, sample: opts.Sample, stop: opts.Stop,
	}
	if r.cap <= 0 {
		r.cap = max(1, running/20)
	}
	if r.budget <= 0 {
		r.budget = DefaultIterations * max(running, 1)
	}
	if r.sample <= 0 {
		r.sample = 48
	}
	out := &Rescheduled{Before: s.Breakdown(), NotRunning: len(m.ctrs) - running}
	for pass := 0; pass < 3 && !r.done(); pass++ {
		n := len(r.moves)
		r.emptyHosts()
		r.coolHosts()
		if len(r.moves) == n {
			break
		}
	}
	inFlight := max(1, opts.InFlight)
	out.Plan = MovePlan{Version: MovePlanVersion, InFlight: inFlight, Moves: batch(m, FromExisting(m).Placement(), r.moves, inFlight)}
	out.After = s.Breakdown()
	out.Iterations, out.Stopped, out.Final = r.iters, r.stopped, s
	return out, nil
}

type rescheduler struct {
	s       *State
	rng     *rand.Rand
	moved   []bool
	moves   []Move
	idx     []int // container of each move
	cap     int
	budget  int
	iters   int
	sample  int
	stop    func() bool
	checks  int
	stopped bool
}

func (r *rescheduler) done() bool {
	if r.stopped || len(r.moves) >= r.cap || r.iters >= r.budget {
		return true
	}
	if r.stop != nil && r.iters/1024 > r.checks {
		r.checks = r.iters / 1024
		if r.stop() {
			r.stopped = true
		}
	}
	return r.stopped
}

// best is the cheapest destination for c among sampled used hosts (all
// used hosts when none of the sample fits), skipping avoid.
func (r *rescheduler) best(c, avoid int) cand {
	s := r.s
	from := int(s.at[c])
	best := cand{h: -1}
	try := func(h int) {
		if h == from || h == avoid {
			return
		}
		r.iters++
		if sc, ok := s.score(c, h, from); ok && better(sc, best) {
			best = sc
		}
	}
	n := len(s.usedList)
	if n <= r.sample {
		for _, h := range slices.Clone(s.usedList) {
			try(int(h))
		}
		return best
	}
	for range r.sample {
		try(int(s.usedList[r.rng.IntN(n)]))
	}
	if best.h < 0 {
		for _, h := range slices.Clone(s.usedList) {
			try(int(h))
		}
	}
	return best
}

func (r *rescheduler) apply(c, to int) {
	s := r.s
	from := int(s.at[c])
	s.remove(c)
	s.add(c, to)
	r.moved[c] = true
	r.moves = append(r.moves, Move{Container: s.m.ctrs[c].id, From: s.m.hosts[from].name, To: s.m.hosts[to].name})
	r.idx = append(r.idx, c)
}

// emptyHosts tries hosts with the fewest containers first; a host is
// emptied when all its containers find places and the total drops.
func (r *rescheduler) emptyHosts() {
	s := r.s
	hosts := slices.Clone(s.usedList)
	slices.SortFunc(hosts, func(a, b int32) int {
		if c := cmp.Compare(len(s.pods[a]), len(s.pods[b])); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	for _, h := range hosts {
		if r.done() {
			return
		}
		pods := slices.Clone(s.pods[h])
		if len(pods) == 0 || len(r.moves)+len(pods) > r.cap || slices.ContainsFunc(pods, func(c int32) bool { return r.moved[c] }) {
			continue
		}
		before, mark := s.obj, len(r.moves)
		ok := true
		for _, c := range pods {
			b := r.best(int(c), int(h))
			if b.h < 0 {
				ok = false
				break
			}
			r.apply(int(c), b.h)
		}
		if ok && s.obj < before-1e-9 {
			continue
		}
		// undo in reverse: each step restores the state before it
		for i := len(r.moves) - 1; i >= mark; i-- {
			c := r.idx[i]
			s.remove(c)
			s.add(c, int(h))
			r.moved[c] = false
		}
		r.moves, r.idx = r.moves[:mark], r.idx[:mark]
	}
}

// coolHosts moves containers off the hosts with the highest penalty
// while a move lowers the total.
func (r *rescheduler) coolHosts() {
	s := r.s
	hosts := slices.Clone(s.usedList)
	slices.SortFunc(hosts, func(a, b int32) int {
		if c := cmp.Compare(s.pen[b], s.pen[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	for _, h := range hosts {
		if s.pen[h] <= 0 {
			return
		}
		for _, c := range slices.Clone(s.pods[h]) {
			if r.done() {
				return
			}
			if r.moved[c] {
				continue
			}
			if b := r.best(int(c), -1); b.h >= 0 && b.delta < -1e-9 {
				r.apply(int(c), b.h)
			}
		}
	}
}

// batch numbers the moves and groups consecutive ones into batches of at
// most inFlight whose state after all their stops keeps every rule (the
// state after the starts is the one the moves reach in order, which
// does). A container appears at most once in a batch.
func batch(m *Model, start []int32, moves []Move, inFlight int) []Move {
	out := slices.Clone(moves)
	if inFlight <= 1 {
		for i := range out {
			out[i].Step, out[i].Batch = i+1, i+1
		}
		return out
	}
	ck := newChecker(m, start)
	ids, hosts := m.containerIndex(), m.hostIndex()
	var open []int // moves of the open batch
	closeBatch := func() {
		for _, j := range open {
			ck.set(int32(ids[out[j].Container]), int32(hosts[out[j].To]))
		}
		open = open[:0]
	}
	b := 0
	for i := range out {
		c := ids[out[i].Container]
		out[i].Step = i + 1
		if len(open) > 0 && len(open) < inFlight && !slices.ContainsFunc(open, func(j int) bool { return out[j].Container == out[i].Container }) {
			ck.set(int32(c), -1)
			if ck.stopsOK(append(open, i), out, ids, hosts) {
				open = append(open, i)
				out[i].Batch = b
				continue
			}
			ck.set(int32(c), int32(hosts[out[i].From]))
		}
		closeBatch()
		b++
		ck.set(int32(c), -1)
		open = append(open, i)
		out[i].Batch = b
	}
	return out
}

// stopsOK says whether the checker's picture keeps every rule on the
// moves' source hosts and in their apps' spreads.
func (ck *checker) stopsOK(idx []int, moves []Move, ids, hosts map[string]int) bool {
	m := ck.m
	for _, j := range idx {
		c := ids[moves[j].Container]
		if len(ck.host(hosts[moves[j].From])) > 0 || len(ck.spread(int(m.kinds[m.ctrs[c].kind].app))) > 0 {
			return false
		}
	}
	return true
}

func (m *Model) containerIndex() map[string]int {
	out := make(map[string]int, len(m.ctrs))
	for c := range m.ctrs {
		out[m.ctrs[c].id] = c
	}
	return out
}

func (m *Model) hostIndex() map[string]int {
	out := make(map[string]int, len(m.hosts))
	for h := range m.hosts {
		out[m.hosts[h].name] = h
	}
	return out
}
