package plan

import (
	"fmt"
	"math"
	"sort"
)

// Bound is a lower bound on the objective of any placement of a model's
// containers (see the package doc).
type Bound struct {
	// Value is the bound; HostCost and Penalty its parts.
	Value    float64 `json:"value"`
	HostCost float64 `json:"host_cost"`
	Penalty  float64 `json:"penalty"`
	// Hosts is the relaxation's host count per shape (fractional).
	Hosts []float64 `json:"hosts_by_shape"`
	// Method is "relaxation" or, with three or more shapes,
	// "capacity cover" (no penalty).
	Method string `json:"method"`
}

// Shapes describes the model's host shapes, in the order Bound and
// Breakdown use.
func (m *Model) Shapes() []string {
	out := make([]string, len(m.shapes))
	for i, s := range m.shapes {
		desc := fmt.Sprintf("cost %g", s.cost)
		for d, v := range s.capac {
			desc += fmt.Sprintf(" %s %d", m.dims[d], v)
		}
		out[i] = fmt.Sprintf("%s (%d hosts)", desc, s.hosts)
	}
	return out
}

// relax is the relaxation's data: the cluster's demand per dimension and
// point, and each dimension's peak.
type relax struct {
	m    *Model
	load [][]float64
	peak []float64
	pen  []*penDim // per dim, nil when not penalised
}

func newRelax(m *Model) *relax {
	r := &relax{m: m, load: make([][]float64, len(m.dims)), peak: make([]float64, len(m.dims)), pen: make([]*penDim, len(m.dims))}
	for d := range m.dims {
		r.load[d] = make([]float64, m.points)
	}
	for _, c := range m.ctrs {
		k := &m.kinds[c.kind]
		for d, row := range k.dem {
			for t, v := range row {
				r.load[d][t] += float64(v)
			}
		}
	}
	for d := range m.dims {
		for _, v := range r.load[d] {
			r.peak[d] = max(r.peak[d], v)
		}
	}
	for i := range m.pens {
		r.pen[m.pens[i].dim] = &m.pens[i]
	}
	return r
}

// LowerBound computes the model's bound. It fails when the hosts cannot
// hold the demand even with divisible containers.
func LowerBound(m *Model) (Bound, error) {
	r := newRelax(m)
	for d, p := range r.peak {
		var capac float64
		for _, s := range m.shapes {
			capac += float64(s.hosts) * float64(s.capac[d])
		}
		if p > capac {
			return Bound{}, fmt.Errorf("bound: %s: the cluster's demand peaks at %.0f, all hosts hold %.0f", m.dims[d], p, capac)
		}
	}
	var b Bound
	switch len(m.shapes) {
	case 0:
		return Bound{Method: "relaxation"}, nil
	case 1:
		b = r.one()
	case 2:
		b = r.two()
	default:
		b = r.cover()
	}
	// Ternary search ends within a hair of the relaxation's minimum; keep
	// the bound below it.
	b.Value -= 1e-9 * math.Abs(b.Value)
	return b, nil
}

// need is the least n of shape s for dimension peaks p after other
// shapes' capacity given by held.
func (r *relax) least(s int, held []float64) float64 {
	lo := 0.0
	for d, p := range r.peak {
		c := float64(r.m.shapes[s].capac[d])
		rest := p - held[d]
		if rest <= 0 {
			continue
		}
		if c == 0 {
			return math.Inf(1)
		}
		lo = max(lo, rest/c)
	}
	return lo
}

func (r *relax) one() Bound {
	s := r.m.shapes[0]
	lo := r.least(0, make([]float64, len(r.peak)))
	n := ternary(lo, float64(s.hosts), func(n float64) float64 { return r.f([]float64{n}).Value })
	return r.f([]float64{n})
}

func (r *relax) two() Bound {
	s0, s1 := r.m.shapes[0], r.m.shapes[1]
	full1 := make([]float64, len(r.peak))
	for d := range full1 {
		full1[d] = float64(s1.hosts) * float64(s1.capac[d])
	}
	inner := func(n0 float64) float64 {
		held := make([]float64, len(r.peak))
		for d := range held {
			held[d] = n0 * float64(s0.capac[d])
		}
		lo := r.least(1, held)
		if lo > float64(s1.hosts) {
			return math.Inf(1)
		}
		return ternary(lo, float64(s1.hosts), func(n1 float64) float64 { return r.f([]float64{n0, n1}).Value })
	}
	lo0 := r.least(0, full1)
	n0 := ternary(lo0, float64(s0.hosts), func(n0 float64) float64 {
		n1 := inner(n0)
		if math.IsInf(n1, 1) {
			return math.Inf(1)
		}
		return r.f([]float64{n0, n1}).Value
	})
	return r.f([]float64{n0, inner(n0)})
}

// ternary minimises a convex f on [lo, hi] by golden-section search and
// returns the argument.
func ternary(lo, hi float64, f func(float64) float64) float64 {
	if hi <= lo {
		return lo
	}
	const g = 0.6180339887498949
	a, b := hi-g*(hi-lo), lo+g*(hi-lo)
	fa, fb := f(a), f(b)
	for range 60 {
		if fa <= fb {
			hi, b, fb = b, a, fa
			a = hi - g*(hi-lo)
			fa = f(a)
		} else {
			lo, a, fa = a, b, fb
			b = lo + g*(hi-lo)
			fb = f(b)
		}
	}
	return (lo + hi) / 2
}

// f is the relaxation's cost with n[s] hosts of each shape, loads split
// among shapes at every point by water-filling.
func (r *relax) f(n []float64) Bound {
	m := r.m
	b := Bound{Hosts: append([]float64(nil), n...), Method: "relaxation"}
	for s, ns := range n {
		b.HostCost += ns * m.shapes[s].cost
	}
	for d := range m.dims {
		var capac float64
		for s, ns := range n {
			capac += ns * float64(m.shapes[s].capac[d])
		}
		if r.peak[d] > capac*(1+1e-12) {
			b.Value = math.Inf(1)
			return b
		}
		p := r.pen[d]
		if p == nil {
			continue
		}
		for _, l := range r.load[d] {
			b.Penalty += r.fill(p, d, n, l, capac)
		}
	}
	b.Value = b.HostCost + b.Penalty
	return b
}

// fill is the least penalty of load l in dimension d spread over n hosts
// per shape (capacity capac in all): every shape's hosts at an equal
// utilisation u_s, the marginal penalties equal (KKT), found by bisection
// on the marginal.
func (r *relax) fill(p *penDim, d int, n []float64, l, capac float64) float64 {
	if l <= p.Target*capac {
		return 0
	}
	m := r.m
	pts := float64(m.points)
	// utilisation of shape s at marginal lambda: phi'(u) = lambda / rate_s
	util := func(s int, lambda float64) float64 {
		rate := m.shapes[s].cost * p.Weight / (pts * float64(m.shapes[s].capac[d]))
		return min(1, p.slopeInverse(lambda/rate))
	}
	held := func(lambda float64) float64 {
		var sum float64
		for s, ns := range n {
			if c := float64(m.shapes[s].capac[d]); c > 0 && ns > 0 {
				sum += ns * c * util(s, lambda)
			}
		}
		return sum
	}
	// lambda lies between 0 and the largest marginal at full hosts
	lo, hi := 0.0, 0.0
	for s, ns := range n {
		if c := float64(m.shapes[s].capac[d]); c > 0 && ns > 0 {
			rate := m.shapes[s].cost * p.Weight / (pts * c)
			hi = max(hi, rate*p.Steepness*math.Expm1(p.Steepness*(1-p.Target)))
		}
	}
	for range 64 {
		mid := (lo + hi) / 2
		if held(mid) < l {
			lo = mid
		} else {
			hi = mid
		}
	}
	// At lo the shapes hold a hair less than l; the penalty there is a
	// hair below the optimum's, which keeps the bound a bound.
	var pen float64
	for s, ns := range n {
		if c := float64(m.shapes[s].capac[d]); c > 0 && ns > 0 {
			pen += ns * m.shapes[s].cost * p.Weight / pts * p.phi(util(s, lo))
		}
	}
	return pen
}

// cover is the cheapest fractional cover of every dimension's peak,
// the largest over dimensions; no penalty.
func (r *relax) cover() Bound {
	m := r.m
	b := Bound{Method: "capacity cover", Hosts: make([]float64, len(m.shapes))}
	for d, p := range r.peak {
		order := make([]int, 0, len(m.shapes))
		for s := range m.shapes {
			if m.shapes[s].capac[d] > 0 {
				order = append(order, s)
			}
		}
		sort.SliceStable(order, func(i, j int) bool {
			a, c := m.shapes[order[i]], m.shapes[order[j]]
			return a.cost/float64(a.capac[d]) < c.cost/float64(c.capac[d])
		})
		need := p
		var cost float64
		hosts := make([]float64, len(m.shapes))
		for _, s := range order {
			if need <= 0 {
				break
			}
			sh := m.shapes[s]
			n := min(float64(sh.hosts), need/float64(sh.capac[d]))
			hosts[s] = n
			cost += n * sh.cost
			need -= n * float64(sh.capac[d])
		}
		if cost > b.Value {
			b.Value, b.HostCost, b.Hosts = cost, cost, hosts
		}
	}
	return b
}
