package sample

import (
	"math/bits"
	"time"
)

// CPUMeter turns cumulative CPU time per cgroup into milli-CPUs averaged
// over the interval between two observations of the same cgroup. It is pure
// (time comes in as arguments) and not safe for concurrent use.
type CPUMeter struct {
	last map[string]cpuPoint
}

type cpuPoint struct {
	total time.Duration
	at    time.Time
}

// NewCPUMeter returns an empty meter.
func NewCPUMeter() *CPUMeter {
	return &CPUMeter{last: make(map[string]cpuPoint)}
}

// Observe records total, the cumulative CPU time of cgroupPath read at at,
// and returns the average use in milli-CPUs since the previous observation
// of that cgroup. ok is false when there is no rate yet: the first
// observation, a clock that did not advance, or a counter that went
// backwards, which means the cgroup was removed and created again under the
// same path (the meter restarts from the new counter).
func (m *CPUMeter) Observe(cgroupPath string, total time.Duration, at time.Time) (milliCPU int64, ok bool) {
	prev, seen := m.last[cgroupPath]
	if seen && !at.After(prev.at) {
		// Keep the older point: a rate over a zero or negative interval
		// means nothing, and the next tick will span a real one.
		return 0, false
	}
	m.last[cgroupPath] = cpuPoint{total: total, at: at}
	if !seen || total < prev.total {
		return 0, false
	}
	return milliCPUOver(total-prev.total, at.Sub(prev.at)), true
}

// Forget drops a cgroup's history (its workload went away).
func (m *CPUMeter) Forget(cgroupPath string) { delete(m.last, cgroupPath) }

// Prune drops every cgroup last observed before cutoff, so paths of exited
// workloads do not accumulate. Call it once per tick with the tick's start.
func (m *CPUMeter) Prune(cutoff time.Time) {
	for p, pt := range m.last {
		if pt.at.Before(cutoff) {
			delete(m.last, p)
		}
	}
}

// Len returns how many cgroups the meter remembers.
func (m *CPUMeter) Len() int { return len(m.last) }

// milliCPUOver is used*1000/wall, rounded to nearest, computed in 128 bits so
// long intervals on many CPUs cannot overflow.
func milliCPUOver(used, wall time.Duration) int64 {
	hi, lo := bits.Mul64(uint64(used), 1000)
	lo, carry := bits.Add64(lo, uint64(wall)/2, 0)
	hi += carry
	if hi >= uint64(wall) {
		return 1<<63 - 1
	}
	q, _ := bits.Div64(hi, lo, uint64(wall))
	if q > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(q)
}
