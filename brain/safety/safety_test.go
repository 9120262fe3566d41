package safety

import (
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/test/purity"
)

func TestPackageIsPure(t *testing.T) { purity.CheckDir(t, ".", 2) }

// calm is a reporting host with every signal well below its line.
func calm() Signals {
	return Signals{Reported: true, OnlineRunqP99: 50 * time.Microsecond, CPUPressureSomePct: 1, MemoryPressureSomePct: 0.5, LentCPUShare: 0.4, OfflineCPUMilli: 2000}
}

// TestAssessAtAndAroundEachLine moves one signal at a time just below, at
// and just above each line of the default thresholds.
func TestAssessAtAndAroundEachLine(t *testing.T) {
	th := DefaultThresholds()
	if err := th.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		set    func(*Signals)
		want   State
		reason string
	}{
		{"calm", func(*Signals) {}, Safe, ""},
		{"runq below squeeze", func(s *Signals) { s.OnlineRunqP99 = time.Millisecond - time.Microsecond }, Safe, ""},
		{"runq at squeeze", func(s *Signals) { s.OnlineRunqP99 = time.Millisecond }, Squeezing, "online run-queue p99 1ms >= 1ms (squeezing)"},
		{"runq below unsafe", func(s *Signals) { s.OnlineRunqP99 = 5*time.Millisecond - time.Microsecond }, Squeezing, "run-queue"},
		{"runq at unsafe", func(s *Signals) { s.OnlineRunqP99 = 5 * time.Millisecond }, Unsafe, "online run-queue p99 5ms >= 5ms (unsafe)"},
		{"runq not measured", func(s *Signals) { s.OnlineRunqP99 = 0 }, Safe, ""},
		{"cpu psi below squeeze", func(s *Signals) { s.CPUPressureSomePct = 9.99 }, Safe, ""},
		{"cpu psi at squeeze", func(s *Signals) { s.CPUPressureSomePct = 10 }, Squeezing, "cpu psi some 10.0% >= 10% (squeezing)"},
		{"cpu psi below unsafe", func(s *Signals) { s.CPUPressureSomePct = 39.9 }, Squeezing, "cpu psi"},
		{"cpu psi at unsafe", func(s *Signals) { s.CPUPressureSomePct = 40 }, Unsafe, "cpu psi some 40.0% >= 40% (unsafe)"},
		{"memory psi below squeeze", func(s *Signals) { s.MemoryPressureSomePct = 4.99 }, Safe, ""},
		{"memory psi at squeeze", func(s *Signals) { s.MemoryPressureSomePct = 5 }, Squeezing, "memory psi some 5.0% >= 5% (squeezing)"},
		{"memory psi below unsafe", func(s *Signals) { s.MemoryPressureSomePct = 19.9 }, Squeezing, "memory psi"},
		{"memory psi at unsafe", func(s *Signals) { s.MemoryPressureSomePct = 20 }, Unsafe, "memory psi some 20.0% >= 20% (unsafe)"},
		{"no kills", func(s *Signals) { s.KillsLastHour = 0 }, Safe, ""},
		{"one kill", func(s *Signals) { s.KillsLastHour = 1 }, Squeezing, "1 offline kills in the last hour >= 1 (squeezing)"},
		{"four kills", func(s *Signals) { s.KillsLastHour = 4 }, Squeezing, "4 offline kills"},
		{"five kills", func(s *Signals) { s.KillsLastHour = 5 }, Unsafe, "5 offline kills in the last hour >= 5 (unsafe)"},
		{"lends at the line", func(s *Signals) { s.LentCPUShare = 0.05 }, Safe, ""},
		{"lends under the line", func(s *Signals) { s.LentCPUShare = 0.049 }, Squeezing, "lends 4.9% of its cpu < 5% while offline runs (squeezing)"},
		{"lends nothing, no offline work", func(s *Signals) { s.LentCPUShare, s.OfflineCPUMilli = 0, 0 }, Safe, ""},
		{"not reported", func(s *Signals) { *s = Signals{CPUPressureSomePct: 90} }, Unknown, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := calm()
			c.set(&s)
			v := Assess(s, th)
			if v.State != c.want {
				t.Fatalf("state %s, want %s (reasons %q)", v.State, c.want, v.Reasons)
			}
			if c.reason == "" && len(v.Reasons) > 0 {
				t.Fatalf("reasons %q for a %s host", v.Reasons, v.State)
			}
			if c.reason != "" && (len(v.Reasons) != 1 || !strings.Contains(v.Reasons[0], c.reason)) {
				t.Fatalf("reasons %q, want one containing %q", v.Reasons, c.reason)
			}
		})
	}
}

// TestAssessMostSevereWins: the state is the worst signal's, and every
// signal past a line is named, unsafe ones first.
func TestAssessMostSevereWins(t *testing.T) {
	s := calm()
	s.CPUPressureSomePct = 12 // squeezing
	s.KillsLastHour = 7       // unsafe
	s.LentCPUShare = 0.01     // squeezing
	v := Assess(s, DefaultThresholds())
	if v.State != Unsafe {
		t.Fatalf("state %s, want unsafe", v.State)
	}
	if len(v.Reasons) != 3 || !strings.HasSuffix(v.Reasons[0], "(unsafe)") || !strings.Contains(v.Reasons[0], "kills") {
		t.Fatalf("reasons %q: want the kills first, then two squeezing signals", v.Reasons)
	}
}

func TestValidateRejectsDisorderedLines(t *testing.T) {
	bad := []func(*Thresholds){
		func(t *Thresholds) { t.RunqUnsafe = t.RunqSqueeze - 1 },
		func(t *Thresholds) { t.RunqSqueeze = 0 },
		func(t *Thresholds) { t.CPUPSIUnsafePct = 101 },
		func(t *Thresholds) { t.MemPSISqueezePct = t.MemPSIUnsafePct + 1 },
		func(t *Thresholds) { t.KillsSqueeze = 0 },
		func(t *Thresholds) { t.LentShareSqueeze = 1.5 },
	}
	for i, f := range bad {
		th := DefaultThresholds()
		f(&th)
		if err := th.Validate(); err == nil {
			t.Errorf("case %d: %+v accepted", i, th)
		}
	}
}

func TestWorse(t *testing.T) {
	if !Worse(Unsafe, Squeezing) || !Worse(Squeezing, Safe) || Worse(Unknown, Safe) || Worse(Safe, Squeezing) {
		t.Fatal("severity order: unsafe > squeezing > safe = unknown")
	}
}
