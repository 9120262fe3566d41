package rdt

import (
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
	l3, hasL3 := hw.L3()
	next := State{CalmSince: prev.CalmSince, LastGrow: prev.LastGrow, Offline: Allocation{Ways: map[int]int{}, MB: map[int]int{}}}

	// Bounds in kernel units.
	var wFloor, wCeil, total int
	if hasL3 {
		total = l3.Ways()
		wFloor, wCeil = clamp(pol.Offline.WaysFloor.AtLeast(total), 0, total), clamp(pol.Offline.WaysCeiling.AtMost(total), 0, total)
		wFloor = min(max(wFloor, l3.MinCBMBits), wCeil)
	}
	var mFloor, mCeil, mStep int
	if hw.MB != nil {
		mFloor, mCeil = hw.MB.mbValue(pol.Offline.MBFloor), hw.MB.mbValue(pol.Offline.MBCeiling)
		mFloor = min(mFloor, mCeil)
		mStep = max(1, int(pol.Ramp.MB*float64(hw.MB.MaxValue)+0.5))
	}
	start := func(prev, cur map[int]int, d, ceil, floor int) int {
		if v, ok := prev[d]; ok {
			return clamp(v, floor, ceil)
		}
		if v, ok := cur[d]; ok && pol.OnlineLatencyTarget > 0 {
			return clamp(v, floor, ceil)
		}
		return ceil
	}
	var curWays, curMB map[int]int
	if in.Current != nil {
		curWays, curMB = in.Current.Ways, in.Current.MB
	}

	r := Reason{Latency: in.OnlineLatencyP99, Target: pol.OnlineLatencyTarget}
	target := pol.OnlineLatencyTarget
	calm := false
	switch {
	case target <= 0:
		r.Kind = ReasonStatic
		next.CalmSince = time.Time{}
	case in.OnlineLatencyP99 <= 0:
		r.Kind = ReasonNoSignal
		next.CalmSince = time.Time{}
	case in.OnlineLatencyP99 > target:
		r.Kind = ReasonHarm
		next.CalmSince = time.Time{}
	case float64(in.OnlineLatencyP99) < pol.CalmBelow*float64(target):
		calm = true
		if next.CalmSince.IsZero() {
			next.CalmSince = in.Now
		}
		r.Kind = ReasonCalmHold
	default:
		r.Kind = ReasonWarm
		next.CalmSince = time.Time{}
	}
	growNow := calm && in.Now.Sub(next.CalmSince) >= pol.Ramp.Hold &&
		(prev.LastGrow.IsZero() || in.Now.Sub(prev.LastGrow) >= pol.Ramp.Every)

	domains := domainUnion(l3.Domains, hasL3, hw.MB)
	grew, anySuspect := false, false
	for _, d := range domains {
		dc := DomainChange{Domain: d, FromWays: -1, ToWays: -1, FromMB: -1, ToMB: -1}
		dc.Suspect, dc.MBMShare, dc.OccupancyShare, dc.Measured = suspect(in.Domains[d], pol.SuspectShare)
		inL3 := hasL3 && slices.Contains(l3.Domains, d)
		inMB := hw.MB != nil && slices.Contains(hw.MB.Domains, d)
		var w, m int
		if inL3 {
			w = start(prev.Offline.Ways, curWays, d, wCeil, wFloor)
			dc.FromWays = w
		}
		if inMB {
			m = start(prev.Offline.MB, curMB, d, mCeil, mFloor)
			dc.FromMB = m
		}
		switch {
		case r.Kind == ReasonStatic:
			w, m = wCeil, mCeil
		case r.Kind == ReasonHarm && dc.Suspect:
			anySuspect = true
			w, m = wFloor, mFloor
		case growNow:
			w = min(w+pol.Ramp.Ways, wCeil)
			if inMB {
				m = min(hw.MB.RoundMB(m+mStep), mCeil)
			}
		}
		if inL3 {
			dc.ToWays = w
			dc.OnlineWays = onlineWays(pol, l3, w)
			next.Offline.Ways[d] = w
			grew = grew || w > dc.FromWays
		}
		if inMB {
			dc.ToMB = m
			next.Offline.MB[d] = m
			grew = grew || m > dc.FromMB
		}
		r.Domains = append(r.Domains, dc)
	}
	if r.Kind == ReasonHarm && !anySuspect {
		r.Kind = ReasonHarmNotCache
	}
	if calm && growNow {
		r.Kind = ReasonCalmGrow
		if grew {
			next.LastGrow = in.Now
		} else {
			r.Kind = ReasonAtCeiling
		}
	}

	return buildPlan(in, pol, hw, next.Offline, r, grew), next
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
	l3, hasL3 := hw.L3()
	var offLo, onLo, sysLo int
	var onWays, sysWays int
	base := 0
	if hasL3 {
		base = bits.TrailingZeros64(l3.CBMMask)
	}
	total := l3.Ways()
	// Offline takes the low end of the mask unless that overlaps the
	// shareable ways (used by I/O agents) and the high end does not;
	// online and system take the other end.
	offAtTop := false
	if hasL3 && l3.ShareableBits != 0 {
		maxOff := 0
		for _, w := range off.Ways {
			maxOff = max(maxOff, w)
		}
		if wayMask(base, maxOff)&l3.ShareableBits != 0 && wayMask(base+total-maxOff, maxOff)&l3.ShareableBits == 0 {
			offAtTop = true
		}
	}
	schemata := func(class Class) Schemata {
		var s Schemata
		if hasL3 {
			for _, d := range l3.Domains {
				w := off.Ways[d]
				var mask uint64
				switch class {
				case ClassOffline:
					offLo = base
					if offAtTop {
						offLo = base + total - w
					}
					mask = wayMask(offLo, w)
				case ClassOnline:
					onWays = onlineWays(pol, l3, w)
					onLo = base + total - onWays
					if offAtTop {
						onLo = base
					}
					mask = wayMask(onLo, onWays)
				case ClassSystem:
					sysWays = clamp(pol.System.WaysCeiling.AtMost(total), l3.MinCBMBits, total)
					sysLo = base + total - sysWays
					if offAtTop {
						sysLo = base
					}
					mask = wayMask(sysLo, sysWays)
				}
				for _, name := range hw.l3Names() {
					s.Set(name, d, mask)
				}
			}
		}
		if mb := hw.MB; mb != nil {
			for _, d := range mb.Domains {
				var v int
				switch class {
				case ClassOffline:
					v = off.MB[d]
				case ClassOnline:
					v = mb.mbValue(pol.Online.MBCeiling)
				case ClassSystem:
					v = mb.mbValue(pol.System.MBCeiling)
				}
				s.Set(ResourceMB, d, uint64(v))
			}
		}
		return s
	}

	byGroup := map[string]*GroupIntent{}
	var order []string
	group := func(name string, class Class) *GroupIntent {
		if g, ok := byGroup[name]; ok {
			return g
		}
		g := &GroupIntent{Group: name, Class: class}
		if name != GroupDefault {
			g.Schemata = schemata(class)
		}
		byGroup[name] = g
		order = append(order, name)
		return g
	}
	// Every managed group exists even before it has workloads, so a
	// workload's first tasks land in a group that already holds the
	// right schemata.
	group(GroupOnline, ClassOnline)
	if pol.System != nil {
		group(GroupSystem, ClassSystem)
	}
	offlinePrios := map[int]bool{}
	for _, w := range in.Workloads {
		if w.Class == ClassOffline {
			offlinePrios[w.Priority] = true
		}
	}
	perPriority := pol.OfflinePriorityGroups && !in.OfflineMerged
	if perPriority && hw.NumCLOSIDs() > 0 && 1+len(byGroup)+len(offlinePrios) > hw.NumCLOSIDs() {
		perPriority = false
		r.Merged = true
	}
	if in.OfflineMerged {
		r.Merged = true
	}
	if !perPriority || len(offlinePrios) == 0 {
		group(GroupOffline, ClassOffline)
	}
	for _, w := range in.Workloads {
		var g *GroupIntent
		switch w.Class {
		case ClassOnline:
			g = group(GroupOnline, ClassOnline)
		case ClassOffline:
			if perPriority {
				g = group(OfflinePriorityGroup(w.Priority), ClassOffline)
			} else {
				g = group(GroupOffline, ClassOffline)
			}
			if !slices.Contains(g.Priorities, w.Priority) {
				g.Priorities = append(g.Priorities, w.Priority)
			}
		default:
			if pol.System != nil {
				g = group(GroupSystem, ClassSystem)
			} else {
				g = group(GroupDefault, ClassSystem)
			}
		}
		g.Cgroups = append(g.Cgroups, w.CgroupPath)
	}

	var plan Plan
	// Tighten before loosening: when offline grows, online shrinks first.
	first := []Class{ClassOffline, ClassSystem, ClassOnline}
	if offlineGrew {
		first = []Class{ClassOnline, ClassSystem, ClassOffline}
	}
	slices.Sort(order)
	for _, class := range first {
		for _, name := range order {
			g := byGroup[name]
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
