package place

import (
	"fmt"
	"slices"
)

// oracle is a brute-force model of a cluster: a list of hosts and
// placements, every check recomputed from scratch. It shares no code with
// the incremental state it checks.
type oracle struct {
	hosts  []Host
	prof   Profile
	placed []Placement
}

func (o *oracle) host(name string) (Host, bool) {
	for _, h := range o.hosts {
		if h.Name == name {
			return h, true
		}
	}
	return Host{}, false
}

// usage sums a host's placements per dimension at curve point t (t < 0:
// the peak of flat demands only is irrelevant; callers loop over points).
func (o *oracle) usageAt(ps []Placement, host string, dim string, t int) int64 {
	var sum int64
	for _, p := range ps {
		if p.Host != host {
			continue
		}
		if pts, ok := p.Curves[dim]; ok && t >= 0 {
			sum += pts[t]
		} else if ok {
			sum += slices.Max(pts)
		} else {
			sum += p.Demand[dim]
		}
	}
	return sum
}

// valid checks a whole set of placements against capacity, GPUs, models
// and anti-affinity; it returns the first violation.
func (o *oracle) valid(ps []Placement) error {
	points := max(o.prof.CurvePoints, 1)
	for _, h := range o.hosts {
		dims := map[string]bool{}
		for _, p := range ps {
			if p.Host != h.Name {
				continue
			}
			for d := range p.Demand {
				dims[d] = true
			}
			for d := range p.Curves {
				dims[d] = true
			}
		}
		for d := range dims {
			for t := 0; t < points; t++ {
				if u := o.usageAt(ps, h.Name, d, t); u > h.Capacity[d] {
					return fmt.Errorf("host %s: %s at point %d: %d > capacity %d", h.Name, d, t, u, h.Capacity[d])
				}
			}
		}
		gpu := make([]int64, h.GPUs)
		for _, p := range ps {
			if p.Host != h.Name {
				continue
			}
			want := p.GPU.Count
			per := int64(GPUMilliPerDevice)
			if p.GPU.SharedMilli > 0 {
				want, per = 1, p.GPU.SharedMilli
			}
			if len(p.GPUIndices) != want {
				return fmt.Errorf("placement %s: %d gpu indices, want %d", p.ID, len(p.GPUIndices), want)
			}
			if want > 0 && len(p.GPU.Models) > 0 && !slices.Contains(p.GPU.Models, h.GPUModel) {
				return fmt.Errorf("placement %s: model %s not in %v", p.ID, h.GPUModel, p.GPU.Models)
			}
			for _, i := range p.GPUIndices {
				if i < 0 || i >= h.GPUs {
					return fmt.Errorf("placement %s: gpu index %d out of range", p.ID, i)
				}
				gpu[i] += per
			}
		}
		for i, g := range gpu {
			if g > GPUMilliPerDevice {
				return fmt.Errorf("host %s: gpu %d holds %d milli", h.Name, i, g)
			}
		}
		count := map[string]int{}
		for _, p := range ps {
			if p.Host == h.Name && p.App != "" {
				count[p.App]++
			}
		}
		for _, r := range o.prof.AntiAffinity {
			if r.App == r.Other {
				if count[r.App] > r.MaxOther+1 {
					return fmt.Errorf("host %s: %d of %s, cap %d", h.Name, count[r.App], r.App, r.MaxOther+1)
				}
			} else if count[r.App] > 0 && count[r.Other] > r.MaxOther {
				return fmt.Errorf("host %s: %s runs with %d of %s, max %d", h.Name, r.App, count[r.Other], r.Other, r.MaxOther)
			}
		}
	}
	// Own (not borrowed) placements within quota.
	for _, q := range o.prof.Quotas {
		sum := map[string]int64{}
		var g int64
		for _, p := range ps {
			if p.Group == q.Group && !p.Borrowed {
				for d := range q.Limit {
					sum[d] += peakOf(p.Request, d)
				}
				g += p.GPU.Milli()
			}
		}
		for d, lim := range q.Limit {
			if sum[d] > lim {
				return fmt.Errorf("group %s: own %s %d over quota %d", q.Group, d, sum[d], lim)
			}
		}
		if q.GPUMilli >= 0 && g > q.GPUMilli {
			return fmt.Errorf("group %s: own gpu %d over quota %d", q.Group, g, q.GPUMilli)
		}
	}
	return nil
}

// spreadOK checks the topology-spread rule for placing p on top of ps.
func (o *oracle) spreadOK(ps []Placement, p Placement) error {
	h, _ := o.host(p.Host)
	for _, s := range o.prof.Spreads {
		if s.App != p.App {
			continue
		}
		dom, ok := h.Labels[s.DomainLabel]
		if !ok {
			return fmt.Errorf("spread %s: host %s has no %s label", s.App, h.Name, s.DomainLabel)
		}
		counts := map[string]int{}
		for _, hh := range o.hosts {
			if v, ok := hh.Labels[s.DomainLabel]; ok {
				counts[v] += 0
			}
		}
		for _, q := range ps {
			if q.App != s.App {
				continue
			}
			qh, _ := o.host(q.Host)
			if v, ok := qh.Labels[s.DomainLabel]; ok {
				counts[v]++
			}
		}
		lo := -1
		for _, n := range counts {
			if lo < 0 || n < lo {
				lo = n
			}
		}
		if counts[dom]+1-lo > s.MaxSkew {
			return fmt.Errorf("spread %s: domain %s would hold %d, min %d, skew %d", s.App, dom, counts[dom]+1, lo, s.MaxSkew)
		}
	}
	return nil
}

// peakOf is a request's peak demand in dim (its curve's peak if curved).
func peakOf(r Request, dim string) int64 {
	if pts, ok := r.Curves[dim]; ok {
		return slices.Max(pts)
	}
	return r.Demand[dim]
}

func selectorOK(h Host, sel map[string]string) bool {
	for k, v := range sel {
		if got, ok := h.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// quotaAllows reports whether req may be placed (own or borrowed) on top
// of ps, by the profile's quota and lending rules.
func (o *oracle) quotaAllows(ps []Placement, req Request) (own, borrowed bool) {
	var q *Quota
	for i := range o.prof.Quotas {
		if o.prof.Quotas[i].Group == req.Group {
			q = &o.prof.Quotas[i]
		}
	}
	if q == nil || req.Group == "" {
		return true, false
	}
	use := func(group, dim string) int64 {
		var s int64
		for _, p := range ps {
			if p.Group == group {
				if dim == "gpu" {
					s += p.GPU.Milli()
				} else {
					s += peakOf(p.Request, dim)
				}
			}
		}
		return s
	}
	need := func(dim string) int64 {
		if dim == "gpu" {
			return req.GPU.Milli()
		}
		return peakOf(req, dim)
	}
	limit := func(q *Quota, dim string) (int64, bool) {
		if dim == "gpu" {
			return q.GPUMilli, q.GPUMilli >= 0
		}
		v, ok := q.Limit[dim]
		return v, ok
	}
	dims := []string{"gpu"}
	for d := range req.Demand {
		dims = append(dims, d)
	}
	for d := range req.Curves {
		dims = append(dims, d)
	}
	for d := range q.Limit {
		dims = append(dims, d)
	}
	within := true
	for _, d := range dims {
		if lim, ok := limit(q, d); ok && use(q.Group, d)+need(d) > lim {
			within = false
		}
	}
	if within {
		return true, false
	}
	if !o.prof.Lending {
		return false, false
	}
	for _, d := range dims {
		if need(d) == 0 {
			continue
		}
		var over, under int64
		capped := false
		for i := range o.prof.Quotas {
			g := &o.prof.Quotas[i]
			lim, ok := limit(g, d)
			if !ok {
				continue
			}
			u := use(g.Group, d)
			if g.Group == req.Group {
				u += need(d)
				capped = true
			}
			if u > lim {
				over += u - lim
			} else {
				under += lim - u
			}
		}
		if capped && over > under {
			return false, false
		}
	}
	return false, true
}

// fitsSomewhere reports whether req could go on some host without
// evictions, by trying every host and every device choice.
func (o *oracle) fitsSomewhere(req Request) (string, bool) {
	own, borrowed := o.quotaAllows(o.placed, req)
	if !own && !borrowed {
		return "", false
	}
	for _, h := range o.hosts {
		if !selectorOK(h, req.Selector) {
			continue
		}
		for _, idx := range deviceChoices(h, o.placed, req) {
			p := Placement{Request: req, Host: h.Name, GPUIndices: idx, Borrowed: borrowed}
			all := append(slices.Clone(o.placed), p)
			if o.valid(all) == nil && o.spreadOK(o.placed, p) == nil {
				return h.Name, true
			}
		}
	}
	return "", false
}

// deviceChoices lists candidate GPU index sets for req on h.
func deviceChoices(h Host, ps []Placement, req Request) [][]int {
	switch {
	case req.GPU.SharedMilli > 0:
		var out [][]int
		for i := 0; i < h.GPUs; i++ {
			out = append(out, []int{i})
		}
		return out
	case req.GPU.Count > 0:
		busy := make([]bool, h.GPUs)
		for _, p := range ps {
			if p.Host == h.Name {
				for _, i := range p.GPUIndices {
					busy[i] = true
				}
			}
		}
		var free []int
		for i, b := range busy {
			if !b {
				free = append(free, i)
			}
		}
		if len(free) < req.GPU.Count {
			return nil
		}
		return [][]int{free[:req.GPU.Count]}
	}
	return [][]int{nil}
}
