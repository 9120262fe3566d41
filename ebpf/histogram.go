package ebpf

import (
	"math"
	"time"

	"github.com/sluicehq/sluice/qos"
)

// SlotBounds returns the range [lo, hi) of delays, in nanoseconds, counted
// in histogram slot i. The last slot is open-ended in the kernel; it is
// given the upper bound 2^HistSlots ns (about 4.3 s), where quantile
// estimates saturate.
func SlotBounds(i int) (loNs, hiNs float64) {
	if i <= 0 {
		return 0, 2
	}
	return math.Ldexp(1, i), math.Ldexp(1, i+1)
}

// quantile estimates the q-quantile (0 <= q <= 1) of the delays counted in
// hist by linear interpolation inside the slot that holds it, as
// Prometheus' histogram_quantile does. An empty histogram gives 0.
//
// Error bound: the true quantile (the ceil(q*n)-th smallest delay) lies in
// the same slot [lo, 2*lo) as the estimate, so the estimate is off by less
// than lo, i.e. by less than the true value itself (never more than a
// factor of 2), and by under 2 ns in slot 0. Above 2^(HistSlots-1) ns the
// estimate saturates at 2^HistSlots ns.
func quantile(hist *[HistSlots]uint64, q float64) time.Duration {
	if q < 0 || math.IsNaN(q) {
		q = 0
	}
	if q > 1 {
		q = 1
	}
	var total uint64
	for _, v := range hist {
		total += v
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var cum uint64
	for i, v := range hist {
		if v == 0 {
			continue
		}
		if float64(cum+v) >= rank {
			frac := (rank - float64(cum)) / float64(v)
			lo, hi := SlotBounds(i)
			return time.Duration(lo + frac*(hi-lo))
		}
		cum += v
	}
	// Unreachable: cum reaches total >= rank in the last non-empty slot.
	return 0
}

// Summarize turns a run-queue histogram into the summary the decision core
// reads (see quantile for the error bounds of P50 and P99).
func Summarize(hist *[HistSlots]uint64) qos.LatencySummary {
	var n uint64
	for _, v := range hist {
		n += v
	}
	return qos.LatencySummary{
		P50:   quantile(hist, 0.50),
		P99:   quantile(hist, 0.99),
		Count: n,
	}
}
