package main

import (
	"runtime"
	"testing"
	"time"
)

func TestGapHistBuckets(t *testing.T) {
	var h gapHist
	for _, g := range []time.Duration{
		50 * time.Nanosecond, 19 * time.Microsecond, // below the first edge: not counted
		20 * time.Microsecond, 99 * time.Microsecond,
		500 * time.Microsecond, time.Millisecond, 3 * time.Millisecond,
		4 * time.Millisecond, 25 * time.Millisecond,
	} {
		h.add(g)
	}
	want := [len(gapBounds)]int{2, 0, 1, 2, 1, 1}
	if h.count != want {
		t.Errorf("bucket counts %v, want %v", h.count, want)
	}
	if h.max != 25*time.Millisecond {
		t.Errorf("max %v", h.max)
	}
	for _, tc := range []struct {
		from time.Duration
		n    int
		lost time.Duration
	}{
		{20 * time.Microsecond, 7, 33619 * time.Microsecond},
		{time.Millisecond, 4, 33 * time.Millisecond},
		{4 * time.Millisecond, 2, 29 * time.Millisecond},
		{10 * time.Millisecond, 1, 25 * time.Millisecond},
	} {
		if n, lost := h.atLeast(tc.from); n != tc.n || lost != tc.lost {
			t.Errorf("atLeast(%v) = %d, %v; want %d, %v", tc.from, n, lost, tc.n, tc.lost)
		}
	}
}

func TestParseStallsFlags(t *testing.T) {
	if _, err := parseStallsFlags([]string{"-cpu", "0", "-duration", "1s"}); err != nil && runtime.NumCPU() >= 2 {
		t.Errorf("valid flags refused: %v", err)
	}
	for _, args := range [][]string{
		{"-cpu", "-1"},
		{"-cpu", "4096"},
		{"-duration", "10ms"},
		{"-rounds", "0"},
	} {
		if _, err := parseStallsFlags(args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// TestProbeGapsOnThisCPU runs the real probe briefly: it runs for its
// duration, and the time its gaps lost is part of that run, not more.
func TestProbeGapsOnThisCPU(t *testing.T) {
	const d = 50 * time.Millisecond
	h, err := probeGaps(0, d)
	if err != nil {
		t.Fatal(err)
	}
	if h.span < d {
		t.Errorf("probe ran %v, want at least %v", h.span, d)
	}
	if _, lost := h.atLeast(gapBounds[0]); lost > h.span {
		t.Errorf("gaps lost %v of a %v run", lost, h.span)
	}
	if _, err := probeGaps(runtime.NumCPU()+64, time.Millisecond); err == nil {
		t.Error("probe pinned to a CPU this machine does not have")
	}
}
