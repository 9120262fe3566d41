package plan

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/sluicehq/sluice/brain/place"
)

// Input is a cluster to plan: hosts with their costs, the rules, the
// containers and where they run now.
type Input struct {
	Hosts []place.Host
	// Cost is each host's cost, by host name; a host not listed (or 0)
	// costs 1.
	Cost map[string]float64
	// Profile carries the rules (anti-affinity, spreads) and the curve
	// length; its strategy, quotas and shapes are not used.
	Profile place.Profile
	// Containers are the containers to place. Their IDs are unique; GPU
	// requests are refused.
	Containers []place.Request
	// Existing, when not nil, has one entry per container: the host it
	// runs on now, or "" when it does not run.
	Existing []string
	// Penalties is the objective's penalty per dimension; nil means
	// DefaultPenalties. A dimension no host offers is ignored.
	Penalties []Penalty
}

// ErrBadInput is wrapped by every error about an Input.
var ErrBadInput = errors.New("bad plan input")

// Model is an Input compiled into dense arrays: containers of equal
// demand, app and selector share one kind (an app's curves are stored
// once, not per container).
type Model struct {
	points int
	dims   []string
	hosts  []hostInfo
	kinds  []kind
	ctrs   []ctr
	apps   []string
	// rules[a] are the anti-affinity checks that apply when app a arrives.
	rules [][]ruleRef
	// spreads[a] are the spreads of app a.
	spreads [][]spreadRef
	labels  []labelDoms
	pens    []penDim
	penOf   []int // per dim: index in pens, -1 when not penalised
	// shapes groups hosts by cost and capacity (the bound's shapes).
	shapes []shape
	// prof keeps the rules as given, for the independent validator.
	prof place.Profile
}

type hostInfo struct {
	name   string
	cost   float64
	capac  []int64
	labels map[string]string
	shape  int
}

type kind struct {
	app      int32
	dem      [][]int64 // per dim, points values
	peak     []int64
	selector map[string]string
	// size is the sum over dims of peak over the largest capacity.
	size float64
}

type ctr struct {
	id       string
	kind     int32
	existing int32 // host index, -1 when not running
}

// ruleRef is one anti-affinity check for an arriving app: with role self,
// count(app)+1 <= max+1; asApp, count(other) <= max; asOther, when
// count(other) > 0, count(app)+1 <= max (other is the rule's App).
type ruleRef struct {
	other int32
	max   int32
	role  uint8
}

const (
	roleSelf uint8 = iota
	roleAsApp
	roleAsOther
)

type spreadRef struct {
	label   int
	maxSkew int32
}

type labelDoms struct {
	name    string
	domains int
	hostDom []int32 // -1 without the label
}

type penDim struct {
	Penalty
	dim int
	// tab is phi at tabSteps steps per unit of utilisation, 0..1.
	tab []float64
}

// tabSteps is the resolution of the penalty table. The objective reads
// phi by linear interpolation on it, which never falls below the exact
// value (phi is convex), so Bound, computed exactly, stays a lower bound.
const tabSteps = 4096

// at is the interpolated penalty at utilisation u in [0,1].
func (p *penDim) at(u float64) float64 {
	x := u * tabSteps
	i := int(x)
	if i >= tabSteps {
		return p.tab[tabSteps]
	}
	f := x - float64(i)
	return p.tab[i] + f*(p.tab[i+1]-p.tab[i])
}

type shape struct {
	cost  float64
	capac []int64
	hosts int
}

// Compile checks in and builds its model. Errors name the container, host
// or rule and wrap ErrBadInput.
func Compile(in Input) (*Model, error) {
	m := &Model{points: max(1, in.Profile.CurvePoints), prof: in.Profile}
	if err := m.compileHosts(in); err != nil {
		return nil, err
	}
	appIndex := map[string]int32{}
	appOf := func(name string) int32 {
		if i, ok := appIndex[name]; ok {
			return i
		}
		i := int32(len(m.apps))
		appIndex[name] = i
		m.apps = append(m.apps, name)
		return i
	}
	if in.Existing != nil && len(in.Existing) != len(in.Containers) {
		return nil, fmt.Errorf("%w: %d existing hosts for %d containers", ErrBadInput, len(in.Existing), len(in.Containers))
	}
	hostIndex := make(map[string]int32, len(m.hosts))
	for i, h := range m.hosts {
		hostIndex[h.name] = int32(i)
	}
	maxCap := make([]int64, len(m.dims))
	for _, h := range m.hosts {
		for d, v := range h.capac {
			maxCap[d] = max(maxCap[d], v)
		}
	}
	byApp := map[int32][]int32{} // kinds per app
	seen := map[string]bool{}
	m.ctrs = make([]ctr, len(in.Containers))
	for i := range in.Containers {
		r := &in.Containers[i]
		if r.ID == "" {
			return nil, fmt.Errorf("%w: container %d: empty id", ErrBadInput, i)
		}
		if seen[r.ID] {
			return nil, fmt.Errorf("%w: container %q: duplicate id", ErrBadInput, r.ID)
		}
		seen[r.ID] = true
		if r.GPU.Count > 0 || r.GPU.SharedMilli > 0 {
			return nil, fmt.Errorf("%w: container %q asks for GPUs; the cost planner places CPU, memory and other dimensions only (use fgd-pack)", ErrBadInput, r.ID)
		}
		k, err := m.compileKind(r, maxCap)
		if err != nil {
			return nil, err
		}
		k.app = appOf(r.App)
		ki := int32(-1)
		for _, c := range byApp[k.app] {
			if sameKind(&m.kinds[c], &k) {
				ki = c
				break
			}
		}
		if ki < 0 {
			ki = int32(len(m.kinds))
			m.kinds = append(m.kinds, k)
			byApp[k.app] = append(byApp[k.app], ki)
		}
		c := ctr{id: r.ID, kind: ki, existing: -1}
		if in.Existing != nil && in.Existing[i] != "" {
			hi, ok := hostIndex[in.Existing[i]]
			if !ok {
				return nil, fmt.Errorf("%w: container %q runs on unknown host %q", ErrBadInput, r.ID, in.Existing[i])
			}
			c.existing = hi
		}
		m.ctrs[i] = c
	}
	if err := m.compileRules(in.Profile, appOf); err != nil {
		return nil, err
	}
	return m, m.compilePenalties(in.Penalties)
}

func (m *Model) compileHosts(in Input) error {
	dimSet := map[string]bool{}
	names := map[string]bool{}
	for i, h := range in.Hosts {
		if h.Name == "" {
			return fmt.Errorf("%w: host %d: empty name", ErrBadInput, i)
		}
		if names[h.Name] {
			return fmt.Errorf("%w: host %q: duplicate name", ErrBadInput, h.Name)
		}
		names[h.Name] = true
		for d, v := range h.Capacity {
			if v < 0 {
				return fmt.Errorf("%w: host %q: capacity %s: negative amount %d", ErrBadInput, h.Name, d, v)
			}
			dimSet[d] = true
		}
	}
	for d := range dimSet {
		m.dims = append(m.dims, d)
	}
	sort.Strings(m.dims)
	shapeOf := map[string]int{}
	for _, h := range in.Hosts {
		cost := in.Cost[h.Name]
		switch {
		case cost == 0:
			cost = 1
		case !(cost > 0) || cost > 1e12:
			return fmt.Errorf("%w: host %q: cost %v must be a positive number", ErrBadInput, h.Name, cost)
		}
		hi := hostInfo{name: h.Name, cost: cost, capac: make([]int64, len(m.dims)), labels: h.Labels}
		var key strings.Builder
		fmt.Fprintf(&key, "%v", cost)
		for d, name := range m.dims {
			hi.capac[d] = h.Capacity[name]
			fmt.Fprintf(&key, "/%d", hi.capac[d])
		}
		s, ok := shapeOf[key.String()]
		if !ok {
			s = len(m.shapes)
			shapeOf[key.String()] = s
			m.shapes = append(m.shapes, shape{cost: cost, capac: hi.capac})
		}
		m.shapes[s].hosts++
		hi.shape = s
		m.hosts = append(m.hosts, hi)
	}
	return nil
}

func (m *Model) dimIndex(name string) int {
	i, ok := slices.BinarySearch(m.dims, name)
	if !ok {
		return -1
	}
	return i
}

// compileKind turns a container's demand into per-dimension curves.
func (m *Model) compileKind(r *place.Request, maxCap []int64) (kind, error) {
	k := kind{dem: make([][]int64, len(m.dims)), peak: make([]int64, len(m.dims)), selector: r.Selector}
	check := func(d string) (int, error) {
		di := m.dimIndex(d)
		if di < 0 {
			return -1, fmt.Errorf("%w: container %q: demand %s: no host offers this resource", ErrBadInput, r.ID, d)
		}
		return di, nil
	}
	for d, v := range r.Demand {
		if v < 0 {
			return k, fmt.Errorf("%w: container %q: demand %s: negative amount %d", ErrBadInput, r.ID, d, v)
		}
		if _, curved := r.Curves[d]; curved || v == 0 {
			continue
		}
		di, err := check(d)
		if err != nil {
			return k, err
		}
		k.dem[di] = slices.Repeat([]int64{v}, m.points)
		k.peak[di] = v
	}
	for d, pts := range r.Curves {
		if len(pts) != m.points {
			return k, fmt.Errorf("%w: container %q: curve %s: %d points, want %d", ErrBadInput, r.ID, d, len(pts), m.points)
		}
		var top int64
		for t, v := range pts {
			if v < 0 {
				return k, fmt.Errorf("%w: container %q: curve %s: point %d: negative amount %d", ErrBadInput, r.ID, d, t, v)
			}
			top = max(top, v)
		}
		if top == 0 {
			continue
		}
		di, err := check(d)
		if err != nil {
			return k, err
		}
		k.dem[di] = pts
		k.peak[di] = top
	}
	for d, p := range k.peak {
		if maxCap[d] > 0 {
			k.size += float64(p) / float64(maxCap[d])
		}
	}
	return k, nil
}

func sameKind(a, b *kind) bool {
	if a.app != b.app || len(a.selector) != len(b.selector) {
		return false
	}
	for k, v := range a.selector {
		if w, ok := b.selector[k]; !ok || w != v {
			return false
		}
	}
	for d := range a.dem {
		if !slices.Equal(a.dem[d], b.dem[d]) {
			return false
		}
	}
	return true
}

func (m *Model) compileRules(prof place.Profile, appOf func(string) int32) error {
	for i, r := range prof.AntiAffinity {
		if r.App == "" || r.Other == "" || r.MaxOther < 0 {
			return fmt.Errorf("%w: anti-affinity %d: app and other must be named, max other not negative", ErrBadInput, i)
		}
		a, o := appOf(r.App), appOf(r.Other)
		m.growApps()
		mx := int32(r.MaxOther)
		if a == o {
			m.rules[a] = append(m.rules[a], ruleRef{other: a, max: mx, role: roleSelf})
			continue
		}
		m.rules[a] = append(m.rules[a], ruleRef{other: o, max: mx, role: roleAsApp})
		m.rules[o] = append(m.rules[o], ruleRef{other: a, max: mx, role: roleAsOther})
	}
	labelIndex := map[string]int{}
	for i, s := range prof.Spreads {
		if s.App == "" || s.DomainLabel == "" || s.MaxSkew < 1 {
			return fmt.Errorf("%w: spread %d: app and label must be named, max skew at least 1", ErrBadInput, i)
		}
		li, ok := labelIndex[s.DomainLabel]
		if !ok {
			li = len(m.labels)
			labelIndex[s.DomainLabel] = li
			m.labels = append(m.labels, m.domainsOf(s.DomainLabel))
		}
		a := appOf(s.App)
		m.growApps()
		m.spreads[a] = append(m.spreads[a], spreadRef{label: li, maxSkew: int32(s.MaxSkew)})
	}
	m.growApps()
	return nil
}

func (m *Model) growApps() {
	for len(m.rules) < len(m.apps) {
		m.rules = append(m.rules, nil)
		m.spreads = append(m.spreads, nil)
	}
}

func (m *Model) domainsOf(label string) labelDoms {
	var values []string
	for _, h := range m.hosts {
		if v, ok := h.labels[label]; ok {
			values = append(values, v)
		}
	}
	slices.Sort(values)
	values = slices.Compact(values)
	ld := labelDoms{name: label, domains: len(values), hostDom: make([]int32, len(m.hosts))}
	for i, h := range m.hosts {
		ld.hostDom[i] = -1
		if v, ok := h.labels[label]; ok {
			j, _ := slices.BinarySearch(values, v)
			ld.hostDom[i] = int32(j)
		}
	}
	return ld
}

func (m *Model) compilePenalties(ps []Penalty) error {
	if ps == nil {
		ps = DefaultPenalties()
	}
	m.penOf = slices.Repeat([]int{-1}, len(m.dims))
	defer func() {
		for i, p := range m.pens {
			m.penOf[p.dim] = i
		}
	}()
	for _, p := range ps {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrBadInput, err)
		}
		if d := m.dimIndex(p.Dim); d >= 0 && p.Weight > 0 && p.Target < 1 {
			pd := penDim{Penalty: p, dim: d, tab: make([]float64, tabSteps+1)}
			for i := range pd.tab {
				pd.tab[i] = p.phi(float64(i) / tabSteps)
			}
			m.pens = append(m.pens, pd)
		}
	}
	return nil
}

// Hosts is the number of hosts; Containers the number of containers.
func (m *Model) Hosts() int      { return len(m.hosts) }
func (m *Model) Containers() int { return len(m.ctrs) }

// HostName and ContainerID name host h and container c.
func (m *Model) HostName(h int) string    { return m.hosts[h].name }
func (m *Model) ContainerID(c int) string { return m.ctrs[c].id }

// Existing is the host container c runs on now, -1 when none.
func (m *Model) Existing(c int) int { return int(m.ctrs[c].existing) }

// selectorOK says whether host h carries every label kind k selects.
func (m *Model) selectorOK(k *kind, h int) bool {
	labels := m.hosts[h].labels
	for key, v := range k.selector {
		if got, ok := labels[key]; !ok || got != v {
			return false
		}
	}
	return true
}
