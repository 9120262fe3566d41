package qos

import "time"

// decideMemory computes the offline memory limit.
//
// HighBytes is MaxBytes less 5%: the kernel starts reclaiming (and, with
// v2 memory.high, throttling) offline allocations before the hard limit is
// reached, so page cache gives way first and the OOM killer or a priority
// kill is the last resort. 5% of a limit is large enough for reclaim to
// make progress and small enough not to waste the lent memory.
func decideMemory(obs Observation, pol Policy, tgt Targets, prev LendState, elapsed time.Duration) (MemoryIntent, LendState) {
	capacity := satInt64(obs.Host.MemTotalBytes)
	if capacity <= 0 {
		return memoryIntent(prev.Value, Reason{Rule: RuleMemoryCapacityUnknown, Lend: &LendFigures{Value: prev.Value}}), prev
	}
	online, system, offline := obs.Class(ClassOnline), obs.Class(ClassSystem), obs.Class(ClassOffline)
	level, tgtWhy := override(pol.Memory.HighWater, tgt.MemoryWaterLevelPercent, tgt.OfflineMemoryCapBytes,
		scale(capacity, pol.Memory.OfflineFloor), tgt.Version)
	next, out := lend(lendInput{
		capacity:    capacity,
		level:       level,
		online:      satInt64(online.MemoryUsageBytes),
		system:      satInt64(system.MemoryUsageBytes),
		offlineUsed: satInt64(offline.MemoryUsageBytes),
		floorShare:  pol.Memory.OfflineFloor,
		rampShare:   pol.Memory.RampPerSecond,
		bandShare:   pol.Memory.DeadBand,
		hold:        pol.Memory.GrowHold,
		keep:        1,
		target:      tgtWhy,
	}, prev, obs.Time, elapsed)
	in := memoryIntent(out.Value, Reason{Rule: RuleMemoryLend})
	out.HighBytes = satInt64(in.HighBytes)
	in.Reason.Lend = &out
	return in, next
}

func memoryIntent(maxBytes int64, why Reason) MemoryIntent {
	m := uint64(max(maxBytes, 0))
	return MemoryIntent{HighBytes: m - m/20, MaxBytes: m, Reason: why}
}
