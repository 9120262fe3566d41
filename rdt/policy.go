package rdt

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Policy is the resolved rdt section of a policy file. Shares are fractions
// in [0,1]; Ways may be a count or a share of the cache's ways.
type Policy struct {
	// Enabled turns cache and bandwidth partitioning on. Off, Decide plans
	// nothing and the enforcer leaves resctrl alone.
	Enabled bool
	// OnlineLatencyTarget is the online p99 latency above which online is
	// judged to suffer; 0 holds offline at its ceilings (static
	// partitioning, no latency signal needed).
	OnlineLatencyTarget time.Duration
	// CalmBelow is the share of the target (0..1) online latency must stay
	// under before offline grows back.
	CalmBelow float64
	// SuspectShare is the share (0..1) of a cache domain's measured
	// bandwidth or occupancy offline must hold there to be blamed for
	// online's latency; domains where offline holds less are left alone.
	SuspectShare float64
	// OfflinePriorityGroups gives each offline priority its own group (and
	// so its own counters) while CLOSIDs last.
	OfflinePriorityGroups bool
	Online                ClassPolicy
	Offline               ClassPolicy
	// System, when set, gives system work its own group; nil leaves it in
	// the default group, which Sluice never writes.
	System *ClassPolicy
	Ramp   Ramp
}

// ClassPolicy bounds one class's cache ways and memory bandwidth.
//
// Offline moves between floor and ceiling. Online always holds at least
// WaysFloor ways (offline's ceiling must leave them) and at most
// WaysCeiling; its bandwidth sits at MBCeiling. System, when it has a group,
// sits at its ceilings on online's side of the cache.
type ClassPolicy struct {
	WaysFloor, WaysCeiling Ways
	// MBFloor and MBCeiling are shares of full bandwidth (0..1].
	MBFloor, MBCeiling float64
}

// Ways is a number of cache ways: a Count, or a Share of the cache's ways
// when Count is 0.
type Ways struct {
	Count int
	Share float64
}

// AtLeast resolves a floor on a cache of total ways: a share rounds up,
// so a reservation never shrinks below what was asked.
func (w Ways) AtLeast(total int) int {
	if w.Count > 0 {
		return w.Count
	}
	return int(math.Ceil(w.Share*float64(total) - 1e-9))
}

// AtMost resolves a ceiling: a share rounds down, so a cap never grows
// above what was asked.
func (w Ways) AtMost(total int) int {
	if w.Count > 0 {
		return w.Count
	}
	return int(math.Floor(w.Share*float64(total) + 1e-9))
}

func (w Ways) String() string {
	if w.Count > 0 {
		return fmt.Sprintf("%d ways", w.Count)
	}
	return fmt.Sprintf("%g%% of ways", w.Share*100)
}

// Ramp is how offline grows back once online is calm.
type Ramp struct {
	// Ways and MB are added per step (MB as a share of full bandwidth).
	Ways int
	MB   float64
	// Every is the least time between two growth steps.
	Every time.Duration
	// Hold is how long online must stay calm before the first step.
	Hold time.Duration
}

// DefaultPolicy is what an rdt section means when it sets nothing.
func DefaultPolicy() Policy {
	return Policy{
		Enabled:               true,
		CalmBelow:             0.8,
		SuspectShare:          0.10,
		OfflinePriorityGroups: false,
		Online:                ClassPolicy{WaysFloor: Ways{Share: 0.5}, WaysCeiling: Ways{Share: 1}, MBFloor: 1, MBCeiling: 1},
		Offline:               ClassPolicy{WaysFloor: Ways{Share: 0.1}, WaysCeiling: Ways{Share: 0.5}, MBFloor: 0.1, MBCeiling: 0.5},
		Ramp:                  Ramp{Ways: 1, MB: 0.1, Every: time.Second, Hold: 5 * time.Second},
	}
}

// Problem is one thing wrong with a policy on this hardware; Path is the
// field as the policy file spells it below "rdt.", e.g. "offline.waysFloor".
type Problem struct {
	Path string
	Msg  string
}

// ValidationError lists every problem Validate found.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "rdt.%s: %s", p.Path, p.Msg)
	}
	return b.String()
}

// Validate checks the policy against the host's hardware and returns a
// *ValidationError listing every problem, or nil. Checks that need no
// hardware (shares in range, floors below ceilings) are the policy file
// parser's, which reports them with lines; they are repeated here so a
// Policy built in code is checked too. Resources the host lacks are not
// problems: their intents are reported unsupported.
func (p Policy) Validate(hw Hardware) error {
	var probs []Problem
	add := func(path, format string, args ...any) {
		probs = append(probs, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if !p.Enabled {
		return nil
	}
	classes := []struct {
		name string
		c    ClassPolicy
	}{{"online", p.Online}, {"offline", p.Offline}}
	if p.System != nil {
		classes = append(classes, struct {
			name string
			c    ClassPolicy
		}{"system", *p.System})
	}
	for _, cl := range classes {
		c := cl.c
		if c.MBFloor > c.MBCeiling {
			add(cl.name+".mbFloor", "%g%% is above mbCeiling %g%%", c.MBFloor*100, c.MBCeiling*100)
		}
		if c.MBCeiling <= 0 || c.MBCeiling > 1 {
			add(cl.name+".mbCeiling", "%g%% is not in (0%%, 100%%]", c.MBCeiling*100)
		}
		if l3, ok := hw.L3(); ok {
			total := l3.Ways()
			lo, hi := c.WaysFloor.AtLeast(total), c.WaysCeiling.AtMost(total)
			if lo < l3.MinCBMBits {
				add(cl.name+".waysFloor", "%s is %d ways, fewer than the hardware's min_cbm_bits %d", c.WaysFloor, lo, l3.MinCBMBits)
			}
			if hi > total {
				add(cl.name+".waysCeiling", "%s is more than the cache's %d ways", c.WaysCeiling, total)
			}
			if lo > hi {
				add(cl.name+".waysFloor", "%s (%d ways) is above waysCeiling %s (%d ways)", c.WaysFloor, lo, c.WaysCeiling, hi)
			}
		}
		if mb := hw.MB; mb != nil {
			if v := int(c.MBFloor*float64(mb.MaxValue) + 0.5); v < mb.Min {
				add(cl.name+".mbFloor", "%g%% is %d, below the hardware's min_bandwidth %d", c.MBFloor*100, v, mb.Min)
			}
		}
	}
	if l3, ok := hw.L3(); ok {
		total := l3.Ways()
		if on, off := p.Online.WaysFloor.AtLeast(total), p.Offline.WaysCeiling.AtMost(total); on+off > total {
			add("offline.waysCeiling", "%s (%d ways) plus online.waysFloor %s (%d ways) is more than the cache's %d ways",
				p.Offline.WaysCeiling, off, p.Online.WaysFloor, on, total)
		}
	}
	if p.OnlineLatencyTarget > 0 {
		if p.Ramp.Ways <= 0 {
			add("ramp.ways", "%d: growth needs at least one way per step", p.Ramp.Ways)
		}
		if p.Ramp.MB <= 0 {
			add("ramp.mb", "%g%%: growth needs a positive bandwidth step", p.Ramp.MB*100)
		}
		if p.CalmBelow <= 0 || p.CalmBelow > 1 {
			add("calmBelow", "%g%% is not in (0%%, 100%%]", p.CalmBelow*100)
		}
	}
	if len(probs) == 0 {
		return nil
	}
	return &ValidationError{Problems: probs}
}
