package qos

import (
	"math"
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

// SystemCPUSmoothing is the time constant of the average of system CPU use
// that the offline CPU budget subtracts.
//
// Online use counts as measured in the window, so an online burst cuts
// offline work in the tick it starts. System use (host daemons, kernel
// threads, anything no class claims) counts by its average over about a
// second: a one-tick burst barely moves it, a sustained rise reaches 63%
// of its height after a second and 95% after three. A burst is over
// before a cut could help it: the kernel already runs system tasks
// before offline ones (offline has cpu.idle and the minimal weight), and
// online's headroom is measured from online's own use. Cutting for it
// only cost offline work the grow hold. Measured on a quiet 2-CPU VM:
// kernel threads took 12-17 ms of CPU in one 100 ms window about once a
// second, each time cutting offline by 0.1-0.2 CPU for a second and a
// half and rewriting the quota three times a second.
const SystemCPUSmoothing = time.Second

// smoothSystem folds this decision's system use into the running average:
// the first sample over a known window seeds it; later ones weigh
// 1 - exp(-elapsed/τ). A decision without a window (the first after a
// start, or a clock that did not advance) leaves the average as it is:
// the first decision's sample spans the agent's own start (loading its
// BPF programs, the first discovery), and as a seed it held the average
// above 1 CPU a second after start on a 2-CPU VM whose system use was
// 0.1 CPU, and offline work back for about three seconds. A burst in the
// first 100 ms window still seeds high, by its own height only.
func smoothSystem(prev Smoothed, milli int64, elapsed time.Duration) Smoothed {
	if elapsed <= 0 {
		return prev
	}
	if !prev.Set {
		return Smoothed{Milli: float64(milli), Set: true}
	}
	w := 1 - math.Exp(-elapsed.Seconds()/SystemCPUSmoothing.Seconds())
	return Smoothed{Milli: prev.Milli + w*(float64(milli)-prev.Milli), Set: true}
}

// systemFigure is the system use the budget subtracts: the average once
// there is one, this decision's sample before that.
func systemFigure(avg Smoothed, now int64) int64 {
	if !avg.Set {
		return now
	}
	return int64(math.Round(avg.Milli))
}

// decideCPU computes the offline CPU budget and the CFS quota that holds it.
func decideCPU(obs Observation, pol Policy, tgt Targets, prevState State, elapsed time.Duration) (CPUIntent, LendState, RunqState, Smoothed) {
	prev, prevRunq := prevState.CPU, prevState.Runq
	capacity := obs.Host.CPUCapacityMilli
	if capacity <= 0 {
		// Without capacity nothing can be computed; keep what was planned
		// (or offline's minimum) rather than guess.
		return cpuIntent(prev.Value, Reason{Rule: RuleCPUCapacityUnknown,
			Lend: &LendFigures{Capacity: capacity, Value: prev.Value}}), prev, prevRunq, prevState.SystemCPU
	}
	online, system, offline := obs.Class(ClassOnline), obs.Class(ClassSystem), obs.Class(ClassOffline)
	level, tgtWhy := override(pol.CPU.HighWater, tgt.CPUWaterLevelPercent, tgt.OfflineCPUCapMilli,
		scale(capacity, pol.CPU.OfflineFloor), tgt.Version)
	runq, runqWhy := squeeze(obs, pol, prevRunq)
	sys := smoothSystem(prevState.SystemCPU, system.CPUUsedMilli, elapsed)

	next, out := lend(lendInput{
		capacity:    capacity,
		level:       level,
		online:      online.CPUUsedMilli,
		system:      systemFigure(sys, system.CPUUsedMilli),
		systemNow:   system.CPUUsedMilli,
		offlineUsed: offline.CPUUsedMilli,
		floorShare:  pol.CPU.OfflineFloor,
		rampShare:   pol.CPU.RampPerSecond,
		bandShare:   pol.CPU.DeadBand,
		hold:        pol.CPU.GrowHold,
		keep:        1 - runq.Cut,
		target:      tgtWhy,
	}, prev, obs.Time, elapsed)
	why := Reason{Rule: RuleCPULend, Lend: &out}
	if runqWhy.Action != RunqOff {
		why.Runq = &runqWhy
	}
	return cpuIntent(out.Value, why), next, runq, sys
}

// cpuIntent is the CFS bandwidth for budget milli-CPUs over CPUPeriod.
func cpuIntent(budget int64, why Reason) CPUIntent {
	period := CPUPeriod.Microseconds()
	return CPUIntent{
		BudgetMilli:  budget,
		QuotaMicros:  max(budget*period/1000, MinCPUQuotaMicros),
		PeriodMicros: period,
		Reason:       why,
	}
}

// squeeze updates the run-queue latency squeeze from online p99 latency.
func squeeze(obs Observation, pol Policy, prev RunqState) (RunqState, RunqFigures) {
	target := pol.CPU.OnlineRunqLatencyP99
	if target <= 0 {
		return RunqState{}, RunqFigures{}
	}
	online := obs.Class(ClassOnline)
	lat := online.RunqLatency
	if lat == nil {
		lat = worstRunq(obs.Workloads, ClassOnline)
	}
	if lat == nil || lat.Count == 0 {
		if online.Count == 0 && prev.Cut > 0 {
			return RunqState{}, RunqFigures{Action: RunqNoOnline}
		}
		if prev.Cut == 0 {
			return RunqState{}, RunqFigures{}
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
	why := RunqFigures{P99: lat.P99, Target: target, Calm: calm, Hold: pol.CPU.GrowHold, Keep: 1 - prev.Cut, PrevKeep: 1 - prev.Cut}
	switch {
	case lat.P99 > target:
		keep := (1 - prev.Cut) * runqKeepPerBreach
		if keep < runqMinKeep {
			keep = 0
		}
		why.Action, why.Keep = RunqBreach, keep
		return RunqState{Cut: 1 - keep}, why
	case prev.Cut == 0:
		why.Action = RunqWithin
		return RunqState{}, why
	case lat.P99 >= calm:
		why.Action = RunqHeld
		return RunqState{Cut: prev.Cut}, why
	}
	since := prev.CalmSince
	if since.IsZero() || obs.Time.Before(since) {
		since = obs.Time
	}
	if calmFor := obs.Time.Sub(since); calmFor < pol.CPU.GrowHold {
		why.Action, why.CalmFor = RunqCalming, calmFor
		return RunqState{Cut: prev.Cut, CalmSince: since}, why
	}
	why.Action = RunqLifted
	return RunqState{}, why
}

// worstRunq is the summary with the highest p99 among a class's workloads.
func worstRunq(ws []WorkloadSample, c Class) *LatencySummary {
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
