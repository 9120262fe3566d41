package rdt

import (
	"maps"
	"math/bits"
	"slices"
	"strconv"
	"time"
)

// Class spells a workload class the way qos.Class does ("system",
// "online", "offline"); this package cannot import qos (qos imports it).
type Class string

const (
	ClassSystem  Class = "system"
	ClassOnline  Class = "online"
	ClassOffline Class = "offline"
)

// Group names under the resctrl root. Every group Sluice makes starts with
// GroupPrefix; other tools' groups are left alone.
const (
	GroupPrefix  = "sluice-"
	GroupOnline  = "sluice-online"
	GroupOffline = "sluice-offline"
	GroupSystem  = "sluice-system"
	// GroupDefault is the default (root) group: system work lives there
	// unless the policy gives it a group. Sluice never writes its schemata.
	GroupDefault = ""
)

// OfflinePriorityGroup names the group of one offline priority.
func OfflinePriorityGroup(priority int) string {
	return GroupOffline + "-p" + strconv.Itoa(priority)
}

// Signals is what Decide reads: time, online latency, per-group counters
// and the workloads to place.
type Signals struct {
	Now time.Time
	// OnlineLatencyP99 is the online services' p99 latency; 0 when unknown.
	OnlineLatencyP99 time.Duration
	// Domains holds the monitoring counters per L3 domain id, per group
	// name (see Rates). Empty when the host cannot monitor: then online
	// latency alone decides and every domain is suspect.
	Domains map[int]map[string]Counters
	// Workloads are the classed cgroups whose tasks belong in a group.
	Workloads []Workload
	// Current is the offline allocation the kernel holds now, as the
	// enforcer read it; used when prev is empty so a restarted agent
	// resumes from the kernel instead of jumping.
	Current *Allocation
	// OfflineMerged is set once the enforcer ran out of CLOSIDs for
	// per-priority offline groups: plan one offline group from then on.
	OfflineMerged bool
}

// Counters are one group's monitoring values in one domain.
type Counters struct {
	OccupancyBytes   uint64  `json:"occupancyBytes"`
	TotalBytesPerSec float64 `json:"totalBytesPerSec"`
	LocalBytesPerSec float64 `json:"localBytesPerSec"`
}

// Workload is one classed cgroup.
type Workload struct {
	// CgroupPath is relative to each hierarchy root, e.g. "/sluice/offline/x".
	CgroupPath string
	Class      Class
	Priority   int
}

// Allocation is offline's ways and MB value per domain.
type Allocation struct {
	Ways map[int]int `json:"ways"`
	MB   map[int]int `json:"mb"`
}

// State is what Decide carries from one decision to the next.
type State struct {
	// Offline is the allocation last planned for offline.
	Offline Allocation `json:"offline"`
	// CalmSince is when online latency last became calm (zero while not).
	CalmSince time.Time `json:"calmSince,omitzero"`
	// LastGrow is when offline last grew.
	LastGrow time.Time `json:"lastGrow,omitzero"`
}

// Plan is the groups Sluice wants and what each holds.
type Plan struct {
	// DryRun: the enforcer reports what it would do and writes nothing.
	// Decide leaves it false; the caller copies the policy's switch.
	DryRun bool `json:"dryRun"`
	// Groups in the order to apply them: the class being tightened first,
	// so online and offline never overlap on the way.
	Groups []GroupIntent `json:"groups,omitempty"`
}

// GroupIntent is one resctrl group: its schemata and the cgroups whose
// tasks belong in it.
type GroupIntent struct {
	// Group is the directory under the resctrl root; GroupDefault (empty)
	// is the root group, whose schemata is never written.
	Group string `json:"group"`
	Class Class  `json:"class"`
	// Priorities are the offline priorities the group holds.
	Priorities []int    `json:"priorities,omitempty"`
	Schemata   Schemata `json:"schemata"`
	// Cgroups lists the cgroup paths whose tasks belong here, sorted.
	Cgroups []string `json:"cgroups,omitempty"`
	Reason  Reason   `json:"reason"`
}

// Decide is the cache and bandwidth controller. Online latency judges harm;
// the per-domain counters say whether offline is the likely cause there.
// When online suffers, offline's ways and MB drop to their floors at once
// in every suspect domain; when online has been calm (below CalmBelow of
// the target) for Ramp.Hold, they grow by one ramp step per Ramp.Every up
// to their ceilings. Without a latency target offline sits at its ceilings.
func Decide(in Signals, pol Policy, hw Hardware, prev State) (Plan, State) {
	if !pol.Enabled {
		return Plan{}, State{}
	}
	next := State{LastGrow: prev.LastGrow, Offline: Allocation{Ways: map[int]int{}, MB: map[int]int{}}}
	r := Reason{Latency: in.OnlineLatencyP99, Target: pol.OnlineLatencyTarget}
	var calm bool
	r.Kind, calm, next.CalmSince = judgeLatency(in, pol, prev.CalmSince)
	growNow := calm && in.Now.Sub(next.CalmSince) >= pol.Ramp.Hold &&
		(prev.LastGrow.IsZero() || in.Now.Sub(prev.LastGrow) >= pol.Ramp.Every)

	step := offlineStep{pol: pol, hw: hw, bounds: offlineBoundsFor(pol, hw), prev: prev.Offline, kind: r.Kind, growNow: growNow}
	if in.Current != nil {
		step.current = *in.Current
	}
	l3, hasL3 := hw.L3()
	grew, anySuspect := false, false
	for _, d := range domainUnion(l3.Domains, hasL3, hw.MB) {
		dc, dGrew := step.moveDomain(d, in.Domains[d], next.Offline)
		grew = grew || dGrew
		anySuspect = anySuspect || (r.Kind == ReasonHarm && dc.Suspect)
		r.Domains = append(r.Domains, dc)
	}

	if r.Kind == ReasonHarm && !anySuspect {
		r.Kind = ReasonHarmNotCache
	}
	if growNow {
		r.Kind = ReasonCalmGrow
		if grew {
			next.LastGrow = in.Now
		} else {
			r.Kind = ReasonAtCeiling
		}
	}
	return buildPlan(in, pol, hw, next.Offline, r, grew), next
}

// judgeLatency reads online latency against the target: the verdict
// before any domain is looked at, whether online is calm, and since when
// (zero while it is not).
func judgeLatency(in Signals, pol Policy, calmSince time.Time) (ReasonKind, bool, time.Time) {
	target := pol.OnlineLatencyTarget
	switch {
	case target <= 0:
		return ReasonStatic, false, time.Time{}
	case in.OnlineLatencyP99 <= 0:
		return ReasonNoSignal, false, time.Time{}
	case in.OnlineLatencyP99 > target:
		return ReasonHarm, false, time.Time{}
	case float64(in.OnlineLatencyP99) < pol.CalmBelow*float64(target):
		if calmSince.IsZero() {
			calmSince = in.Now
		}
		return ReasonCalmHold, true, calmSince
	}
	return ReasonWarm, false, time.Time{}
}

// offlineBounds are offline's floors and ceilings in kernel units (ways
// of the L3 mask, MB schemata values) and one MB ramp step; zero for a
// resource the host lacks.
type offlineBounds struct {
	waysFloor, waysCeil     int
	mbFloor, mbCeil, mbStep int
}

func offlineBoundsFor(pol Policy, hw Hardware) offlineBounds {
	var b offlineBounds
	if l3, ok := hw.L3(); ok {
		total := l3.Ways()
		b.waysFloor = clamp(pol.Offline.WaysFloor.AtLeast(total), 0, total)
		b.waysCeil = clamp(pol.Offline.WaysCeiling.AtMost(total), 0, total)
		b.waysFloor = min(max(b.waysFloor, l3.MinCBMBits), b.waysCeil)
	}
	if hw.MB != nil {
		b.mbFloor, b.mbCeil = hw.MB.mbValue(pol.Offline.MBFloor), hw.MB.mbValue(pol.Offline.MBCeiling)
		b.mbFloor = min(b.mbFloor, b.mbCeil)
		b.mbStep = max(1, int(pol.Ramp.MB*float64(hw.MB.MaxValue)+0.5))
	}
	return b
}

// offlineStep moves offline's allocation one domain at a time, as the
// latency verdict asks.
type offlineStep struct {
	pol    Policy
	hw     Hardware
	bounds offlineBounds
	// prev is the allocation last planned; current is what the kernel
	// holds now (empty when the enforcer could not read it).
	prev, current Allocation
	kind          ReasonKind
	growNow       bool
}

// moveDomain decides offline's ways and MB in domain d, records them in
// next, and says what changed and whether offline grew there.
func (s offlineStep) moveDomain(d int, counters map[string]Counters, next Allocation) (DomainChange, bool) {
	dc := DomainChange{Domain: d, FromWays: -1, ToWays: -1, FromMB: -1, ToMB: -1}
	dc.Suspect, dc.MBMShare, dc.OccupancyShare, dc.Measured = suspect(counters, s.pol.SuspectShare)
	l3, hasL3 := s.hw.L3()
	inL3 := hasL3 && slices.Contains(l3.Domains, d)
	inMB := s.hw.MB != nil && slices.Contains(s.hw.MB.Domains, d)
	b := s.bounds
	var w, m int
	if inL3 {
		w = s.start(s.prev.Ways, s.current.Ways, d, b.waysCeil, b.waysFloor)
		dc.FromWays = w
	}
	if inMB {
		m = s.start(s.prev.MB, s.current.MB, d, b.mbCeil, b.mbFloor)
		dc.FromMB = m
	}
	switch {
	case s.kind == ReasonStatic:
		w, m = b.waysCeil, b.mbCeil
	case s.kind == ReasonHarm && dc.Suspect:
		w, m = b.waysFloor, b.mbFloor
	case s.growNow:
		w = min(w+s.pol.Ramp.Ways, b.waysCeil)
		if inMB {
			m = min(s.hw.MB.RoundMB(m+b.mbStep), b.mbCeil)
		}
	}
	grew := false
	if inL3 {
		dc.ToWays = w
		dc.OnlineWays = onlineWays(s.pol, l3, w)
		next.Ways[d] = w
		grew = w > dc.FromWays
	}
	if inMB {
		dc.ToMB = m
		next.MB[d] = m
		grew = grew || m > dc.FromMB
	}
	return dc, grew
}

// start is where a domain's value moves from: the last plan's, else the
// kernel's when a latency target is set (a restarted agent resumes
// instead of jumping), else the ceiling; within floor and ceiling.
func (s offlineStep) start(prev, cur map[int]int, d, ceil, floor int) int {
	if v, ok := prev[d]; ok {
		return clamp(v, floor, ceil)
	}
	if v, ok := cur[d]; ok && s.pol.OnlineLatencyTarget > 0 {
		return clamp(v, floor, ceil)
	}
	return ceil
}

// onlineWays is how many ways online holds beside offline's w: the rest
// of the cache, within online's floor and ceiling.
func onlineWays(pol Policy, l3 CacheResource, w int) int {
	total := l3.Ways()
	on := clamp(total-w, pol.Online.WaysFloor.AtLeast(total), pol.Online.WaysCeiling.AtMost(total))
	return clamp(on, l3.MinCBMBits, total)
}

// suspect says whether offline holds at least share of a domain's
// measured bandwidth or occupancy. Without counters every domain is
// suspect: latency alone must then decide.
func suspect(groups map[string]Counters, share float64) (bool, float64, float64, bool) {
	var offBW, allBW, offOcc, allOcc float64
	for name, c := range groups {
		allBW += c.TotalBytesPerSec
		allOcc += float64(c.OccupancyBytes)
		if classOfGroup(name) == ClassOffline {
			offBW += c.TotalBytesPerSec
			offOcc += float64(c.OccupancyBytes)
		}
	}
	if allBW == 0 && allOcc == 0 {
		return true, 0, 0, false
	}
	var bw, occ float64
	if allBW > 0 {
		bw = offBW / allBW
	}
	if allOcc > 0 {
		occ = offOcc / allOcc
	}
	return bw >= share || occ >= share, bw, occ, true
}

// classOfGroup maps a group name back to its class.
func classOfGroup(name string) Class {
	switch {
	case name == GroupOnline:
		return ClassOnline
	case name == GroupOffline || len(name) > len(GroupOffline)+2 && name[:len(GroupOffline)+2] == GroupOffline+"-p":
		return ClassOffline
	}
	return ClassSystem
}

func domainUnion(l3 []int, hasL3 bool, mb *MemBandwidth) []int {
	var ds []int
	if hasL3 {
		ds = append(ds, l3...)
	}
	if mb != nil {
		ds = append(ds, mb.Domains...)
	}
	slices.Sort(ds)
	return slices.Compact(ds)
}

func clamp(v, lo, hi int) int { return max(lo, min(v, hi)) }

// buildPlan lays the allocation out as masks and assigns workloads.
func buildPlan(in Signals, pol Policy, hw Hardware, off Allocation, r Reason, offlineGrew bool) Plan {
	gs := groupSet{masks: newMasks(pol, hw, off), byName: map[string]*GroupIntent{}}
	// Every managed group exists even before it has workloads, so a
	// workload's first tasks land in a group that already holds the
	// right schemata.
	gs.group(GroupOnline, ClassOnline)
	if pol.System != nil {
		gs.group(GroupSystem, ClassSystem)
	}
	prios := offlinePriorities(in.Workloads)
	perPriority := pol.OfflinePriorityGroups && !in.OfflineMerged
	// One CLOSID each for the default group, the groups above and every
	// offline priority; short of that, offline priorities share a group.
	if perPriority && hw.NumCLOSIDs() > 0 && 1+len(gs.byName)+prios > hw.NumCLOSIDs() {
		perPriority = false
		r.Merged = true
	}
	if in.OfflineMerged {
		r.Merged = true
	}
	if !perPriority || prios == 0 {
		gs.group(GroupOffline, ClassOffline)
	}
	gs.assign(in.Workloads, pol.System != nil, perPriority)
	return gs.plan(r, offlineGrew)
}

// offlinePriorities counts the distinct priorities of offline workloads.
func offlinePriorities(ws []Workload) int {
	prios := map[int]bool{}
	for _, w := range ws {
		if w.Class == ClassOffline {
			prios[w.Priority] = true
		}
	}
	return len(prios)
}

// masks lays offline's allocation out as each class's schemata.
type masks struct {
	pol   Policy
	hw    Hardware
	off   Allocation
	l3    CacheResource
	hasL3 bool
	// base is the lowest bit of the L3 mask, total its ways.
	base, total int
	// offAtTop: offline takes the high end of the mask and online and
	// system the low end, instead of the other way round.
	offAtTop bool
}

func newMasks(pol Policy, hw Hardware, off Allocation) masks {
	m := masks{pol: pol, hw: hw, off: off}
	m.l3, m.hasL3 = hw.L3()
	if m.hasL3 {
		m.base = bits.TrailingZeros64(m.l3.CBMMask)
	}
	m.total = m.l3.Ways()
	m.offAtTop = m.hasL3 && m.offlineAtTop()
	return m
}

// offlineAtTop: offline takes the low end of the mask unless that
// overlaps the shareable ways (used by I/O agents) and the high end does
// not.
func (m masks) offlineAtTop() bool {
	if m.l3.ShareableBits == 0 {
		return false
	}
	maxOff := 0
	for _, w := range m.off.Ways {
		maxOff = max(maxOff, w)
	}
	return wayMask(m.base, maxOff)&m.l3.ShareableBits != 0 &&
		wayMask(m.base+m.total-maxOff, maxOff)&m.l3.ShareableBits == 0
}

// schemata is class's line for every L3 and MB domain.
func (m masks) schemata(class Class) Schemata {
	var s Schemata
	if m.hasL3 {
		for _, d := range m.l3.Domains {
			mask := m.l3Mask(class, m.off.Ways[d])
			for _, name := range m.hw.l3Names() {
				s.Set(name, d, mask)
			}
		}
	}
	if mb := m.hw.MB; mb != nil {
		for _, d := range mb.Domains {
			s.Set(ResourceMB, d, uint64(m.mbFor(class, d)))
		}
	}
	return s
}

// l3Mask is class's ways in a domain where offline holds offWays.
func (m masks) l3Mask(class Class, offWays int) uint64 {
	switch class {
	case ClassOffline:
		if m.offAtTop {
			return wayMask(m.base+m.total-offWays, offWays)
		}
		return wayMask(m.base, offWays)
	case ClassOnline:
		return m.awayFromOffline(onlineWays(m.pol, m.l3, offWays))
	case ClassSystem:
		return m.awayFromOffline(clamp(m.pol.System.WaysCeiling.AtMost(m.total), m.l3.MinCBMBits, m.total))
	}
	return 0
}

// awayFromOffline is n ways at the end of the mask offline does not start
// from.
func (m masks) awayFromOffline(n int) uint64 {
	if m.offAtTop {
		return wayMask(m.base, n)
	}
	return wayMask(m.base+m.total-n, n)
}

// mbFor is class's MB value in domain d.
func (m masks) mbFor(class Class, d int) int {
	switch class {
	case ClassOffline:
		return m.off.MB[d]
	case ClassOnline:
		return m.hw.MB.mbValue(m.pol.Online.MBCeiling)
	case ClassSystem:
		return m.hw.MB.mbValue(m.pol.System.MBCeiling)
	}
	return 0
}

// groupSet collects the plan's groups by name, each made once with its
// class's schemata (none for the default group, which Sluice never
// writes).
type groupSet struct {
	masks  masks
	byName map[string]*GroupIntent
}

func (gs *groupSet) group(name string, class Class) *GroupIntent {
	if g, ok := gs.byName[name]; ok {
		return g
	}
	g := &GroupIntent{Group: name, Class: class}
	if name != GroupDefault {
		g.Schemata = gs.masks.schemata(class)
	}
	gs.byName[name] = g
	return g
}

// assign puts each workload's cgroup in its class's group: offline in its
// priority's group when perPriority, anything neither online nor offline
// in the system group when the policy has one and in the default group
// otherwise.
func (gs *groupSet) assign(ws []Workload, systemGroup, perPriority bool) {
	for _, w := range ws {
		var g *GroupIntent
		switch w.Class {
		case ClassOnline:
			g = gs.group(GroupOnline, ClassOnline)
		case ClassOffline:
			if perPriority {
				g = gs.group(OfflinePriorityGroup(w.Priority), ClassOffline)
			} else {
				g = gs.group(GroupOffline, ClassOffline)
			}
			if !slices.Contains(g.Priorities, w.Priority) {
				g.Priorities = append(g.Priorities, w.Priority)
			}
		default:
			name := GroupDefault
			if systemGroup {
				name = GroupSystem
			}
			g = gs.group(name, ClassSystem)
		}
		g.Cgroups = append(g.Cgroups, w.CgroupPath)
	}
}

// plan lists the groups in the order to apply them, sorted within each
// class, each with the decision's reason. Tighten before loosening: when
// offline grows, online shrinks first.
func (gs *groupSet) plan(r Reason, offlineGrew bool) Plan {
	first := []Class{ClassOffline, ClassSystem, ClassOnline}
	if offlineGrew {
		first = []Class{ClassOnline, ClassSystem, ClassOffline}
	}
	names := slices.Sorted(maps.Keys(gs.byName))
	var plan Plan
	for _, class := range first {
		for _, name := range names {
			g := gs.byName[name]
			if g.Class != class {
				continue
			}
			slices.Sort(g.Cgroups)
			slices.Sort(g.Priorities)
			g.Reason = r
			g.Reason.Class = class
			g.Reason.Group = name
			plan.Groups = append(plan.Groups, *g)
		}
	}
	return plan
}
