package rdt

import (
	"strings"
	"testing"
)

func TestParseSchemataAsTheKernelPrintsIt(t *testing.T) {
	text := "    L3:0=7ff;1=7ff\n    MB:0=100;1=100\n"
	s, err := ParseSchemata(text)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.String(), "L3:0=7ff;1=7ff\nMB:0=100;1=100\n"; got != want {
		t.Errorf("round trip = %q, want %q", got, want)
	}
	if v, ok := s.Get("MB", 1); !ok || v != 100 {
		t.Errorf("MB domain 1 = %d %v, want 100", v, ok)
	}
}

func TestParseSchemataErrorsNameTheLine(t *testing.T) {
	for _, bad := range []string{"L3 0=ff\n", "L3:0=zz\n", "L3:x=ff\n", "L3:0=ff;0=f\n", "MB:0=ff\n", "L3:0\n"} {
		_, err := ParseSchemata(bad)
		if err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("ParseSchemata(%q) = %v, want an error naming line 1", bad, err)
		}
	}
}

func TestDiffWritesOnlyChangedDomains(t *testing.T) {
	cur, _ := ParseSchemata("L3:0=ff;2=ff\nMB:0=50;2=50\n")
	var want Schemata
	want.Set("L3", 0, 0xff)
	want.Set("L3", 2, 0x0f)
	want.Set("MB", 0, 50)
	want.Set("MB", 2, 50)
	if got := want.Diff(cur).String(); got != "L3:2=f\n" {
		t.Errorf("diff = %q, want %q", got, "L3:2=f\n")
	}
	if d := want.Diff(want); !d.Empty() {
		t.Errorf("diff with itself = %q, want nothing", d.String())
	}
}

func TestContiguous(t *testing.T) {
	for mask, want := range map[uint64]bool{0: true, 1: true, 0x7f0: true, 0x101: false, 0xf0f: false, 1 << 63: true} {
		if got := Contiguous(mask); got != want {
			t.Errorf("Contiguous(%x) = %v, want %v", mask, got, want)
		}
	}
}

func TestMBRoundsUpToGranularityLikeTheKernel(t *testing.T) {
	mb := MemBandwidth{Granularity: 10, Min: 10, MaxValue: 100, Unit: MBPercent}
	for in, want := range map[int]int{11: 20, 20: 20, 99: 100, 1: 10} {
		if got := mb.RoundMB(in); got != want {
			t.Errorf("RoundMB(%d) = %d, want %d", in, got, want)
		}
	}
	for share, want := range map[float64]int{0.25: 30, 0.05: 10, 1: 100, 0.999: 100} {
		if got := mb.mbValue(share); got != want {
			t.Errorf("mbValue(%g) = %d, want %d", share, got, want)
		}
	}
	amd := MemBandwidth{Granularity: 1, MaxValue: 2048, Unit: MBAbsolute}
	if got := amd.mbValue(0.5); got != 1024 {
		t.Errorf("AMD mbValue(50%%) = %d, want 1024", got)
	}
}

func FuzzParseSchemata(f *testing.F) {
	f.Add("    L3:0=7ff;1=7ff\n    MB:0=100;1=100\n")
	f.Add("L3CODE:0=f\nL3DATA:0=f0\n")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := ParseSchemata(text)
		if err != nil {
			return
		}
		again, err := ParseSchemata(s.String())
		if err != nil {
			t.Fatalf("re-parsing %q: %v", s.String(), err)
		}
		if again.String() != s.String() {
			t.Fatalf("round trip %q != %q", again.String(), s.String())
		}
	})
}
