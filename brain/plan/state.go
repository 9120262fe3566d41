package plan

import (
	"slices"
)

// State is a placement of a model's containers with its objective kept
// incrementally. It is the planner's bookkeeping; Check is the
// independent validator.
type State struct {
	m  *Model
	at []int32 // per container: host, -1 when not placed
	// load is per host, dims × points, flattened (d*points + t).
	load  [][]int64
	pods  [][]int32    // per host: containers on it
	count [][]appCount // per host: apps on it and how many
	dom   [][][]int32  // per app, per spread of the app: count per domain
	pen   []float64    // per host: its penalty (without the fixed cost)
	obj   float64      // total objective
	used  int          // hosts running something
	// part is per host, per penalised dimension, the sum over points of
	// the (interpolated) penalty, unweighted.
	part [][]float64
	// usedList lists the hosts running something; usedPos[h] is h's
	// index in it, -1 when h is empty.
	usedList []int32
	usedPos  []int32
}

type appCount struct {
	app, n int32
}

// NewState is an empty placement of m.
func NewState(m *Model) *State {
	s := &State{
		m:       m,
		at:      make([]int32, len(m.ctrs)),
		load:    make([][]int64, len(m.hosts)),
		pods:    make([][]int32, len(m.hosts)),
		count:   make([][]appCount, len(m.hosts)),
		dom:     make([][][]int32, len(m.apps)),
		pen:     make([]float64, len(m.hosts)),
		part:    make([][]float64, len(m.hosts)),
		usedPos: make([]int32, len(m.hosts)),
	}
	for h := range s.usedPos {
		s.usedPos[h] = -1
	}
	for i := range s.at {
		s.at[i] = -1
	}
	for a, sps := range m.spreads {
		for _, sp := range sps {
			s.dom[a] = append(s.dom[a], make([]int32, m.labels[sp.label].domains))
		}
	}
	return s
}

// Clone copies the state (the model is shared).
func (s *State) Clone() *State {
	c := *s
	c.at = slices.Clone(s.at)
	c.load = make([][]int64, len(s.load))
	c.pods = make([][]int32, len(s.pods))
	c.count = make([][]appCount, len(s.count))
	for h := range s.load {
		c.load[h] = slices.Clone(s.load[h])
		c.pods[h] = slices.Clone(s.pods[h])
		c.count[h] = slices.Clone(s.count[h])
	}
	c.dom = make([][][]int32, len(s.dom))
	for a := range s.dom {
		for _, d := range s.dom[a] {
			c.dom[a] = append(c.dom[a], slices.Clone(d))
		}
	}
	c.pen = slices.Clone(s.pen)
	c.usedList = slices.Clone(s.usedList)
	c.usedPos = slices.Clone(s.usedPos)
	c.part = make([][]float64, len(s.part))
	for h := range s.part {
		c.part[h] = slices.Clone(s.part[h])
	}
	return &c
}

// Objective is the state's cost (see the package doc).
func (s *State) Objective() float64 { return s.obj }

// HostOf is container c's host, -1 when not placed.
func (s *State) HostOf(c int) int { return int(s.at[c]) }

// Breakdown splits the objective: hosts used, their cost, the penalty,
// and hosts used per shape (in the model's shape order).
type Breakdown struct {
	HostsUsed   int     `json:"hosts_used"`
	HostCost    float64 `json:"host_cost"`
	Penalty     float64 `json:"penalty"`
	Objective   float64 `json:"objective"`
	Unplaced    int     `json:"unplaced"`
	UsedByShape []int   `json:"used_by_shape"`
}

// Breakdown recomputes the objective's parts from the placement.
func (s *State) Breakdown() Breakdown {
	b := Breakdown{UsedByShape: make([]int, len(s.m.shapes))}
	for h, pods := range s.pods {
		if len(pods) == 0 {
			continue
		}
		b.HostsUsed++
		b.UsedByShape[s.m.hosts[h].shape]++
		b.HostCost += s.m.hosts[h].cost
		b.Penalty += s.pen[h]
	}
	for _, h := range s.at {
		if h < 0 {
			b.Unplaced++
		}
	}
	b.Objective = b.HostCost + b.Penalty
	return b
}

func (s *State) appCount(h int, app int32) int32 {
	for _, ac := range s.count[h] {
		if ac.app == app {
			return ac.n
		}
	}
	return 0
}

func (s *State) bumpApp(h int, app int32, by int32) {
	cs := s.count[h]
	for i := range cs {
		if cs[i].app == app {
			cs[i].n += by
			if cs[i].n == 0 {
				s.count[h] = slices.Delete(cs, i, i+1)
			}
			return
		}
	}
	s.count[h] = append(cs, appCount{app: app, n: by})
}

// rulesOK says whether app may join host h under the anti-affinity rules.
func (s *State) rulesOK(app int32, h int) bool {
	for _, r := range s.m.rules[app] {
		switch r.role {
		case roleSelf:
			if s.appCount(h, app) > r.max {
				return false
			}
		case roleAsApp:
			if s.appCount(h, r.other) > r.max {
				return false
			}
		default:
			if s.appCount(h, r.other) > 0 && s.appCount(h, app)+1 > r.max {
				return false
			}
		}
	}
	return true
}

// spreadOK says whether app's spreads hold after one instance leaves host
// from (-1: none) and, then, one arrives on host to (-1: none); both the
// state in between and the end are checked.
func (s *State) spreadOK(app int32, from, to int) bool {
	for i, sp := range s.m.spreads[app] {
		ld := &s.m.labels[sp.label]
		counts := s.dom[app][i]
		fd, td := int32(-1), int32(-1)
		if from >= 0 {
			fd = ld.hostDom[from]
		}
		if to >= 0 {
			td = ld.hostDom[to]
			if td < 0 {
				return false
			}
		}
		if from >= 0 && fd >= 0 && !skewOK(counts, fd, -1, -1, sp.maxSkew) {
			return false
		}
		if to >= 0 && !skewOK(counts, fd, td, +1, sp.maxSkew) {
			return false
		}
	}
	return true
}

// skewOK checks max - min <= maxSkew over counts with one taken from
// domain minus (-1: none) and, when plus >= 0, one added to domain plus.
func skewOK(counts []int32, minus, plus int32, add int32, maxSkew int32) bool {
	lo, hi := int32(1<<30), int32(-1)
	for d, c := range counts {
		if int32(d) == minus {
			c--
		}
		if int32(d) == plus && add > 0 {
			c++
		}
		lo, hi = min(lo, c), max(hi, c)
	}
	return len(counts) == 0 || hi-lo <= maxSkew
}

// partOf is the unweighted penalty sum over points of one row of load
// (capacity capac) for penalty p.
func (p *penDim) partOf(row []int64, capac int64) float64 {
	if capac <= 0 {
		return 0
	}
	inv := 1 / float64(capac)
	thr := int64(p.Target * float64(capac))
	var part float64
	for _, v := range row {
		if v > thr {
			part += p.at(float64(v) * inv)
		}
	}
	return part
}

// refresh recomputes host h's penalty parts from its load and returns its
// penalty.
func (s *State) refresh(h int) float64 {
	m := s.m
	if len(m.pens) == 0 {
		return 0
	}
	if s.part[h] == nil {
		s.part[h] = make([]float64, len(m.pens))
	}
	l := s.load[h]
	var sum float64
	for pi := range m.pens {
		p := &m.pens[pi]
		s.part[h][pi] = p.partOf(l[p.dim*m.points:(p.dim+1)*m.points], m.hosts[h].capac[p.dim])
		sum += p.Weight * s.part[h][pi]
	}
	return m.hosts[h].cost * sum / float64(m.points)
}

// rulesFit says whether container c may join host h by selector,
// anti-affinity and spread (as a move from host from, or -1).
func (s *State) rulesFit(c, h, from int) bool {
	m := s.m
	k := &m.kinds[m.ctrs[c].kind]
	if len(k.selector) > 0 && !m.selectorOK(k, h) {
		return false
	}
	if !s.rulesOK(k.app, h) {
		return false
	}
	return len(m.spreads[k.app]) == 0 || s.spreadOK(k.app, from, h)
}

// evalAdd is, in one pass over the kind's curves and without changing
// anything, whether container c fits host h's capacity at every point,
// the objective change of adding it (the fixed cost when h is empty),
// how much it raises the host's peaks (summed over dimensions, as shares
// of capacity) and how full the host is (mean share over points, summed
// over the dimensions c uses).
func (s *State) evalAdd(c, h int) (delta, rise, fill float64, ok bool) {
	m := s.m
	k := &m.kinds[m.ctrs[c].kind]
	l := s.load[h]
	capac := m.hosts[h].capac
	var penSum float64
	for pi := range m.pens {
		if k.dem[m.pens[pi].dim] == nil && s.part[h] != nil {
			penSum += m.pens[pi].Weight * s.part[h][pi]
		}
	}
	for d, row := range k.dem {
		if row == nil {
			continue
		}
		cd := capac[d]
		if k.peak[d] > cd {
			return 0, 0, 0, false
		}
		var p *penDim
		if pi := m.penOf[d]; pi >= 0 {
			p = &m.pens[pi]
		}
		inv := 1 / float64(cd)
		thr := cd
		if p != nil {
			thr = int64(p.Target * float64(cd))
		}
		var before, after, sum int64
		var part float64
		if l == nil {
			for _, v := range row {
				after = max(after, v)
				if v > thr {
					part += p.at(float64(v) * inv)
				}
			}
		} else {
			old := l[d*m.points : (d+1)*m.points]
			for t, v := range row {
				o := old[t]
				n := o + v
				if n > cd {
					return 0, 0, 0, false
				}
				before, after = max(before, o), max(after, n)
				sum += o
				if n > thr {
					part += p.at(float64(n) * inv)
				}
			}
		}
		rise += float64(after-before) * inv
		fill += float64(sum) * inv / float64(m.points)
		if p != nil {
			penSum += p.Weight * part
		}
	}
	delta = m.hosts[h].cost*penSum/float64(m.points) - s.pen[h]
	if len(s.pods[h]) == 0 {
		delta += m.hosts[h].cost
	}
	return delta, rise, fill, true
}

// tryAdd says whether container c can join host h (rules, and spread as
// a move from host from or -1; capacity at every point) and the
// objective change of adding it.
func (s *State) tryAdd(c int, h int, from int) (float64, bool) {
	if !s.rulesFit(c, h, from) {
		return 0, false
	}
	delta, _, _, ok := s.evalAdd(c, h)
	return delta, ok
}

// removeDelta is the objective change of taking container c off its host.
func (s *State) removeDelta(c int) float64 {
	m := s.m
	h := int(s.at[c])
	if len(s.pods[h]) == 1 {
		return -m.hosts[h].cost - s.pen[h]
	}
	if len(m.pens) == 0 {
		return 0
	}
	k := &m.kinds[m.ctrs[c].kind]
	l := s.load[h]
	capac := m.hosts[h].capac
	var penSum float64
	for pi := range m.pens {
		p := &m.pens[pi]
		row := k.dem[p.dim]
		if row == nil {
			penSum += p.Weight * s.part[h][pi]
			continue
		}
		cd := capac[p.dim]
		inv := 1 / float64(cd)
		thr := int64(p.Target * float64(cd))
		old := l[p.dim*m.points : (p.dim+1)*m.points]
		var part float64
		for t, v := range row {
			if n := old[t] - v; n > thr {
				part += p.at(float64(n) * inv)
			}
		}
		penSum += p.Weight * part
	}
	return m.hosts[h].cost*penSum/float64(m.points) - s.pen[h]
}

// Place puts container c (not placed) on host h when it fits; it reports
// whether it did.
func (s *State) Place(c, h int) bool {
	if s.at[c] >= 0 {
		return false
	}
	if _, ok := s.tryAdd(c, h, -1); !ok {
		return false
	}
	s.add(c, h)
	return true
}

// add binds c to h, which the caller has checked.
func (s *State) add(c, h int) {
	m := s.m
	k := &m.kinds[m.ctrs[c].kind]
	if s.load[h] == nil {
		s.load[h] = make([]int64, len(m.dims)*m.points)
	}
	l := s.load[h]
	for d, row := range k.dem {
		off := d * m.points
		for t, v := range row {
			l[off+t] += v
		}
	}
	if len(s.pods[h]) == 0 {
		s.used++
		s.obj += m.hosts[h].cost
		s.usedPos[h] = int32(len(s.usedList))
		s.usedList = append(s.usedList, int32(h))
	}
	s.pods[h] = append(s.pods[h], int32(c))
	s.at[c] = int32(h)
	s.bumpApp(h, k.app, 1)
	s.bumpDomain(k.app, h, 1)
	np := s.refresh(h)
	s.obj += np - s.pen[h]
	s.pen[h] = np
}

// remove takes c off its host.
func (s *State) remove(c int) {
	m := s.m
	h := int(s.at[c])
	k := &m.kinds[m.ctrs[c].kind]
	l := s.load[h]
	for d, row := range k.dem {
		off := d * m.points
		for t, v := range row {
			l[off+t] -= v
		}
	}
	pods := s.pods[h]
	i := slices.Index(pods, int32(c))
	pods[i] = pods[len(pods)-1]
	s.pods[h] = pods[:len(pods)-1]
	s.at[c] = -1
	s.bumpApp(h, k.app, -1)
	s.bumpDomain(k.app, h, -1)
	np := 0.0
	if len(s.pods[h]) == 0 {
		s.used--
		s.obj -= m.hosts[h].cost
		clear(l)
		i, last := s.usedPos[h], s.usedList[len(s.usedList)-1]
		s.usedList[i] = last
		s.usedPos[last] = i
		s.usedList = s.usedList[:len(s.usedList)-1]
		s.usedPos[h] = -1
	} else {
		np = s.refresh(h)
	}
	s.obj += np - s.pen[h]
	s.pen[h] = np
}

func (s *State) bumpDomain(app int32, h int, by int32) {
	for i, sp := range s.m.spreads[app] {
		if d := s.m.labels[sp.label].hostDom[h]; d >= 0 {
			s.dom[app][i][d] += by
		}
	}
}

// Move takes container c from its host to host h when the move keeps
// every rule (in between, too); it reports whether it did.
func (s *State) Move(c, h int) bool {
	from := int(s.at[c])
	if from < 0 || from == h {
		return false
	}
	if !s.canMove(c, h) {
		return false
	}
	s.remove(c)
	s.add(c, h)
	return true
}

func (s *State) canMove(c, h int) bool {
	_, ok := s.tryAdd(c, h, int(s.at[c]))
	return ok
}

// FromExisting places every container that runs now on its host, as it
// is, checking nothing: Check reports what the placement breaks.
func FromExisting(m *Model) *State {
	s := NewState(m)
	for c := range m.ctrs {
		h := int(m.ctrs[c].existing)
		if h < 0 {
			continue
		}
		s.add(c, h)
	}
	return s
}
