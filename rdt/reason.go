package rdt

import (
	"fmt"
	"strings"
	"time"
)

// ReasonKind is why offline's allocation is what it is.
type ReasonKind string

const (
	// ReasonStatic: no latency target, offline sits at its ceilings.
	ReasonStatic ReasonKind = "static"
	// ReasonNoSignal: a target is set but online latency is unknown; hold.
	ReasonNoSignal ReasonKind = "no-latency-signal"
	// ReasonHarm: online latency is above target and offline holds a
	// suspect share of cache or bandwidth: offline cut to its floors.
	ReasonHarm ReasonKind = "online-harmed"
	// ReasonHarmNotCache: online latency is above target but offline holds
	// too little cache and bandwidth to blame; hold.
	ReasonHarmNotCache ReasonKind = "online-harmed-not-by-cache"
	// ReasonWarm: latency between calm and target; hold.
	ReasonWarm ReasonKind = "online-warm"
	// ReasonCalmHold: calm, but not yet for Ramp.Hold (or within Ramp.Every
	// of the last step); hold.
	ReasonCalmHold ReasonKind = "online-calm-hold"
	// ReasonCalmGrow: calm long enough; offline grows one ramp step.
	ReasonCalmGrow ReasonKind = "online-calm-grow"
	// ReasonAtCeiling: calm, and offline already at its ceilings.
	ReasonAtCeiling ReasonKind = "at-ceiling"
)

// Reason explains one group intent: the controller's verdict and, per
// domain, offline's share of the counters and its allocation change.
type Reason struct {
	Kind    ReasonKind     `json:"kind"`
	Class   Class          `json:"class"`
	Group   string         `json:"group"`
	Latency time.Duration  `json:"latency,omitempty"`
	Target  time.Duration  `json:"target,omitempty"`
	Domains []DomainChange `json:"domains,omitempty"`
	// Merged: offline priorities share one group (out of CLOSIDs).
	Merged bool `json:"merged,omitempty"`
}

// DomainChange is offline's allocation change in one domain. -1 marks a
// resource the domain does not have.
type DomainChange struct {
	Domain int `json:"domain"`
	// Measured says counters were available; without them the domain is
	// suspect by default.
	Measured       bool    `json:"measured"`
	Suspect        bool    `json:"suspect"`
	MBMShare       float64 `json:"mbmShare"`
	OccupancyShare float64 `json:"occupancyShare"`
	FromWays       int     `json:"fromWays"`
	ToWays         int     `json:"toWays"`
	FromMB         int     `json:"fromMB"`
	ToMB           int     `json:"toMB"`
	// OnlineWays is what online holds beside offline's ToWays.
	OnlineWays int `json:"onlineWays,omitempty"`
}

// String reads like: "offline (sluice-offline): online p99 9ms > target
// 5ms, offline cut to its floors where it is suspect; domain 0: offline
// holds 70% of bandwidth, 75% of occupancy (suspect); offline ways 5->2,
// MB 50->10".
func (r Reason) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", r.Class)
	if r.Group != "" {
		fmt.Fprintf(&b, " (%s)", r.Group)
	} else {
		b.WriteString(" (default group)")
	}
	b.WriteString(": ")
	switch r.Kind {
	case ReasonStatic:
		b.WriteString("no latency target, offline at its ceilings")
	case ReasonNoSignal:
		fmt.Fprintf(&b, "no online latency measured (target %v), holding", r.Target)
	case ReasonHarm:
		fmt.Fprintf(&b, "online p99 %v > target %v, offline cut to its floors where it is suspect", r.Latency, r.Target)
	case ReasonHarmNotCache:
		fmt.Fprintf(&b, "online p99 %v > target %v but offline holds little cache or bandwidth, holding", r.Latency, r.Target)
	case ReasonWarm:
		fmt.Fprintf(&b, "online p99 %v near target %v, holding", r.Latency, r.Target)
	case ReasonCalmHold:
		fmt.Fprintf(&b, "online p99 %v calm (target %v), waiting before growing offline", r.Latency, r.Target)
	case ReasonCalmGrow:
		fmt.Fprintf(&b, "online p99 %v calm (target %v), offline grows one ramp step", r.Latency, r.Target)
	case ReasonAtCeiling:
		fmt.Fprintf(&b, "online p99 %v calm (target %v), offline at its ceilings", r.Latency, r.Target)
	default:
		b.WriteString(string(r.Kind))
	}
	if r.Merged && r.Class == ClassOffline {
		b.WriteString("; offline priorities merged into one group (out of CLOSIDs)")
	}
	for _, d := range r.Domains {
		fmt.Fprintf(&b, "; domain %d:", d.Domain)
		if d.Measured {
			fmt.Fprintf(&b, " offline holds %.0f%% of bandwidth, %.0f%% of occupancy", d.MBMShare*100, d.OccupancyShare*100)
			if d.Suspect {
				b.WriteString(" (suspect)")
			}
		} else {
			b.WriteString(" unmeasured")
		}
		if d.FromWays >= 0 {
			fmt.Fprintf(&b, "; offline ways %d->%d", d.FromWays, d.ToWays)
		}
		if d.FromMB >= 0 {
			fmt.Fprintf(&b, ", MB %d->%d", d.FromMB, d.ToMB)
		}
		if r.Class == ClassOnline && d.FromWays >= 0 {
			fmt.Fprintf(&b, ", online ways %d", d.OnlineWays)
		}
	}
	return b.String()
}
