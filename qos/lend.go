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
	// systemNow is system use in this window when system is its average
	// (CPU); shown beside it, never decided on.
	systemNow int64
	// offlineUsed seeds the first decision (see lend).
	offlineUsed int64
	floorShare  float64
	rampShare   float64 // per second
	bandShare   float64
	hold        time.Duration
	// keep is the share of the span above the floor that offline may have
	// (1 - the run-queue squeeze); 1 for memory.
	keep float64
	// target is the brain's bounded override (nil: none); its cap bounds
	// the desired value from above, never below the floor.
	target *TargetOverride
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
func lend(in lendInput, prev LendState, now time.Time, elapsed time.Duration) (LendState, LendFigures) {
	out := LendFigures{
		Capacity:   in.capacity,
		Level:      in.level,
		Online:     in.online,
		System:     in.system,
		SystemNow:  in.systemNow,
		Raw:        scale(in.capacity, in.level) - in.online - in.system,
		Floor:      scale(in.capacity, in.floorShare),
		FloorShare: in.floorShare,
		Hold:       in.hold,
		RampShare:  in.rampShare,
		Band:       scale(in.capacity, in.bandShare),
	}
	span := max(out.Raw, out.Floor) - out.Floor
	out.Desired = out.Floor + int64(math.Round(float64(span)*clamp01(in.keep)))
	if t := in.target; t != nil {
		out.Target = t
		out.FromTarget = t.Level > 0 && !t.LevelBounded
		if t.CapSet {
			out.Desired = min(out.Desired, max(t.Cap, out.Floor))
		}
	}
	band := out.Band
	next := LendState{Set: true, Capacity: in.capacity}

	if !prev.Set || prev.Capacity != in.capacity {
		out.Action = LendStart
		out.Value = min(max(in.offlineUsed, out.Floor), out.Desired)
		out.From = out.Value
		next.Value = out.Value
		return next, out
	}
	v := prev.Value
	out.From = v
	// Once a ramp has started it runs to the computed value; the dead band
	// only decides whether growth starts.
	ramping := !prev.GrowSince.IsZero() && now.Sub(prev.GrowSince) >= in.hold
	switch {
	case v < out.Floor:
		out.Action, v = LendFloor, out.Floor
	case out.Desired < v-band:
		out.Action, v = LendCut, out.Desired
	case out.Desired > v+band || (out.Desired > v && ramping):
		next.GrowSince = prev.GrowSince
		if next.GrowSince.IsZero() || now.Before(next.GrowSince) {
			next.GrowSince = now
		}
		if waited := now.Sub(next.GrowSince); waited < in.hold {
			out.Action, out.WaitLeft = LendWait, in.hold-waited
			break
		}
		out.Step = int64(float64(in.capacity) * in.rampShare * elapsed.Seconds())
		out.Action, v = LendGrow, min(out.Desired, v+out.Step)
	default:
		out.Action = LendSteady
	}
	out.Value, next.Value = v, v
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
