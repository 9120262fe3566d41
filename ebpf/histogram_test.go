package ebpf

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/sluicehq/sluice/qos"
)

// slotOf is the bucket the BPF program puts a delay of d ns in (hist_slot
// in bpf/runq.c).
func slotOf(d uint64) int {
	if d == 0 {
		return 0
	}
	return min(bits.Len64(d)-1, HistSlots-1)
}

func TestSlotBounds(t *testing.T) {
	for _, tc := range []struct {
		slot   int
		lo, hi float64
	}{
		{0, 0, 2},
		{1, 2, 4},
		{10, 1024, 2048},
		{HistSlots - 1, 1 << 31, 1 << 32},
	} {
		lo, hi := SlotBounds(tc.slot)
		if lo != tc.lo || hi != tc.hi {
			t.Errorf("SlotBounds(%d) = [%v, %v), want [%v, %v)", tc.slot, lo, hi, tc.lo, tc.hi)
		}
	}
	for _, d := range []uint64{0, 1, 2, 3, 1023, 1024, 1<<31 - 1, 1 << 31, math.MaxUint64} {
		lo, hi := SlotBounds(slotOf(d))
		if float64(d) < lo || (slotOf(d) < HistSlots-1 && float64(d) >= hi) {
			t.Errorf("delay %d in slot %d = [%v, %v)", d, slotOf(d), lo, hi)
		}
	}
}

func hist(counts map[int]uint64) *[HistSlots]uint64 {
	var h [HistSlots]uint64
	for i, n := range counts {
		h[i] = n
	}
	return &h
}

func TestQuantile(t *testing.T) {
	for _, tc := range []struct {
		name string
		hist *[HistSlots]uint64
		q    float64
		want time.Duration
	}{
		{"empty", hist(nil), 0.99, 0},
		{"one sample, median is mid-slot", hist(map[int]uint64{10: 1}), 0.5, 1024 + 512},
		{"one sample, p99 near the top", hist(map[int]uint64{10: 1}), 0.99, 2037}, // 1024 + 0.99*1024, truncated
		{"q=0 is the lowest slot's bottom", hist(map[int]uint64{3: 5, 7: 5}), 0, 8},
		{"q=1 is the highest slot's top", hist(map[int]uint64{3: 5, 7: 5}), 1, 256},
		{"median on a slot boundary", hist(map[int]uint64{3: 5, 7: 5}), 0.5, 16},
		{"p99 in the tail slot", hist(map[int]uint64{10: 99, 20: 1}), 0.99, 2048},
		{"p99 inside the tail slot", hist(map[int]uint64{10: 98, 20: 2}), 0.99, 1<<20 + 1<<19},
		{"slot 0", hist(map[int]uint64{0: 4}), 0.5, 1},
		{"saturates in the last slot", hist(map[int]uint64{HistSlots - 1: 1}), 1, 1 << HistSlots},
		{"q below 0 is 0", hist(map[int]uint64{5: 1}), -1, 32},
		{"q above 1 is 1", hist(map[int]uint64{5: 1}), 2, 64},
		{"NaN is 0", hist(map[int]uint64{5: 1}), math.NaN(), 32},
	} {
		if got := quantile(tc.hist, tc.q); got != tc.want {
			t.Errorf("%s: quantile(q=%v) = %v, want %v", tc.name, tc.q, got, tc.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	got := Summarize(hist(map[int]uint64{10: 50, 14: 49, 20: 1}))
	want := qos.LatencySummary{P50: 2048, P99: time.Duration(1 << 15), Count: 100}
	if got != want {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
}

// checkAgainstOracle builds the histogram of samples as the BPF program
// would and checks quantile against the exact quantile: same slot, so
// within the documented bound (less than the true value, under 2 ns in
// slot 0), and monotonic in q.
func checkAgainstOracle(t *testing.T, samples []uint64) {
	t.Helper()
	var h [HistSlots]uint64
	for _, d := range samples {
		h[slotOf(d)]++
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	prev := time.Duration(-1)
	for _, q := range []float64{0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1} {
		got := quantile(&h, q)
		if got < prev {
			t.Fatalf("quantile not monotonic: q=%v gives %v < %v", q, got, prev)
		}
		prev = got
		if len(samples) == 0 {
			if got != 0 {
				t.Fatalf("empty: quantile(%v) = %v", q, got)
			}
			continue
		}
		k := int(math.Ceil(q*float64(len(sorted)))) - 1
		k = max(k, 0)
		exact := sorted[k]
		slot := slotOf(exact)
		lo, hi := SlotBounds(slot)
		if float64(got) < lo || float64(got) > hi {
			t.Fatalf("q=%v: estimate %v outside [%v, %v], the slot of the exact quantile %d (samples %v)",
				q, got, lo, hi, exact, samples)
		}
		if slot > 0 && slot < HistSlots-1 && math.Abs(float64(got)-float64(exact)) > float64(exact) {
			t.Fatalf("q=%v: estimate %v vs exact %d: error above the true value", q, got, exact)
		}
	}
}

func TestQuantileAgainstOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		n := r.IntN(300)
		samples := make([]uint64, n)
		for i := range samples {
			// Log-uniform over 0..2^36 ns, past the last slot.
			samples[i] = uint64(math.Exp2(r.Float64() * 36))
		}
		checkAgainstOracle(t, samples)
	}
}

func FuzzQuantile(f *testing.F) {
	f.Add([]byte{1, 2, 3, 200, 7, 7})
	f.Add([]byte{})
	f.Add([]byte{0, 0, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Each byte pair is a sample: a slot-sized exponent and mantissa.
		var samples []uint64
		for i := 0; i+1 < len(data); i += 2 {
			exp := int(data[i]) % 40
			samples = append(samples, (uint64(1)<<exp)+uint64(data[i+1])*(uint64(1)<<exp)/256)
		}
		checkAgainstOracle(t, samples)
	})
}

func FuzzQuantileRawHistogram(f *testing.F) {
	f.Add(uint64(1), uint64(0), uint64(math.MaxUint32), 0.5)
	f.Fuzz(func(t *testing.T, a, b, c uint64, q float64) {
		// Any counts (as read from a map) and any q: no panic, a result
		// inside the range of the occupied slots.
		var h [HistSlots]uint64
		h[a%HistSlots] += a >> 40
		h[b%HistSlots] += b >> 40
		h[c%HistSlots] += c >> 40
		got := quantile(&h, q)
		first, last := -1, -1
		for i, n := range h {
			if n > 0 {
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		if first < 0 {
			if got != 0 {
				t.Fatalf("empty histogram: %v", got)
			}
			return
		}
		lo, _ := SlotBounds(first)
		_, hi := SlotBounds(last)
		if float64(got) < lo || float64(got) > hi {
			t.Fatalf("quantile(%v) = %v outside [%v, %v]", q, got, lo, hi)
		}
	})
}

// TestHistSlotsMatchesProgram guards HistSlots against HIST_SLOTS in
// bpf/runq.c, as the generated type carries it.
func TestHistSlotsMatchesProgram(t *testing.T) {
	if n := len(runqCgroupStats{}.RunqHist); n != HistSlots {
		t.Fatalf("bpf/runq.c has %d histogram slots, HistSlots is %d", n, HistSlots)
	}
}
