package qos

import (
	"math"
	"time"
)

// lendInput is one resource's lending problem in its own unit (milli-CPUs
// or bytes).
type lendInput struct {
	capacity int64
	level    float64 // water level, 0..1
	online   int64
	system   int64
	// offlineUsed seeds the first decision (see lend).
	offlineUsed int64
	floorShare  float64
	rampShare   float64 // per second
	bandShare   float64
	hold        time.Duration
	// keep is the share of the span above the floor that offline may have
	// (1 - the run-queue squeeze); 1 for memory.
	keep float64
}

// lendAction says what lend did, for reasons.
type lendAction int

const (
	lendStart  lendAction = iota // first decision or capacity changed
	lendSteady                   // within the dead band: unchanged
	lendCut                      // cut at once
	lendFloor                    // raised at once to the floor
	lendWait                     // computed value is higher; waiting for the hold
	lendGrow                     // ramping up
)

// lendOutcome is lend's result with the figures that explain it.
type lendOutcome struct {
	value    int64
	raw      int64 // capacity x level - online - system, may be negative
	floor    int64
	desired  int64 // max(raw, floor), squeezed
	action   lendAction
	from     int64         // value before this decision
	waitLeft time.Duration // for lendWait
	step     int64         // for lendGrow: largest step the ramp allowed
}

// lend is the hysteresis shared by CPU and memory lending.
//
//   - desired = max(capacity x level - online - system, floor), where the
//     run-queue squeeze keeps only part of the span above the floor.
//   - First decision (or the host's capacity changed): start at the offline
//     work's current use clamped to [floor, desired]. A restarted agent then
//     neither cuts offline below what it is using (unless online needs it)
//     nor hands it more without the ramp.
//   - A value below the floor (the floor was raised) goes to the floor at once.
//   - desired below value by more than the dead band: cut at once.
//   - desired above value by more than the dead band, continuously for the
//     hold period: grow by at most ramp x capacity x elapsed per decision,
//     until value reaches desired (the dead band does not stop a ramp).
//   - Otherwise unchanged, and the hold timer restarts. Differences inside
//     the dead band are ignored in both directions; a cut is therefore at
//     most one dead band late, which is the price of not rewriting quotas on
//     sampling noise.
//
// Because a single dip in online use resets nothing but a single rise cuts
// at once, usage that oscillates around the water level faster than the
// hold leaves the value parked at the lower edge instead of flapping.
func lend(in lendInput, prev LendState, now time.Time, elapsed time.Duration) (LendState, lendOutcome) {
	out := lendOutcome{
		raw:   scale(in.capacity, in.level) - in.online - in.system,
		floor: scale(in.capacity, in.floorShare),
	}
	span := max(out.raw, out.floor) - out.floor
	out.desired = out.floor + int64(math.Round(float64(span)*clamp01(in.keep)))
	band := scale(in.capacity, in.bandShare)
	next := LendState{Set: true, Capacity: in.capacity}

	if !prev.Set || prev.Capacity != in.capacity {
		out.action = lendStart
		out.value = min(max(in.offlineUsed, out.floor), out.desired)
		out.from = out.value
		next.Value = out.value
		return next, out
	}
	v := prev.Value
	out.from = v
	// Once a ramp has started it runs to the computed value; the dead band
	// only decides whether growth starts.
	ramping := !prev.GrowSince.IsZero() && now.Sub(prev.GrowSince) >= in.hold
	switch {
	case v < out.floor:
		out.action, v = lendFloor, out.floor
	case out.desired < v-band:
		out.action, v = lendCut, out.desired
	case out.desired > v+band || (out.desired > v && ramping):
		next.GrowSince = prev.GrowSince
		if next.GrowSince.IsZero() || now.Before(next.GrowSince) {
			next.GrowSince = now
		}
		if waited := now.Sub(next.GrowSince); waited < in.hold {
			out.action, out.waitLeft = lendWait, in.hold-waited
			break
		}
		out.step = int64(float64(in.capacity) * in.rampShare * elapsed.Seconds())
		out.action, v = lendGrow, min(out.desired, v+out.step)
	default:
		out.action = lendSteady
	}
	out.value, next.Value = v, v
	return next, out
}

// scale is round(n x share) for a share in [0,1].
func scale(n int64, share float64) int64 {
	return int64(math.Round(float64(n) * share))
}

func clamp01(f float64) float64 {
	switch {
	case f < 0 || math.IsNaN(f):
		return 0
	case f > 1:
		return 1
	}
	return f
}

// satInt64 converts a byte count, saturating instead of wrapping.
func satInt64(u uint64) int64 {
	if u > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(u)
}
