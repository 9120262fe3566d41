package plan

import (
	"fmt"
	"slices"
)

// Violation is a rule a placement breaks.
type Violation struct {
	Host   string `json:"host,omitempty"`
	Rule   string `json:"rule"`
	Detail string `json:"detail"`
}

func (v Violation) String() string {
	if v.Host == "" {
		return v.Rule + ": " + v.Detail
	}
	return v.Rule + " on " + v.Host + ": " + v.Detail
}

// checker validates placements from the containers' hosts alone: it
// recomputes loads and counts from scratch for the hosts and apps it is
// asked about and reads the rules as the profile states them, sharing
// nothing with State's incremental bookkeeping.
type checker struct {
	m      *Model
	at     []int32
	onHost [][]int32
	byApp  [][]int32 // containers per app
	// rules and spreads as written, indexed by the app they name first
	rulesOf, spreadsOf map[string][]int
	values             map[string][]string // label -> its values among hosts
}

func newChecker(m *Model, at []int32) *checker {
	ck := &checker{m: m, at: slices.Clone(at), onHost: make([][]int32, len(m.hosts)), byApp: make([][]int32, len(m.apps)),
		rulesOf: map[string][]int{}, spreadsOf: map[string][]int{}, values: map[string][]string{}}
	for c, h := range ck.at {
		if h >= 0 {
			ck.onHost[h] = append(ck.onHost[h], int32(c))
		}
		a := m.kinds[m.ctrs[c].kind].app
		ck.byApp[a] = append(ck.byApp[a], int32(c))
	}
	for i, r := range m.prof.AntiAffinity {
		ck.rulesOf[r.App] = append(ck.rulesOf[r.App], i)
	}
	for i, sp := range m.prof.Spreads {
		ck.spreadsOf[sp.App] = append(ck.spreadsOf[sp.App], i)
		if _, ok := ck.values[sp.DomainLabel]; ok {
			continue
		}
		var vs []string
		for _, h := range m.hosts {
			if v, ok := h.labels[sp.DomainLabel]; ok {
				vs = append(vs, v)
			}
		}
		slices.Sort(vs)
		ck.values[sp.DomainLabel] = slices.Compact(vs)
	}
	return ck
}

// Check validates a whole placement (host per container, -1 = not
// placed) against m's capacities and rules.
func Check(m *Model, at []int32) []Violation {
	ck := newChecker(m, at)
	var out []Violation
	for h := range m.hosts {
		out = append(out, ck.host(h)...)
	}
	for a := range m.apps {
		out = append(out, ck.spread(a)...)
	}
	return out
}

// Placement is the state's host per container (-1 = not placed).
func (s *State) Placement() []int32 { return slices.Clone(s.at) }

func (ck *checker) appName(c int32) string { return ck.m.apps[ck.m.kinds[ck.m.ctrs[c].kind].app] }

// host checks capacity at every point, selectors and anti-affinity on h.
func (ck *checker) host(h int) []Violation {
	m := ck.m
	hi := &m.hosts[h]
	var out []Violation
	add := func(rule, format string, args ...any) {
		out = append(out, Violation{Host: hi.name, Rule: rule, Detail: fmt.Sprintf(format, args...)})
	}
	pods := ck.onHost[h]
	if len(pods) == 0 {
		return nil
	}
	counts := map[string]int{}
	for d, dim := range m.dims {
		sum := make([]int64, m.points)
		for _, c := range pods {
			for t, v := range m.kinds[m.ctrs[c].kind].dem[d] {
				sum[t] += v
			}
		}
		for t, v := range sum {
			if v > hi.capac[d] {
				add("capacity", "%s at point %d: %d > capacity %d", dim, t, v, hi.capac[d])
				break
			}
		}
	}
	for _, c := range pods {
		counts[ck.appName(c)]++
		for key, want := range m.kinds[m.ctrs[c].kind].selector {
			if got, ok := hi.labels[key]; !ok || got != want {
				add("selector", "%s needs %s=%s", m.ctrs[c].id, key, want)
			}
		}
	}
	apps := make([]string, 0, len(counts))
	for a := range counts {
		apps = append(apps, a)
	}
	slices.Sort(apps)
	for _, a := range apps {
		for _, ri := range ck.rulesOf[a] {
			r := m.prof.AntiAffinity[ri]
			if r.Other == r.App {
				if counts[a] > r.MaxOther+1 {
					add("anti-affinity", "%d instances of %s, at most %d", counts[a], a, r.MaxOther+1)
				}
			} else if counts[r.Other] > r.MaxOther {
				add("anti-affinity", "%d instances of %s next to %s, at most %d", counts[r.Other], r.Other, a, r.MaxOther)
			}
		}
	}
	return out
}

// spread checks every spread of app a over all its placed instances.
func (ck *checker) spread(a int) []Violation {
	m := ck.m
	var out []Violation
	for _, si := range ck.spreadsOf[m.apps[a]] {
		sp := m.prof.Spreads[si]
		count := map[string]int{}
		placed := 0
		for _, c := range ck.byApp[a] {
			h := ck.at[c]
			if h < 0 {
				continue
			}
			placed++
			v, ok := m.hosts[h].labels[sp.DomainLabel]
			if !ok {
				out = append(out, Violation{Host: m.hosts[h].name, Rule: "spread", Detail: fmt.Sprintf("%s of %s on a host without label %s", m.ctrs[c].id, sp.App, sp.DomainLabel)})
				continue
			}
			count[v]++
		}
		if placed == 0 {
			continue
		}
		lo, hi := -1, 0
		for _, v := range ck.values[sp.DomainLabel] {
			c := count[v]
			if lo < 0 || c < lo {
				lo = c
			}
			hi = max(hi, c)
		}
		if hi-lo > sp.MaxSkew {
			out = append(out, Violation{Rule: "spread", Detail: fmt.Sprintf("%s: %d in the fullest %s, %d in the emptiest, skew %d > %d", sp.App, hi, sp.DomainLabel, lo, hi-lo, sp.MaxSkew)})
		}
	}
	return out
}

// set moves container c to host h (-1: off every host) in the checker's
// picture.
func (ck *checker) set(c int32, h int32) {
	if old := ck.at[c]; old >= 0 {
		pods := ck.onHost[old]
		i := slices.Index(pods, c)
		ck.onHost[old] = slices.Delete(pods, i, i+1)
	}
	ck.at[c] = h
	if h >= 0 {
		ck.onHost[h] = append(ck.onHost[h], c)
	}
}
