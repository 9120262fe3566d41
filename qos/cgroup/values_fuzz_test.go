package cgroup

import (
	"strconv"
	"testing"
)

func FuzzParseCPUMax(f *testing.F) {
	for _, s := range []string{"max 100000\n", "50000 100000", "max", "1 2 3", "-5 100", "18446744073709551616 1", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		q, p, err := parseCPUMax(data)
		if err != nil {
			return
		}
		if p <= 0 || q < -1 {
			t.Fatalf("parseCPUMax(%q) = %d %d: accepted out of range", data, q, p)
		}
		// What we accept round-trips through the text we write.
		var text string
		if q == -1 {
			text = "max " + strconv.FormatInt(p, 10)
		} else {
			text = strconv.FormatInt(q, 10) + " " + strconv.FormatInt(p, 10)
		}
		q2, p2, err := parseCPUMax([]byte(text))
		if err != nil || q2 != q || p2 != p {
			t.Fatalf("round trip %q -> %q: %d %d %v", data, text, q2, p2, err)
		}
	})
}

func FuzzParsePIDs(f *testing.F) {
	for _, s := range []string{"1\n2\n3\n", "", "\n\n", "0\n", "-3", "12 13", "abc"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pids, err := parsePIDs(data)
		if err != nil {
			return
		}
		for _, p := range pids {
			if p <= 0 {
				t.Fatalf("parsePIDs(%q) accepted pid %d", data, p)
			}
		}
	})
}

func TestQuotaAndRatio(t *testing.T) {
	for w, want := range map[uint64]uint64{0: 2, 1: 2, 10000: 262144, 20000: 262144} {
		if got := sharesOfWeight(w); got != want {
			t.Errorf("sharesOfWeight(%d) = %d, want %d", w, got, want)
		}
	}
	if !ratioGreater(1<<63, 1, 1<<62, 1) || ratioGreater(50000, 100000, 1, 2) || !ratioGreater(50001, 100000, 1, 2) {
		t.Error("ratioGreater")
	}
	if pageFloor(1, 4096) != 4096 || pageFloor(8191, 4096) != 4096 || pageFloor(0, 4096) != 0 {
		t.Error("pageFloor")
	}
}
