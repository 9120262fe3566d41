package place

import (
	"errors"
	"fmt"
	"slices"
	"sort"
)

// state is the Cluster's incrementally maintained picture.
type state struct {
	prof Profile

	dims     []string // sorted dimension names
	dimIndex map[string]int
	cpuDim   int // index of DimCPU, -1 when no host or request has CPU
	// scoreDim[d] is true when dimension d is weighed by scorers.
	scoreDim []bool
	// maxCap[d] is the largest capacity of dimension d over hosts; scorers
	// normalise by it (GPU by maxGPUs devices).
	maxCap  []int64
	maxGPUs int

	models     []string // sorted GPU model names found on hosts
	modelIndex map[string]int

	hosts     []hostState
	hostIndex map[string]int

	pl   []placed // placement slots; dead ones are on free
	free []int32
	byID map[string]int32

	// appIDs numbers the apps rules name; hosts count their instances
	// (hostState.apps) and appHosts[id] lists the hosts running any.
	appIDs   map[string]int32
	appHosts [][]int32
	// version counts binds and unbinds: a request's precomputed rule
	// verdicts (ruleMark) hold only while it is unchanged.
	version uint64
	// ruleMark[h] == markGen says host h breaks the rule markRule[h] of
	// the request prepared last.
	ruleMark []uint32
	markRule []int32
	markGen  uint32
	rules    []AntiAffinity
	ruleWhy  []Reason         // per rule: "anti-affinity APP/OTHER"
	byApp    map[string][]int // rule indexes where App == app
	byOther  map[string][]int // rule indexes where Other == app (App != Other)

	spreads  []spreadState
	bySpread map[string][]int // spread indexes per app

	quotas  []quotaState
	byGroup map[string]int

	shapes shapeMix

	// visit is a fixed seeded permutation of hosts used for sampling.
	visit []int32

	dimReason []Reason // "insufficient <dim>"
	curveReas []Reason // "insufficient <dim> over the day"
}

type hostState struct {
	name   string
	labels map[string]string
	capac  []int64
	// used is per dimension; for a dimension with curves on this host it
	// is the peak of curve.
	used []int64
	// curve[d] is nil until a curved placement lands on the host for d;
	// then it holds the usage at every point (flat placements included).
	curve [][]int64
	model int // -1 when the host has no GPUs
	gpu   []int32
	pods  []int32
	// apps counts the instances of each rule-named app on the host; a
	// host runs few distinct apps, so a short list beats a dense
	// apps x hosts table (9,000 apps on 6,000 hosts would be 216 MB).
	apps []appCount
	// frag caches the host's fragmentation under the current shape mix,
	// one entry per fragMeasure; fragGen is the mix generation each was
	// computed for (0 = stale).
	frag    [fragMeasures]float64
	fragGen [fragMeasures]uint64
}

type placed struct {
	p      Placement
	host   int
	demand []int64
	curves []curveDemand
	alive  bool
	// missing names a dimension the request needs that no host offers.
	missing string
	// rules and spreads are the anti-affinity rules and spread indexes
	// resolved for this request (rulesReady says they have been).
	rules      []ruleCheck
	spreads    []int
	rulesReady bool
	// markedAt is the cluster version when the rules' verdicts per host
	// were marked (state.ruleMark, generation markGen); 0 = never.
	markedAt uint64
	markGen  uint32
}

type curveDemand struct {
	dim int
	pts []int64
}

type spreadState struct {
	Spread
	labelDomains         // shared by every spread over the same label; read-only
	count        []int32 // per domain
	lo           int32   // least count over domains, kept by add
	reason       Reason
	reasonDom    Reason
}

type quotaState struct {
	Quota
	limit  []int64 // per dim, -1 = not capped
	used   []int64
	gpuUse int64
}

// newCluster checks snap and prof, numbers hosts, dimensions and GPU
// models, compiles the profile's rules, quotas and shapes, then replays
// snap's placements.
func newCluster(snap Snapshot, prof Profile) (*Cluster, error) {
	st := state{
		prof:       prof,
		dimIndex:   map[string]int{},
		modelIndex: map[string]int{},
		hostIndex:  map[string]int{},
		byID:       map[string]int32{},
		appIDs:     map[string]int32{},
		byApp:      map[string][]int{},
		byOther:    map[string][]int{},
		bySpread:   map[string][]int{},
		byGroup:    map[string]int{},
	}
	if err := checkProfile(prof); err != nil {
		return nil, err
	}
	dimSet, err := st.indexHosts(snap.Hosts)
	if err != nil {
		return nil, err
	}
	st.indexDims(dimSet, prof)
	st.indexModels()
	st.buildHosts(snap.Hosts)
	if err := st.compileRules(prof); err != nil {
		return nil, err
	}
	if err := st.compileQuotas(prof); err != nil {
		return nil, err
	}
	if err := st.shapes.init(&st, prof.Shapes); err != nil {
		return nil, err
	}
	st.shuffleVisit()

	c := &Cluster{st: st}
	for i, p := range snap.Placements {
		if err := c.add(p); err != nil {
			return nil, fmt.Errorf("placement %d: %w", i, err)
		}
	}
	return c, nil
}

// checkProfile rejects profile settings no cluster could use.
func checkProfile(prof Profile) error {
	if prof.Strategy != "" {
		if _, err := ParseStrategy(string(prof.Strategy)); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
	}
	if prof.CurvePoints < 0 {
		return fmt.Errorf("profile: curve points %d is negative", prof.CurvePoints)
	}
	if prof.SampleFeasible < 0 || prof.ScoreSteps < 0 {
		return errors.New("profile: sample size and score steps must not be negative")
	}
	return nil
}

// indexHosts checks the hosts, numbers them by name, notes their GPU
// models, and returns the set of dimension names their capacities use.
func (st *state) indexHosts(hosts []Host) (map[string]bool, error) {
	dimSet := map[string]bool{}
	for i, h := range hosts {
		if h.Name == "" {
			return nil, fmt.Errorf("host %d: empty name", i)
		}
		if _, dup := st.hostIndex[h.Name]; dup {
			return nil, fmt.Errorf("host %q: duplicate name", h.Name)
		}
		st.hostIndex[h.Name] = i
		for d, v := range h.Capacity {
			if d == "" {
				return nil, fmt.Errorf("host %q: capacity: empty dimension name", h.Name)
			}
			if v < 0 {
				return nil, fmt.Errorf("host %q: capacity %s: negative amount %d", h.Name, d, v)
			}
			dimSet[d] = true
		}
		if h.GPUs < 0 {
			return nil, fmt.Errorf("host %q: gpus: negative count %d", h.Name, h.GPUs)
		}
		if h.GPUs > 0 && h.GPUModel == "" {
			return nil, fmt.Errorf("host %q: gpu model: empty for %d GPUs", h.Name, h.GPUs)
		}
		if h.GPUs > 0 {
			st.modelIndex[h.GPUModel] = 0
		}
	}
	return dimSet, nil
}

// indexDims numbers every dimension a host, quota, shape or the score
// uses, in name order, with its reasons, and marks the scored ones.
func (st *state) indexDims(dimSet map[string]bool, prof Profile) {
	for _, d := range prof.ScoreDims {
		dimSet[d] = true
	}
	for _, q := range prof.Quotas {
		for d := range q.Limit {
			dimSet[d] = true
		}
	}
	for _, s := range prof.Shapes {
		for d := range s.Demand {
			dimSet[d] = true
		}
	}
	st.dims = appendSortedKeys(nil, dimSet)
	for i, d := range st.dims {
		st.dimIndex[d] = i
		st.dimReason = append(st.dimReason, Reason("insufficient "+d))
		st.curveReas = append(st.curveReas, Reason("insufficient "+d+" over the day"))
	}
	st.cpuDim = -1
	if i, ok := st.dimIndex[DimCPU]; ok {
		st.cpuDim = i
	}
	st.scoreDim = make([]bool, len(st.dims))
	if len(prof.ScoreDims) == 0 {
		for i := range st.scoreDim {
			st.scoreDim[i] = true
		}
	} else {
		for _, d := range prof.ScoreDims {
			st.scoreDim[st.dimIndex[d]] = true
		}
	}
}

// indexModels numbers the GPU models indexHosts found, in name order.
func (st *state) indexModels() {
	st.models = appendSortedKeys(nil, st.modelIndex)
	for i, m := range st.models {
		st.modelIndex[m] = i
	}
}

// buildHosts lays out each host's capacity by dimension number, empty, with
// every GPU free, and keeps the largest capacity of each dimension.
func (st *state) buildHosts(hosts []Host) {
	st.maxCap = make([]int64, len(st.dims))
	st.hosts = make([]hostState, len(hosts))
	for i, h := range hosts {
		hs := hostState{
			name:   h.Name,
			labels: h.Labels,
			capac:  make([]int64, len(st.dims)),
			used:   make([]int64, len(st.dims)),
			curve:  make([][]int64, len(st.dims)),
			model:  -1,
			gpu:    make([]int32, h.GPUs),
		}
		for d, v := range h.Capacity {
			di := st.dimIndex[d]
			hs.capac[di] = v
			st.maxCap[di] = max(st.maxCap[di], v)
		}
		if h.GPUs > 0 {
			hs.model = st.modelIndex[h.GPUModel]
			for g := range hs.gpu {
				hs.gpu[g] = GPUMilliPerDevice
			}
		}
		st.maxGPUs = max(st.maxGPUs, h.GPUs)
		st.hosts[i] = hs
	}
}

// shuffleVisit fixes the order hosts are visited in: a shuffle seeded by
// the host count, so equal snapshots visit alike.
func (st *state) shuffleVisit() {
	st.ruleMark = make([]uint32, len(st.hosts))
	st.markRule = make([]int32, len(st.hosts))
	st.visit = make([]int32, len(st.hosts))
	for i := range st.visit {
		st.visit[i] = int32(i)
	}
	r := newRand(0x5eed, uint64(len(st.hosts)))
	r.Shuffle(len(st.visit), func(i, j int) { st.visit[i], st.visit[j] = st.visit[j], st.visit[i] })
}

func (st *state) compileRules(prof Profile) error {
	st.rules = slices.Clone(prof.AntiAffinity)
	for i, r := range st.rules {
		if r.App == "" || r.Other == "" {
			return fmt.Errorf("profile: anti-affinity %d: app and other must be named", i)
		}
		if r.MaxOther < 0 {
			return fmt.Errorf("profile: anti-affinity %d (%s/%s): max other %d is negative", i, r.App, r.Other, r.MaxOther)
		}
		st.ruleWhy = append(st.ruleWhy, Reason("anti-affinity "+r.App+"/"+r.Other))
		st.byApp[r.App] = append(st.byApp[r.App], i)
		if r.Other != r.App {
			st.byOther[r.Other] = append(st.byOther[r.Other], i)
		}
		st.trackApp(r.App)
		st.trackApp(r.Other)
	}
	// Spreads over the same label share one read-only host-to-domain map:
	// a v2018-scale profile has ~10,000 spreads and one label.
	byLabel := map[string]labelDomains{}
	for i, s := range prof.Spreads {
		if s.App == "" || s.DomainLabel == "" {
			return fmt.Errorf("profile: spread %d: app and domain label must be named", i)
		}
		if s.MaxSkew < 1 {
			return fmt.Errorf("profile: spread %d (%s by %s): max skew %d must be at least 1", i, s.App, s.DomainLabel, s.MaxSkew)
		}
		dom, ok := byLabel[s.DomainLabel]
		if !ok {
			dom = st.domainsOf(s.DomainLabel)
			byLabel[s.DomainLabel] = dom
		}
		ss := spreadState{Spread: s, labelDomains: dom}
		ss.count = make([]int32, len(ss.domains))
		ss.reason = Reason("spread " + s.App + " by " + s.DomainLabel)
		ss.reasonDom = Reason("spread " + s.App + ": no " + s.DomainLabel + " label")
		st.spreads = append(st.spreads, ss)
		st.bySpread[s.App] = append(st.bySpread[s.App], len(st.spreads)-1)
	}
	return nil
}

type labelDomains struct {
	domains []string // sorted distinct values
	hostDom []int32  // per host: index into domains, -1 without the label
}

func (st *state) domainsOf(label string) labelDomains {
	d := labelDomains{hostDom: make([]int32, len(st.hosts))}
	seen := map[string]bool{}
	for _, h := range st.hosts {
		if v, ok := h.labels[label]; ok && !seen[v] {
			seen[v] = true
			d.domains = append(d.domains, v)
		}
	}
	sort.Strings(d.domains)
	for hi, h := range st.hosts {
		d.hostDom[hi] = -1
		if v, ok := h.labels[label]; ok {
			d.hostDom[hi] = int32(sort.SearchStrings(d.domains, v))
		}
	}
	return d
}

func (st *state) trackApp(app string) {
	if _, ok := st.appIDs[app]; !ok {
		st.appIDs[app] = int32(len(st.appIDs))
		st.appHosts = append(st.appHosts, nil)
	}
}

// appCount is one app's instances on a host.
type appCount struct {
	app, n int32
}

// appCount is how many instances of app id the host runs (0 for id -1).
func (h *hostState) appCount(id int32) int32 {
	for _, c := range h.apps {
		if c.app == id {
			return c.n
		}
	}
	return 0
}

// addApp moves app id's count on host hi by sign, keeping the app's host
// list: a host joins at its first instance and leaves at its last.
func (st *state) addApp(hi int, id, sign int32) {
	h := &st.hosts[hi]
	for i := range h.apps {
		if h.apps[i].app == id {
			h.apps[i].n += sign
			if h.apps[i].n == 0 {
				last := len(h.apps) - 1
				h.apps[i] = h.apps[last]
				h.apps = h.apps[:last]
				hosts := st.appHosts[id]
				k := slices.Index(hosts, int32(hi))
				hosts[k] = hosts[len(hosts)-1]
				st.appHosts[id] = hosts[:len(hosts)-1]
			}
			return
		}
	}
	h.apps = append(h.apps, appCount{app: id, n: sign})
	st.appHosts[id] = append(st.appHosts[id], int32(hi))
}

func (st *state) compileQuotas(prof Profile) error {
	for i, q := range prof.Quotas {
		if q.Group == "" {
			return fmt.Errorf("profile: quota %d: empty group", i)
		}
		if _, dup := st.byGroup[q.Group]; dup {
			return fmt.Errorf("profile: quota %q: duplicate group", q.Group)
		}
		qs := quotaState{Quota: q, limit: make([]int64, len(st.dims)), used: make([]int64, len(st.dims))}
		for d := range qs.limit {
			qs.limit[d] = -1
		}
		for d, v := range q.Limit {
			if v < 0 {
				return fmt.Errorf("profile: quota %q: limit %s: negative amount %d", q.Group, d, v)
			}
			qs.limit[st.dimIndex[d]] = v
		}
		st.byGroup[q.Group] = len(st.quotas)
		st.quotas = append(st.quotas, qs)
	}
	return nil
}

// bind puts a compiled placement on host h with the given GPU indices and
// updates every incremental structure. The caller has checked fit.
func (st *state) bind(pc placed) int32 {
	var slot int32
	if n := len(st.free); n > 0 {
		slot = st.free[n-1]
		st.free = st.free[:n-1]
	} else {
		slot = int32(len(st.pl))
		st.pl = append(st.pl, placed{})
	}
	pc.alive = true
	pc.rules, pc.spreads, pc.rulesReady = nil, nil, false // resolved per decision only
	st.version++
	st.pl[slot] = pc
	st.byID[pc.p.ID] = slot
	h := &st.hosts[pc.host]
	h.pods = append(h.pods, slot)
	st.applyUsage(h, &st.pl[slot], +1)
	st.applyCounts(pc.host, &st.pl[slot], +1)
	return slot
}

// unbind is bind's inverse.
func (st *state) unbind(slot int32) placed {
	st.version++
	pc := st.pl[slot]
	h := &st.hosts[pc.host]
	st.applyUsage(h, &pc, -1)
	st.applyCounts(pc.host, &pc, -1)
	if i := slices.Index(h.pods, slot); i >= 0 {
		h.pods = slices.Delete(h.pods, i, i+1)
	}
	delete(st.byID, pc.p.ID)
	st.pl[slot] = placed{}
	st.free = append(st.free, slot)
	return pc
}

func (st *state) applyUsage(h *hostState, pc *placed, sign int64) {
	curved := func(d int) []int64 {
		for _, cd := range pc.curves {
			if cd.dim == d {
				return cd.pts
			}
		}
		return nil
	}
	for d, v := range pc.demand {
		pts := curved(d)
		if pts == nil && h.curve[d] == nil {
			h.used[d] += sign * v
			continue
		}
		if h.curve[d] == nil {
			h.curve[d] = make([]int64, len(pts))
			for t := range h.curve[d] {
				h.curve[d][t] = h.used[d]
			}
		}
		var peak int64
		for t := range h.curve[d] {
			if pts != nil {
				h.curve[d][t] += sign * pts[t]
			} else {
				h.curve[d][t] += sign * v
			}
			peak = max(peak, h.curve[d][t])
		}
		h.used[d] = peak
	}
	if sign > 0 {
		for _, g := range pc.p.GPUIndices {
			h.gpu[g] -= int32(pc.gpuPer())
		}
	} else {
		for _, g := range pc.p.GPUIndices {
			h.gpu[g] += int32(pc.gpuPer())
		}
	}
	h.fragGen = [fragMeasures]uint64{} // invalidate the fragmentation caches
	if pc.p.Group != "" {
		if qi, ok := st.byGroup[pc.p.Group]; ok {
			q := &st.quotas[qi]
			for d, v := range pc.demand {
				q.used[d] += sign * v
			}
			q.gpuUse += sign * pc.p.GPU.Milli()
		}
	}
}

// gpuPer is the milli-GPUs the placement takes from each of its devices.
func (pc *placed) gpuPer() int64 {
	if pc.p.GPU.Count > 0 {
		return GPUMilliPerDevice
	}
	return pc.p.GPU.SharedMilli
}

func (st *state) applyCounts(host int, pc *placed, sign int32) {
	app := pc.p.App
	if app == "" {
		return
	}
	if id, ok := st.appIDs[app]; ok {
		st.addApp(host, id, sign)
	}
	for _, si := range st.bySpread[app] {
		s := &st.spreads[si]
		if dom := s.hostDom[host]; dom >= 0 {
			s.add(dom, sign)
		}
	}
}

// add moves domain dom's count by sign and keeps lo, so the filter's skew
// check is O(1) per host instead of a pass over every domain.
func (s *spreadState) add(dom, sign int32) {
	old := s.count[dom]
	s.count[dom] += sign
	switch {
	case s.count[dom] < s.lo:
		s.lo = s.count[dom]
	case old == s.lo && sign > 0:
		s.lo = slices.Min(s.count)
	}
}

func (c *Cluster) remove(id string) (Placement, error) {
	slot, ok := c.st.byID[id]
	if !ok {
		return Placement{}, fmt.Errorf("remove %q: %w", id, ErrUnknownPlacement)
	}
	return c.st.unbind(slot).p, nil
}

func (c *Cluster) add(p Placement) error {
	st := &c.st
	pc, err := st.compile(p.Request)
	if err != nil {
		return err
	}
	hi, ok := st.hostIndex[p.Host]
	if !ok {
		return fmt.Errorf("placement %q: host: unknown host %q", p.ID, p.Host)
	}
	if pc.missing != "" {
		return fmt.Errorf("placement %q: demand %s: no host offers this resource", p.ID, pc.missing)
	}
	pc.host = hi
	pc.p = p
	pc.p.GPUIndices = slices.Clone(p.GPUIndices)
	h := &st.hosts[hi]
	if err := st.checkIndices(h, &pc); err != nil {
		return fmt.Errorf("placement %q on %q: %w", p.ID, p.Host, err)
	}
	if ok, r, detail := st.fitsResources(h, &pc, true); !ok {
		return fmt.Errorf("placement %q on %q: overflows the host: %s (%s)", p.ID, p.Host, r, detail)
	}
	st.bind(pc)
	return nil
}

// checkIndices verifies the GPU indices an existing placement names.
func (st *state) checkIndices(h *hostState, pc *placed) error {
	g := pc.p.GPU
	want := g.Count
	if g.SharedMilli > 0 {
		want = 1
	}
	if len(pc.p.GPUIndices) != want {
		return fmt.Errorf("gpu indices: %d given, the request needs %d", len(pc.p.GPUIndices), want)
	}
	if want > 0 && !pc.modelOK(st, h) {
		return fmt.Errorf("gpu model: host has %q, request allows %v", modelName(st, h), g.Models)
	}
	seen := map[int]bool{}
	for _, i := range pc.p.GPUIndices {
		if i < 0 || i >= len(h.gpu) {
			return fmt.Errorf("gpu indices: %d out of range (host has %d GPUs)", i, len(h.gpu))
		}
		if seen[i] {
			return fmt.Errorf("gpu indices: %d repeated", i)
		}
		seen[i] = true
		if int64(h.gpu[i]) < pc.gpuPer() {
			return fmt.Errorf("gpu %d: need %d milli, free %d", i, pc.gpuPer(), h.gpu[i])
		}
	}
	slices.Sort(pc.p.GPUIndices)
	return nil
}

func modelName(st *state, h *hostState) string {
	if h.model < 0 {
		return ""
	}
	return st.models[h.model]
}

func (c *Cluster) snapshot() Snapshot {
	st := &c.st
	var snap Snapshot
	for _, h := range st.hosts {
		host := Host{Name: h.name, Labels: h.labels, Capacity: Resources{}, GPUs: len(h.gpu)}
		for d, v := range h.capac {
			if v != 0 {
				host.Capacity[st.dims[d]] = v
			}
		}
		if h.model >= 0 {
			host.GPUModel = st.models[h.model]
		}
		snap.Hosts = append(snap.Hosts, host)
	}
	for _, pc := range st.pl {
		if pc.alive {
			snap.Placements = append(snap.Placements, pc.p)
		}
	}
	sort.Slice(snap.Placements, func(i, j int) bool { return snap.Placements[i].ID < snap.Placements[j].ID })
	return snap
}

func (c *Cluster) usage() Usage {
	st := &c.st
	u := Usage{Capacity: Resources{}, Allocated: Resources{}, Placements: len(st.byID)}
	for hi := range st.hosts {
		h := &st.hosts[hi]
		for d := range st.dims {
			u.Capacity[st.dims[d]] += h.capac[d]
			u.Allocated[st.dims[d]] += h.used[d]
		}
		for _, g := range h.gpu {
			u.GPUMilliCapacity += GPUMilliPerDevice
			u.GPUMilliAllocated += GPUMilliPerDevice - int64(g)
		}
		u.GPUMilliFragmented += st.hostFrag(hi, fragFGD)
	}
	return u
}
