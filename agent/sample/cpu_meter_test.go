package sample

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestCPUMeter(t *testing.T) {
	m := NewCPUMeter()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		total  time.Duration
		at     time.Duration // since t0
		want   int64
		wantOK bool
		note   string
	}{
		{10 * time.Second, 0, 0, false, "first sample: no rate"},
		{10*time.Second + 500*time.Millisecond, time.Second, 500, true, "0.5 s over 1 s"},
		{10*time.Second + 500*time.Millisecond + 3*time.Second, 3 * time.Second, 1500, true, "3 s over 2 s"},
		{10*time.Second + 500*time.Millisecond + 3*time.Second, 3 * time.Second, 0, false, "clock did not advance"},
		{13*time.Second + 500*time.Millisecond + 1, 4 * time.Second, 0, true, "1 ns over 1 s rounds to 0"},
		{2 * time.Second, 5 * time.Second, 0, false, "counter went backwards: cgroup recreated"},
		{2*time.Second + 250*time.Millisecond, 5*time.Second + 500*time.Millisecond, 500, true, "rate from the new counter"},
		{2*time.Second + 250*time.Millisecond + 1, 5*time.Second + 500*time.Millisecond + 3, 333, true, "1 ns over 3 ns is a third of a CPU"},
	}
	for i, s := range steps {
		got, ok := m.Observe("/a", s.total, t0.Add(s.at))
		if got != s.want || ok != s.wantOK {
			t.Errorf("step %d (%s): Observe = %d, %v; want %d, %v", i, s.note, got, ok, s.want, s.wantOK)
		}
	}
	// Paths are independent.
	if _, ok := m.Observe("/b", time.Second, t0.Add(10*time.Second)); ok {
		t.Error("first sample of /b had a rate")
	}
	m.Prune(t0.Add(6 * time.Second))
	if m.Len() != 1 {
		t.Errorf("after Prune: Len = %d, want 1 (/b only)", m.Len())
	}
	if _, ok := m.Observe("/a", 3*time.Second, t0.Add(11*time.Second)); ok {
		t.Error("pruned /a still had history")
	}
	m.Forget("/a")
	m.Forget("/b")
	if m.Len() != 0 {
		t.Errorf("after Forget: Len = %d", m.Len())
	}
}

// TestMilliCPUOverOracle compares the 128-bit arithmetic with float math on
// values where float64 is exact enough, and checks saturation.
func TestMilliCPUOverOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		wall := time.Duration(r.Int64N(int64(time.Hour))) + 1
		used := time.Duration(r.Int64N(int64(wall) * 256))
		got := milliCPUOver(used, wall)
		want := float64(used) * 1000 / float64(wall)
		if d := float64(got) - want; d > 0.5001 || d < -0.5001 {
			t.Fatalf("milliCPUOver(%d, %d) = %d, want %.3f", used, wall, got, want)
		}
	}
	if got := milliCPUOver(time.Duration(1<<63-1), 1); got != 1<<63-1 {
		t.Errorf("saturation: got %d", got)
	}
}
