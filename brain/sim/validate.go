package sim

import (
	"fmt"
	"slices"
	"sort"

	"github.com/sluicehq/sluice/brain/place"
)

// Violation is a constraint a placement state breaks.
type Violation struct {
	Host string `json:"host,omitempty"`
	// App is set for spread violations.
	App string `json:"app,omitempty"`
	// Rule is the kind: capacity, gpu, selector, anti-affinity, spread,
	// quota, unknown-host.
	Rule   string `json:"rule"`
	Detail string `json:"detail"`
}

func (v Violation) String() string {
	if v.Host == "" {
		return v.Rule + ": " + v.Detail
	}
	return v.Rule + " on " + v.Host + ": " + v.Detail
}

// Validate checks a placement state against its profile without using the
// placement core's own bookkeeping: it recomputes everything from the
// snapshot. Checked: every placement's host exists; per host and
// dimension the peak over the day of everything on it (curves pointwise)
// stays within capacity; GPU indices exist, match the request's shape and
// model, and no device holds more than GPUMilliPerDevice; selectors hold;
// anti-affinity rules hold per host; spread skew holds per app; each
// group's own (not borrowed) placements stay within its quota. Lending
// limits are not checked.
func Validate(snap place.Snapshot, prof place.Profile) []Violation {
	var out []Violation
	add := func(host, rule, format string, args ...any) {
		out = append(out, Violation{Host: host, Rule: rule, Detail: fmt.Sprintf(format, args...)})
	}
	hosts := map[string]*place.Host{}
	for i := range snap.Hosts {
		hosts[snap.Hosts[i].Name] = &snap.Hosts[i]
	}
	// rulesOf lists, per app, the rules that apply on hosts running it.
	rulesOf := map[string][]int{}
	for i, r := range prof.AntiAffinity {
		rulesOf[r.App] = append(rulesOf[r.App], i)
	}
	byHost := map[string][]*place.Placement{}
	for i := range snap.Placements {
		p := &snap.Placements[i]
		if hosts[p.Host] == nil {
			add(p.Host, "unknown-host", "placement %s is on a host that does not exist", p.ID)
			continue
		}
		byHost[p.Host] = append(byHost[p.Host], p)
	}
	for hi := range snap.Hosts {
		h := &snap.Hosts[hi]
		ps := byHost[h.Name]
		if len(ps) == 0 {
			continue
		}
		load := hostLoad(ps, prof.CurvePoints)
		for _, dim := range sortedDims(load) {
			if load[dim] > h.Capacity[dim] {
				add(h.Name, "capacity", "%s peak %d exceeds capacity %d", dim, load[dim], h.Capacity[dim])
			}
		}
		gpuUse := make([]int64, h.GPUs)
		counts := map[string]int{}
		for _, p := range ps {
			counts[p.App]++
			for k, v := range p.Selector {
				if got, ok := h.Labels[k]; !ok || got != v {
					add(h.Name, "selector", "%s needs %s=%s", p.ID, k, v)
				}
			}
			want := p.GPU.Count
			if p.GPU.SharedMilli > 0 {
				want = 1
			}
			if len(p.GPUIndices) != want {
				add(h.Name, "gpu", "%s holds %d devices, asked for %d", p.ID, len(p.GPUIndices), want)
			}
			if want > 0 && len(p.GPU.Models) > 0 && !slices.Contains(p.GPU.Models, h.GPUModel) {
				add(h.Name, "gpu", "%s accepts models %v, host has %s", p.ID, p.GPU.Models, h.GPUModel)
			}
			per := int64(place.GPUMilliPerDevice)
			if p.GPU.SharedMilli > 0 {
				per = p.GPU.SharedMilli
			}
			for _, i := range p.GPUIndices {
				if i < 0 || i >= h.GPUs {
					add(h.Name, "gpu", "%s holds device %d of %d", p.ID, i, h.GPUs)
					continue
				}
				gpuUse[i] += per
			}
		}
		for i, u := range gpuUse {
			if u > place.GPUMilliPerDevice {
				add(h.Name, "gpu", "device %d holds %d milli-GPUs", i, u)
			}
		}
		var ruleIdx []int
		for app := range counts {
			ruleIdx = append(ruleIdx, rulesOf[app]...)
		}
		slices.Sort(ruleIdx)
		for _, ri := range ruleIdx {
			r := prof.AntiAffinity[ri]
			if r.App == r.Other {
				if counts[r.App] > r.MaxOther+1 {
					add(h.Name, "anti-affinity", "%d instances of %s, at most %d", counts[r.App], r.App, r.MaxOther+1)
				}
			} else if counts[r.App] > 0 && counts[r.Other] > r.MaxOther {
				add(h.Name, "anti-affinity", "%d instances of %s next to %s, at most %d", counts[r.Other], r.Other, r.App, r.MaxOther)
			}
		}
	}
	out = append(out, validateSpread(snap, prof, hosts)...)
	out = append(out, validateQuota(snap, prof)...)
	return out
}

func validateSpread(snap place.Snapshot, prof place.Profile, hosts map[string]*place.Host) []Violation {
	var out []Violation
	if len(prof.Spreads) == 0 {
		return nil
	}
	perApp := map[string][]*place.Placement{}
	for i := range snap.Placements {
		p := &snap.Placements[i]
		perApp[p.App] = append(perApp[p.App], p)
	}
	domainsOf := map[string][]string{}
	for _, s := range prof.Spreads {
		ps := perApp[s.App]
		if len(ps) == 0 {
			continue
		}
		domains, ok := domainsOf[s.DomainLabel]
		if !ok {
			seen := map[string]bool{}
			for _, h := range snap.Hosts {
				if v, ok := h.Labels[s.DomainLabel]; ok && !seen[v] {
					seen[v] = true
					domains = append(domains, v)
				}
			}
			domainsOf[s.DomainLabel] = domains
		}
		count := map[string]int{}
		for _, p := range ps {
			h := hosts[p.Host]
			if h == nil {
				continue
			}
			v, ok := h.Labels[s.DomainLabel]
			if !ok {
				out = append(out, Violation{Host: p.Host, App: s.App, Rule: "spread", Detail: fmt.Sprintf("%s of %s on a host without label %s", p.ID, s.App, s.DomainLabel)})
				continue
			}
			count[v]++
		}
		lo, hi := -1, 0
		var loD, hiD string
		for _, d := range domains {
			c := count[d]
			if lo < 0 || c < lo {
				lo, loD = c, d
			}
			if c > hi {
				hi, hiD = c, d
			}
		}
		if hi-lo > s.MaxSkew {
			out = append(out, Violation{App: s.App, Rule: "spread", Detail: fmt.Sprintf("%s has %d in %s=%s and %d in %s=%s, skew %d > %d", s.App, hi, s.DomainLabel, hiD, lo, s.DomainLabel, loD, hi-lo, s.MaxSkew)})
		}
	}
	return out
}

func validateQuota(snap place.Snapshot, prof place.Profile) []Violation {
	var out []Violation
	for _, q := range prof.Quotas {
		used := place.Resources{}
		var gpu int64
		for _, p := range snap.Placements {
			if p.Group != q.Group || p.Borrowed {
				continue
			}
			for dim := range q.Limit {
				used[dim] += peak(&p, dim)
			}
			gpu += p.GPU.Milli()
		}
		for _, dim := range sortedDims(q.Limit) {
			if used[dim] > q.Limit[dim] {
				out = append(out, Violation{Rule: "quota", Detail: fmt.Sprintf("group %s uses %d %s of its own, quota %d", q.Group, used[dim], dim, q.Limit[dim])})
			}
		}
		if q.GPUMilli >= 0 && gpu > q.GPUMilli {
			out = append(out, Violation{Rule: "quota", Detail: fmt.Sprintf("group %s uses %d milli-GPUs of its own, quota %d", q.Group, gpu, q.GPUMilli)})
		}
	}
	return out
}

// peak is a placement's largest demand in a dimension over the day.
func peak(p *place.Placement, dim string) int64 {
	if c, ok := p.Curves[dim]; ok {
		var top int64
		for _, v := range c {
			top = max(top, v)
		}
		return top
	}
	return p.Demand[dim]
}

func sortedDims(r place.Resources) []string {
	dims := make([]string, 0, len(r))
	for d := range r {
		dims = append(dims, d)
	}
	sort.Strings(dims)
	return dims
}

// newViolations is what final breaks that initial did not already break.
func newViolations(initial, final []Violation) []Violation {
	had := map[Violation]int{}
	for _, v := range initial {
		had[v]++
	}
	var out []Violation
	for _, v := range final {
		if had[v] > 0 {
			had[v]--
			continue
		}
		out = append(out, v)
	}
	return out
}
