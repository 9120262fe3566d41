package netqos

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Signals is what the agent observed this tick.
type Signals struct {
	// At is when the counters were read (the caller's clock).
	At      time.Time
	Devices []DeviceSignal
	// RxBytes are the cumulative bytes received per tier by classified
	// sockets on the whole host (the ingress classifier's counters).
	RxBytes [NumTiers]uint64
	// IngressBudgetBitsPerSec is bronze's ingress budget the kernel holds
	// now (0: none yet), adopted by a restarted agent.
	IngressBudgetBitsPerSec uint64
}

// DeviceSignal is one shaped device's state this tick.
type DeviceSignal struct {
	Link Link
	// TxBytes are the cumulative bytes sent per tier class.
	TxBytes [NumTiers]uint64
	// BronzeCeilBitsPerSec is bronze's ceiling the kernel holds now (0:
	// no tree yet), adopted by a restarted agent so it resumes without a
	// gap.
	BronzeCeilBitsPerSec uint64
}

// State is what Decide carries from one tick to the next. The zero value
// is a fresh start.
type State struct {
	devices map[string]dirState
	ingress dirState
}

type dirState struct {
	at    time.Time
	bytes [NumTiers]uint64
	ceil  uint64
}

// Plan is what the network enforcer should make true.
type Plan struct {
	Devices []DevicePlan
	// Ingress is bronze's host-wide ingress budget; nil leaves ingress
	// policing off.
	Ingress *Intent
	// DSCP is the code point per tier to stamp on egress (see Policy.DSCP).
	DSCP map[Tier]uint8
}

// DevicePlan is the tree one device should have. Tree is empty when the
// device is not to be shaped (Ceil.Reason says why).
type DevicePlan struct {
	Device             string
	Tree               Tree
	Ceil               Intent // bronze's egress ceiling
	ReplaceForeignRoot bool
}

// Shape reports whether the plan shapes the device.
func (d DevicePlan) Shape() bool { return len(d.Tree.Classes) > 0 }

// Intent is one decided value with its reason.
type Intent struct {
	BitsPerSec uint64
	Reason     Reason
}

// ReasonKind says which rule decided a value.
type ReasonKind uint8

const (
	// ReasonStart: no earlier value and no rates yet; bronze starts at its floor.
	ReasonStart ReasonKind = iota
	// ReasonAdopt: no rates yet; the value the kernel holds is kept.
	ReasonAdopt
	// ReasonHold: the target equals the current value.
	ReasonHold
	// ReasonCut: gold and silver use more; bronze is cut at once.
	ReasonCut
	// ReasonRamp: gold and silver use less; bronze grows back, by at
	// most the ramp per second.
	ReasonRamp
	// ReasonNoLink: the device has no known rate and is not shaped.
	ReasonNoLink
	// ReasonBadPolicy: the policy does not fit the device's rate.
	ReasonBadPolicy
)

func (k ReasonKind) String() string {
	if int(k) < len(reasonKinds) {
		return reasonKinds[k]
	}
	return fmt.Sprintf("reason(%d)", uint8(k))
}

// Reason explains one bronze ceiling or budget.
type Reason struct {
	Kind                                                 ReasonKind
	Device                                               string // "" for the host-wide ingress budget
	Direction                                            string // "egress" or "ingress"
	LinkBits, GoldUsedBits, SilverUsedBits, HeadroomBits uint64
	TargetBits, PrevBits, NewBits, FloorBits             uint64
	Detail                                               string // ReasonNoLink / ReasonBadPolicy
}

func (r Reason) String() string {
	where := r.Direction
	if r.Device != "" {
		where = r.Device + " " + r.Direction
	}
	f := FormatRate
	switch r.Kind {
	case ReasonNoLink, ReasonBadPolicy:
		return fmt.Sprintf("%s: not shaped: %s", where, r.Detail)
	case ReasonStart:
		return fmt.Sprintf("%s: bronze %s starts at its floor %s (link %s - guarantees - headroom) until rates are known", where, r.noun(), f(r.NewBits), f(r.LinkBits))
	case ReasonAdopt:
		return fmt.Sprintf("%s: bronze %s %s adopted from the kernel until rates are known", where, r.noun(), f(r.NewBits))
	}
	formula := fmt.Sprintf("link %s - gold %s - silver %s - headroom %s = %s (floor %s)",
		f(r.LinkBits), f(r.GoldUsedBits), f(r.SilverUsedBits), f(r.HeadroomBits), f(r.TargetBits), f(r.FloorBits))
	switch r.Kind {
	case ReasonCut:
		return fmt.Sprintf("%s: bronze %s cut %s -> %s: %s", where, r.noun(), f(r.PrevBits), f(r.NewBits), formula)
	case ReasonRamp:
		return fmt.Sprintf("%s: bronze %s ramps %s -> %s: %s", where, r.noun(), f(r.PrevBits), f(r.NewBits), formula)
	}
	return fmt.Sprintf("%s: bronze %s holds at %s: %s", where, r.noun(), f(r.NewBits), formula)
}

func (r Reason) noun() string {
	if r.Direction == "ingress" {
		return "budget"
	}
	return "ceil"
}

// Decide turns this tick's signals into the plan: per device the tree
// with bronze's ceiling = link - gold used - silver used - headroom (never
// below bronze's floor), cut at once when gold or silver grow, grown back
// by at most the ramp per second; and the same rule for bronze's ingress
// budget against the sum of the shaped links. Pure: time comes in Signals.
func Decide(in Signals, pol Policy, prev State) (Plan, State) {
	next := State{devices: make(map[string]dirState, len(in.Devices))}
	if !pol.Enabled() {
		return Plan{}, next
	}
	plan := Plan{DSCP: maps.Clone(pol.DSCP)}
	var ingressLink uint64
	for _, d := range in.Devices {
		dp := DevicePlan{Device: d.Link.Device, ReplaceForeignRoot: pol.ReplaceForeignRoot}
		l := d.Link.RateBitsPerSec
		if l == 0 {
			dp.Ceil.Reason = Reason{Kind: ReasonNoLink, Device: d.Link.Device, Direction: "egress",
				Detail: "the driver reports no link speed and the policy sets no linkRate"}
			plan.Devices = append(plan.Devices, dp)
			continue
		}
		if err := pol.Fits(l); err != nil {
			dp.Ceil.Reason = Reason{Kind: ReasonBadPolicy, Device: d.Link.Device, Direction: "egress", LinkBits: l, Detail: err.Error()}
			plan.Devices = append(plan.Devices, dp)
			continue
		}
		ingressLink += l
		ps, had := prev.devices[d.Link.Device]
		st, it := step(pol, l, in.At, d.TxBytes, d.BronzeCeilBitsPerSec, ps, had)
		it.Reason.Device, it.Reason.Direction = d.Link.Device, "egress"
		dp.Ceil = it
		next.devices[d.Link.Device] = st
		dp.Tree, _ = Desire(pol, d.Link, it.BitsPerSec) // Fits checked above
		plan.Devices = append(plan.Devices, dp)
	}
	if pol.Ingress && ingressLink > 0 {
		st, it := step(pol, ingressLink, in.At, in.RxBytes, in.IngressBudgetBitsPerSec, prev.ingress, !prev.ingress.at.IsZero())
		it.Reason.Direction = "ingress"
		next.ingress = st
		plan.Ingress = &it
	}
	return plan, next
}

// step runs the bronze ceiling rule for one direction of one link.
func step(pol Policy, link uint64, at time.Time, bytes [NumTiers]uint64, kernel uint64, prev dirState, had bool) (dirState, Intent) {
	floor := BronzeFloor(pol, link)
	r := Reason{LinkBits: link, HeadroomBits: pol.HeadroomBitsPerSec, FloorBits: floor}
	st := dirState{at: at, bytes: bytes}
	cur := prev.ceil
	if !had || cur == 0 {
		cur = kernel
	}
	dt := at.Sub(prev.at)
	rates, ok := usedRates(prev, bytes, dt)
	if !had || !ok {
		// No rate this tick: keep what is there (a restarted agent adopts
		// the kernel's ceiling), else start at the floor.
		if cur == 0 {
			r.Kind, r.NewBits = ReasonStart, floor
		} else {
			r.Kind, r.NewBits = ReasonAdopt, min(max(cur, floor), link)
		}
		st.ceil = r.NewBits
		return st, Intent{BitsPerSec: r.NewBits, Reason: r}
	}
	r.GoldUsedBits, r.SilverUsedBits = rates[Gold], rates[Silver]
	target := satSub(link, rates[Gold], rates[Silver], pol.HeadroomBitsPerSec)
	target = quantize(min(max(target, floor), link), floor, link)
	r.TargetBits, r.PrevBits = target, cur
	switch {
	case target < cur:
		r.Kind, r.NewBits = ReasonCut, target
	case target > cur:
		r.Kind, r.NewBits = ReasonRamp, target
		if pol.RampBitsPerSecPerSec > 0 {
			grow := uint64(float64(pol.RampBitsPerSecPerSec) * dt.Seconds())
			if cur+grow >= cur && cur+grow < target {
				r.NewBits = cur + grow
			}
		}
	default:
		r.Kind, r.NewBits = ReasonHold, cur
	}
	st.ceil = r.NewBits
	return st, Intent{BitsPerSec: r.NewBits, Reason: r}
}

// usedRates turns counter deltas into bits per second. A counter that
// went backwards (a class re-created) or a non-positive interval gives
// no rate this tick.
func usedRates(prev dirState, bytes [NumTiers]uint64, dt time.Duration) ([NumTiers]uint64, bool) {
	var out [NumTiers]uint64
	if dt <= 0 || prev.at.IsZero() {
		return out, false
	}
	for _, t := range Tiers {
		if bytes[t] < prev.bytes[t] {
			return out, false
		}
		out[t] = uint64(float64(bytes[t]-prev.bytes[t]) * 8 / dt.Seconds())
	}
	return out, true
}

func satSub(a uint64, bs ...uint64) uint64 {
	for _, b := range bs {
		if b >= a {
			return 0
		}
		a -= b
	}
	return a
}

// quantize rounds v down to a step of 1% of the link above floor, so that
// noise in the rates does not rewrite the class every tick.
func quantize(v, floor, link uint64) uint64 {
	step := max(link/100, 1)
	if v <= floor {
		return floor
	}
	return floor + (v-floor)/step*step
}

// Equal reports whether two plans ask the kernel for the same values:
// the same trees, bronze ceilings, ingress budget and DSCP. Reasons are
// not compared beyond their kind: their figures change every tick while
// what is written does not.
func (p Plan) Equal(q Plan) bool {
	if (p.Ingress == nil) != (q.Ingress == nil) || !maps.Equal(p.DSCP, q.DSCP) {
		return false
	}
	if p.Ingress != nil && p.Ingress.BitsPerSec != q.Ingress.BitsPerSec {
		return false
	}
	return slices.EqualFunc(p.Devices, q.Devices, DevicePlan.equal)
}

func (d DevicePlan) equal(e DevicePlan) bool {
	return d.Device == e.Device && d.ReplaceForeignRoot == e.ReplaceForeignRoot &&
		d.Ceil.BitsPerSec == e.Ceil.BitsPerSec && d.Ceil.Reason.Kind == e.Ceil.Reason.Kind &&
		d.Tree.Root == e.Tree.Root && slices.Equal(d.Tree.Classes, e.Tree.Classes) && slices.Equal(d.Tree.Leaves, e.Tree.Leaves)
}
