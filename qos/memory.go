package qos

import (
	"fmt"
	"strings"
	"time"
)

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
		return memoryIntent(prev.Value, fmt.Sprintf(
			"host memory size unknown: offline memory limit kept at %s", formatBytes(prev.Value))), prev
	}
	online, system, offline := classUsage(obs, ClassOnline), classUsage(obs, ClassSystem), classUsage(obs, ClassOffline)
	level, fromTarget := waterLevel(pol.Memory.HighWater, tgt.MemoryWaterLevelPercent)
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
	}, prev, obs.Time, elapsed)

	in := memoryIntent(out.value, "")
	var b strings.Builder
	fmt.Fprintf(&b, "offline memory limit %s (reclaim from %s): %s x %s", formatBytes(out.value),
		formatBytes(satInt64(in.HighBytes)), formatBytes(capacity), formatPercent(level))
	if fromTarget {
		b.WriteString(" (brain target)")
	}
	fmt.Fprintf(&b, " - online %s - system %s = %s", formatBytes(satInt64(online.MemoryUsageBytes)),
		formatBytes(satInt64(system.MemoryUsageBytes)), formatSignedBytes(out.raw))
	if out.raw < out.floor {
		fmt.Fprintf(&b, ", below the floor %s (%s)", formatBytes(out.floor), formatPercent(pol.Memory.OfflineFloor))
	} else {
		fmt.Fprintf(&b, ", floor %s", formatBytes(out.floor))
	}
	b.WriteString("; ")
	b.WriteString(describeLend(out, formatBytes, pol.Memory.GrowHold, pol.Memory.RampPerSecond,
		scale(capacity, pol.Memory.DeadBand)))
	in.Reason = b.String()
	return in, next
}

func memoryIntent(maxBytes int64, reason string) MemoryIntent {
	m := uint64(max(maxBytes, 0))
	return MemoryIntent{HighBytes: m - m/20, MaxBytes: m, Reason: reason}
}
