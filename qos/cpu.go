package qos

import (
	"fmt"
	"strings"
	"time"
)

// Run-queue squeeze constants. A multiplicative decrease reacts within a
// few decisions (0.7^7 < 10%) without zeroing the budget on one noisy
// window; the squeeze is lifted only after latency stayed below the calm
// line for the CPU hold, and the budget then grows through the normal ramp.
const (
	runqKeepPerBreach = 0.7
	runqCalmRatio     = 0.8
	// runqMinKeep: below this share of the span the squeeze snaps to the floor.
	runqMinKeep = 0.05
)

// decideCPU computes the offline CPU budget.
func decideCPU(obs Observation, pol Policy, tgt Targets, prev LendState, prevRunq RunqState, elapsed time.Duration) (CPUIntent, LendState, RunqState) {
	capacity := obs.Host.CPUCapacityMilli
	if capacity <= 0 {
		// Without capacity nothing can be computed; keep what was planned
		// (or offline's minimum) rather than guess.
		return CPUIntent{BudgetMilli: prev.Value, Reason: fmt.Sprintf(
			"host cpu capacity unknown (%dm): offline cpu budget kept at %dm", capacity, prev.Value)}, prev, prevRunq
	}
	online, system, offline := classUsage(obs, ClassOnline), classUsage(obs, ClassSystem), classUsage(obs, ClassOffline)
	level, fromTarget := waterLevel(pol.CPU.HighWater, tgt.CPUWaterLevelPercent)
	runq, runqNote := squeeze(obs, pol, prevRunq)

	next, out := lend(lendInput{
		capacity:    capacity,
		level:       level,
		online:      online.CPUUsedMilli,
		system:      system.CPUUsedMilli,
		offlineUsed: offline.CPUUsedMilli,
		floorShare:  pol.CPU.OfflineFloor,
		rampShare:   pol.CPU.RampPerSecond,
		bandShare:   pol.CPU.DeadBand,
		hold:        pol.CPU.GrowHold,
		keep:        1 - runq.Cut,
	}, prev, obs.Time, elapsed)

	var b strings.Builder
	fmt.Fprintf(&b, "offline cpu budget %dm: %dm x %s", out.value, capacity, formatPercent(level))
	if fromTarget {
		b.WriteString(" (brain target)")
	}
	fmt.Fprintf(&b, " - online %dm - system %dm = %dm", online.CPUUsedMilli, system.CPUUsedMilli, out.raw)
	if out.raw < out.floor {
		fmt.Fprintf(&b, ", below the floor %dm (%s)", out.floor, formatPercent(pol.CPU.OfflineFloor))
	} else {
		fmt.Fprintf(&b, ", floor %dm", out.floor)
	}
	if runqNote != "" {
		b.WriteString("; ")
		b.WriteString(runqNote)
	}
	b.WriteString("; ")
	b.WriteString(describeLend(out, func(v int64) string { return fmt.Sprintf("%dm", v) },
		pol.CPU.GrowHold, pol.CPU.RampPerSecond, scale(capacity, pol.CPU.DeadBand)))
	return CPUIntent{BudgetMilli: out.value, Reason: b.String()}, next, runq
}

// squeeze updates the run-queue latency squeeze from online p99 latency.
func squeeze(obs Observation, pol Policy, prev RunqState) (RunqState, string) {
	target := pol.CPU.OnlineRunqLatencyP99
	if target <= 0 {
		return RunqState{}, ""
	}
	online := classUsage(obs, ClassOnline)
	lat := online.RunqLatency
	if lat == nil {
		lat = worstRunq(obs.Containers, ClassOnline)
	}
	if lat == nil || lat.Count == 0 {
		if online.Count == 0 && prev.Cut > 0 {
			return RunqState{}, "no online work: run-queue squeeze lifted"
		}
		if prev.Cut == 0 {
			return RunqState{}, ""
		}
		// No online task waited for a CPU in the window: online is idle or
		// sleeping, not queueing. That is calm, so the squeeze lifts after
		// the hold like any calm spell; holding it until the next wait
		// would starve offline work for as long as online stays idle.
		// (Without eBPF at all no class has a sample, and lending falls
		// back to the water level alone, the documented degradation.)
		lat = &LatencySummary{}
	}
	calm := time.Duration(float64(target) * runqCalmRatio)
	switch {
	case lat.P99 > target:
		keep := (1 - prev.Cut) * runqKeepPerBreach
		if keep < runqMinKeep {
			keep = 0
		}
		return RunqState{Cut: 1 - keep}, fmt.Sprintf(
			"online run-queue p99 %v above target %v: offline keeps %s of its span above the floor (was %s)",
			lat.P99, target, formatPercent(keep), formatPercent(1-prev.Cut))
	case prev.Cut == 0:
		return RunqState{}, fmt.Sprintf("online run-queue p99 %v within target %v", lat.P99, target)
	case lat.P99 >= calm:
		return RunqState{Cut: prev.Cut}, fmt.Sprintf(
			"online run-queue p99 %v not yet below %v (80%% of target %v): squeeze held (offline keeps %s)",
			lat.P99, calm, target, formatPercent(1-prev.Cut))
	}
	since := prev.CalmSince
	if since.IsZero() || obs.Time.Before(since) {
		since = obs.Time
	}
	if calmFor := obs.Time.Sub(since); calmFor < pol.CPU.GrowHold {
		return RunqState{Cut: prev.Cut, CalmSince: since}, fmt.Sprintf(
			"online run-queue p99 %v below %v for %v of %v hold: squeeze held (offline keeps %s)",
			lat.P99, calm, calmFor, pol.CPU.GrowHold, formatPercent(1-prev.Cut))
	}
	return RunqState{}, fmt.Sprintf("online run-queue p99 %v below %v for the %v hold: squeeze lifted",
		lat.P99, calm, pol.CPU.GrowHold)
}

// worstRunq is the summary with the highest p99 among a class's workloads.
func worstRunq(ws []ContainerSample, c Class) *LatencySummary {
	var worst *LatencySummary
	for i := range ws {
		l := ws[i].RunqLatency
		if ws[i].Class != c || l == nil || l.Count == 0 {
			continue
		}
		if worst == nil || l.P99 > worst.P99 {
			worst = l
		}
	}
	return worst
}

// describeLend says what the hysteresis did, with its figures.
func describeLend(out lendOutcome, f func(int64) string, hold time.Duration, ramp float64, band int64) string {
	switch out.action {
	case lendStart:
		return fmt.Sprintf("first decision: starting at offline's current use clamped to [floor, %s]", f(out.desired))
	case lendCut:
		return fmt.Sprintf("cut at once from %s", f(out.from))
	case lendFloor:
		return fmt.Sprintf("raised at once from %s to the floor", f(out.from))
	case lendWait:
		return fmt.Sprintf("computed %s, holding %s for %v more (grow hold %v)", f(out.desired), f(out.value), out.waitLeft, hold)
	case lendGrow:
		return fmt.Sprintf("ramping up from %s toward %s by at most %s this step (%s of capacity per second)",
			f(out.from), f(out.desired), f(out.step), formatPercent(ramp))
	}
	return fmt.Sprintf("unchanged: computed %s is within the dead band %s", f(out.desired), f(band))
}
