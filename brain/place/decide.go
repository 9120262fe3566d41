package place

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
)

// candidate is the best host found so far.
type candidate struct {
	host int
	e    eval
	ties int
}

func (c *Cluster) decide(req Request, commit bool) (Decision, error) {
	st := &c.st
	pc, err := st.compile(req)
	if err != nil {
		return Decision{}, err
	}
	if _, dup := st.byID[req.ID]; dup {
		return Decision{}, fmt.Errorf("request %q: id: already placed", req.ID)
	}
	strat := req.Strategy
	if strat == "" {
		strat = st.prof.Strategy
	}
	if strat == "" {
		strat = defaultStrategy(st.maxGPUs > 0)
	}
	if commit {
		st.shapes.observe(st, &pc)
	}
	rng := newRand(req.Seed, idHash(req.ID))
	dec := Decision{Strategy: strat}

	if pc.missing != "" {
		r := Reason("insufficient " + pc.missing)
		dec.Rejections = []ReasonCount{{Reason: r, Hosts: len(st.hosts)}}
		if req.Explain {
			for _, h := range st.hosts {
				dec.Hosts = append(dec.Hosts, HostVerdict{Host: h.name, Reason: r, Detail: "no host offers " + pc.missing})
			}
		}
		return dec, nil
	}
	borrowed, qok, qreason, qdetail := st.quotaCheck(&pc)
	if !qok {
		dec.Rejections = []ReasonCount{{Reason: qreason, Hosts: len(st.hosts)}}
		if req.Explain {
			for _, h := range st.hosts {
				dec.Hosts = append(dec.Hosts, HostVerdict{Host: h.name, Reason: qreason, Detail: qdetail})
			}
		}
		return dec, nil
	}
	pc.p.Borrowed = borrowed

	var tally [8]ReasonCount
	rejected := reasonTally(tally[:0])
	var sc scratch
	best := candidate{host: -1}
	n := len(st.hosts)
	start := 0
	if st.prof.SampleFeasible > 0 && n > 0 {
		start = rng.IntN(n)
	}
	for i := 0; i < n; i++ {
		hi := i
		if st.prof.SampleFeasible > 0 {
			hi = int(st.visit[(start+i)%n])
		}
		dec.Considered++
		ok, reason, detail := st.feasible(hi, &pc, req.Explain)
		if !ok {
			rejected.add(reason)
			if req.Explain {
				dec.Hosts = append(dec.Hosts, HostVerdict{Host: st.hosts[hi].name, Reason: reason, Detail: detail})
			}
			continue
		}
		dec.Feasible++
		e := st.evaluate(hi, &pc, strat, rng, &sc)
		if req.Explain {
			dec.Hosts = append(dec.Hosts, HostVerdict{Host: st.hosts[hi].name, Feasible: true, Score: st.scoreOf(strat, e)})
		}
		st.consider(&best, hi, e, rng)
		if st.prof.SampleFeasible > 0 && dec.Feasible >= st.prof.SampleFeasible {
			break
		}
	}
	dec.Rejections = rejected.sorted()
	if best.host < 0 {
		if req.Preempt {
			return c.preempt(pc, strat, rng, dec, commit)
		}
		return dec, nil
	}
	dec.Placed = true
	dec.Placement = st.finish(&pc, best.host, best.e)
	dec.Score = st.scoreOf(strat, best.e)
	if commit {
		st.bind(pc)
	}
	return dec, nil
}

// consider keeps the better of best and (hi, e); exact ties are broken
// uniformly at random (reservoir sampling), as kube-scheduler does.
func (st *state) consider(best *candidate, hi int, e eval, rng *rand.Rand) {
	if best.host < 0 {
		*best = candidate{host: hi, e: e, ties: 1}
		return
	}
	switch st.compare(e, best.e) {
	case 1:
		*best = candidate{host: hi, e: e, ties: 1}
	case 0:
		if st.prof.TiesByHostOrder {
			if hi < best.host {
				best.host, best.e = hi, e
			}
			return
		}
		best.ties++
		if rng.IntN(best.ties) == 0 {
			best.host, best.e = hi, e
		}
	}
}

// compare ranks two evaluations: 1 when a is better, -1 when worse.
func (st *state) compare(a, b eval) int {
	if steps := st.prof.ScoreSteps; steps > 0 {
		qa, qb := math.Floor(a.unit*float64(steps)), math.Floor(b.unit*float64(steps))
		switch {
		case qa > qb:
			return 1
		case qa < qb:
			return -1
		}
		return 0
	}
	const eps = 1e-9
	switch {
	case a.k1 > b.k1+eps:
		return 1
	case a.k1 < b.k1-eps:
		return -1
	case a.k2 > b.k2+eps:
		return 1
	case a.k2 < b.k2-eps:
		return -1
	}
	return 0
}

// finish binds the compiled request to host hi: GPU indices and host name.
func (st *state) finish(pc *placed, hi int, e eval) Placement {
	h := &st.hosts[hi]
	pc.host = hi
	pc.p.Host = h.name
	switch {
	case pc.p.GPU.Count > 0:
		pc.p.GPUIndices = wholeGPUs(h, pc.p.GPU.Count)
	case pc.p.GPU.SharedMilli > 0:
		g := e.gpu
		if g < 0 {
			g = st.pickGPUBestFit(h, pc)
		}
		pc.p.GPUIndices = []int{g}
	default:
		pc.p.GPUIndices = nil
	}
	return pc.p
}

func (st *state) scoreOf(strat Strategy, e eval) Score {
	s := Score{Total: e.k1}
	switch strat {
	case StrategyFGD, StrategyFGDPack:
		s.Parts = []ScorePart{
			{Name: "fragmentation before (milli-gpu)", Value: e.fragBefore},
			{Name: "fragmentation after (milli-gpu)", Value: e.fragAfter},
			{Name: "fragmentation growth (milli-gpu)", Value: e.fragAfter - e.fragBefore},
		}
		if strat == StrategyFGDPack {
			s.Parts = append(s.Parts, ScorePart{Name: "growth step (of 100)", Value: e.k1},
				ScorePart{Name: "-free milli-gpu after", Value: e.k2})
		} else {
			s.Parts = append(s.Parts, ScorePart{Name: "sigmoid(-growth/1000)", Value: e.unit})
		}
	default:
		s.Parts = []ScorePart{{Name: string(strat), Value: e.unit}}
	}
	if steps := st.prof.ScoreSteps; steps > 0 {
		s.Total = math.Floor(e.unit * float64(steps))
		s.Parts = append(s.Parts, ScorePart{Name: fmt.Sprintf("quantised to %d steps", steps), Value: s.Total})
	}
	return s
}

// quotaCheck applies the request's group quota. It returns whether the
// placement would be borrowed, whether it is allowed, and why not.
func (st *state) quotaCheck(pc *placed) (borrowed, ok bool, reason Reason, detail string) {
	qi, has := st.byGroup[pc.p.Group]
	if !has || pc.p.Group == "" {
		return false, true, "", ""
	}
	q := &st.quotas[qi]
	over := -1 // first dimension over quota; len(dims) = GPU
	for d, lim := range q.limit {
		if lim >= 0 && q.used[d]+pc.demand[d] > lim {
			over = d
			break
		}
	}
	if over < 0 && q.GPUMilli >= 0 && q.gpuUse+pc.p.GPU.Milli() > q.GPUMilli {
		over = len(st.dims)
	}
	if over < 0 {
		return false, true, "", ""
	}
	name := "gpu"
	if over < len(st.dims) {
		name = st.dims[over]
	}
	if !st.prof.Lending {
		return false, false, Reason("quota " + q.Group + " " + name), fmt.Sprintf("group %s would exceed its %s quota", q.Group, name)
	}
	// Borrowing: in every dimension the request uses, the total run over
	// quotas must stay within the total left unused under quotas.
	for d := 0; d <= len(st.dims); d++ {
		var add int64
		if d < len(st.dims) {
			add = pc.demand[d]
		} else {
			add = pc.p.GPU.Milli()
		}
		if add == 0 {
			continue
		}
		var overSum, underSum int64
		capped := false
		for gi := range st.quotas {
			g := &st.quotas[gi]
			lim, used := g.GPUMilli, g.gpuUse
			if d < len(st.dims) {
				lim, used = g.limit[d], g.used[d]
			}
			if lim < 0 {
				continue
			}
			if gi == qi {
				capped = true
				used += add
			}
			if used > lim {
				overSum += used - lim
			} else {
				underSum += lim - used
			}
		}
		if capped && overSum > underSum {
			dn := "gpu"
			if d < len(st.dims) {
				dn = st.dims[d]
			}
			return true, false, Reason("quota " + q.Group + " " + dn + ": nothing left to borrow"),
				fmt.Sprintf("borrowing would run %d over quotas with %d unused", overSum, underSum)
		}
	}
	return true, true, "", ""
}

// reasonTally counts rejections by reason. A request meets a handful of
// distinct reasons over thousands of hosts, mostly the same Reason values
// (same string data), so a short slice searched in order beats hashing the
// reason once per rejected host.
type reasonTally []ReasonCount

func (t *reasonTally) add(r Reason) {
	for i := range *t {
		if (*t)[i].Reason == r {
			(*t)[i].Hosts++
			return
		}
	}
	*t = append(*t, ReasonCount{Reason: r, Hosts: 1})
}

// sorted returns the counts, most hosts first, then by reason.
func (t reasonTally) sorted() []ReasonCount {
	out := slices.Clone(t)
	if out == nil {
		out = []ReasonCount{}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Hosts != out[j].Hosts {
			return out[i].Hosts > out[j].Hosts
		}
		return out[i].Reason < out[j].Reason
	})
	return out
}
