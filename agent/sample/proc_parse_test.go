package sample

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	fixture, err := os.ReadFile("testdata/proc/t0/stat")
	if err != nil {
		t.Fatal(err)
	}
	got, cpus, err := parseProcStat(fixture, nil)
	// busy 10000+500+3000+0+200+100, total busy + idle 80000 + iowait 1000.
	if err != nil || got != (cpuTicks{busy: 13800, total: 94800}) || !slices.Equal(cpus, []int{0, 1}) {
		t.Fatalf("fixture: %+v, %v, %v", got, cpus, err)
	}
	for _, tc := range []struct{ in, err string }{
		{"intr 1 2\n", "no aggregate cpu line"},
		{"cpu  1 2 3 4 5 6 7 8 9 10\nintr 5\n", "no per-cpu lines"},
		{"cpu  1 2 3 4 5 6 7\ncpu0 1 2 3 4 5 6 7 8\n", "line 1 (cpu): 7 fields, want at least 8"},
		{"cpu  1 2 3 4 5 6 7 8\ncpu0 1 2 x 4 5 6 7 8\n", "line 2 (cpu0): field 3"},
		{"cpu  1 2 3 4 5 6 7 8\ncpu1 1 2 3 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8\n", "line 3: cpu0 after cpu1"},
		{"cpu  1 2 3 4 5 6 7 8\ncpux 1 2 3 4 5 6 7 8\n", `line 2: "cpux" is not cpuN`},
		{"cpu  1 2 3 4 5 6 7 8\ncpu 1 2 3 4 5 6 7 8\n", "line 2: a second aggregate cpu line"},
		{"cpu  1 2 3 4 5 6 7 99999999999999999999\ncpu0 1 2 3 4 5 6 7 8\n", "line 1 (cpu): field 8"},
	} {
		if _, _, err := parseProcStat([]byte(tc.in), nil); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("parseProcStat(%q) = %v, want an error containing %q", tc.in, err, tc.err)
		}
	}
	// CPUs offline in the middle are skipped by the kernel, not zeroed.
	if _, cpus, err := parseProcStat([]byte("cpu  1 2 3 4 5 6 7 8 0 0\ncpu0 1 2 3 4 5 6 7 8\ncpu3 1 2 3 4 5 6 7 8\n"), nil); err != nil || !slices.Equal(cpus, []int{0, 3}) {
		t.Errorf("cpu0 and cpu3 online: %v, %v", cpus, err)
	}
}

func TestParseMeminfo(t *testing.T) {
	fixture, err := os.ReadFile("testdata/proc/t0/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseMeminfo(fixture)
	want := meminfoFields{totalBytes: 24682416 << 10, availableBytes: 24203816 << 10, cachedBytes: 3006868 << 10, buffersBytes: 75128 << 10}
	if err != nil || got != want {
		t.Fatalf("fixture: %+v, %v; want %+v", got, err, want)
	}
	for _, tc := range []struct{ in, err string }{
		{"MemTotal: 1 kB\nMemAvailable: 1 kB\nCached: 1 kB\n", "field Buffers missing"},
		{"MemTotal: x kB\n", "line 1: MemTotal"},
		{"MemTotal: 1 kB\nMemAvailable: 1 MB\n", `line 2: MemAvailable: unit "MB", want kB`},
		// SwapCached is not Cached.
		{"MemTotal: 1 kB\nMemAvailable: 1 kB\nSwapCached: 1 kB\nBuffers: 1 kB\n", "field Cached missing"},
	} {
		if _, err := parseMeminfo([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("parseMeminfo(%q) = %v, want an error containing %q", tc.in, err, tc.err)
		}
	}
}

// statOracle parses /proc/stat the plain way: strings.Fields per line.
func statOracle(data string) (cpuTicks, []int, bool) {
	var t cpuTicks
	var cpus []int
	seen := false
	for _, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") || strings.HasPrefix(line, " ") {
			if seen && (len(f) == 0 || !strings.HasPrefix(line, "cpu")) {
				break
			}
			continue
		}
		if len(f) < 9 {
			return t, nil, false
		}
		var v [8]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil || n > 1<<59 || strings.ContainsAny(f[i+1], "+-_") {
				return t, nil, false
			}
			v[i] = n
		}
		if f[0] == "cpu" {
			if seen {
				return t, nil, false
			}
			seen = true
			busy := v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
			t = cpuTicks{busy: int64(busy), total: int64(busy + v[3] + v[4])}
			continue
		}
		id, err := strconv.Atoi(f[0][3:])
		if err != nil || id < 0 || (len(cpus) > 0 && id <= cpus[len(cpus)-1]) {
			return t, nil, false
		}
		cpus = append(cpus, id)
	}
	return t, cpus, seen && len(cpus) > 0
}

// FuzzParseProcStat checks the in-place parser against statOracle on
// inputs made of well-formed cpu lines (so the oracle's idea of the format
// is the kernel's), and that nothing panics on anything else.
func FuzzParseProcStat(f *testing.F) {
	fixture, _ := os.ReadFile("testdata/proc/t0/stat")
	f.Add(string(fixture))
	f.Add("cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
	f.Add("cpu  1 2 3 4 5 6 7 8\ncpu2 1 2 3 4 5 6 7 8\nintr 1\n")
	f.Fuzz(func(t *testing.T, in string) {
		got, cpus, err := parseProcStat([]byte(in), nil)
		if err == nil && (got.busy > got.total || len(cpus) == 0 || !slices.IsSorted(cpus)) {
			t.Fatalf("parseProcStat(%q) = %+v, %v without error", in, got, cpus)
		}
		// Compare with the oracle only where every cpu line is in the
		// kernel's shape: "cpu" or "cpuN", one or two spaces, numbers
		// separated by single spaces.
		for _, line := range strings.Split(in, "\n") {
			if !strings.HasPrefix(line, "cpu") {
				continue
			}
			name, rest, _ := strings.Cut(line, " ")
			rest = strings.TrimPrefix(rest, " ")
			if strings.Contains(rest, "  ") || strings.HasSuffix(rest, " ") || strings.ContainsAny(name+rest, "\t\r\v\f") || (name != "cpu" && strings.TrimLeft(name[3:], "0123456789") != "") {
				return
			}
		}
		want, wantCPUs, ok := statOracle(in)
		if ok != (err == nil) || (ok && (got != want || !slices.Equal(cpus, wantCPUs))) {
			t.Fatalf("parseProcStat(%q) = %+v %v %v; oracle %+v %v ok=%v", in, got, cpus, err, want, wantCPUs, ok)
		}
	})
}

// FuzzParseMeminfo checks that the parser never panics and that what it
// accepts is what a plain line-by-line reading finds.
func FuzzParseMeminfo(f *testing.F) {
	fixture, _ := os.ReadFile("testdata/proc/t0/meminfo")
	f.Add(string(fixture))
	f.Add("MemTotal: 1 kB\nMemAvailable: 2 kB\nCached: 3 kB\nBuffers: 4 kB\n")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := parseMeminfo([]byte(in))
		if err != nil {
			return
		}
		for name, v := range map[string]uint64{"MemTotal": got.totalBytes, "MemAvailable": got.availableBytes, "Cached": got.cachedBytes, "Buffers": got.buffersBytes} {
			found := false
			for _, line := range strings.Split(in, "\n") {
				k, rest, ok := strings.Cut(line, ":")
				if !ok || k != name {
					continue
				}
				f := strings.Fields(rest)
				if len(f) == 2 && f[1] == "kB" {
					if n, err := strconv.ParseUint(f[0], 10, 64); err == nil && n*1024 == v {
						found = true
					}
				}
				break // the first line of a name is the one that counts
			}
			if !found {
				t.Fatalf("parseMeminfo(%q): %s = %d, not what the file says", in, name, v)
			}
		}
	})
}

func TestParsePSI(t *testing.T) {
	got, err := parsePSI([]byte("some avg10=4.10 avg60=0.05 avg300=0.01 total=12345\nfull avg10=2.05 avg60=0.00 avg300=0.00 total=0\n"))
	if err != nil || got != (psiAvg10{some: 4.10, full: 2.05, hasSome: true, hasFull: true}) {
		t.Fatalf("parsePSI = %+v, %v", got, err)
	}
	if got, err := parsePSI([]byte("some avg10=0.00 avg60=0.00 avg300=0.00 total=1\n")); err != nil || !got.hasSome || got.hasFull {
		t.Errorf("some only (cpu before 5.13): %+v, %v", got, err)
	}
	for _, tc := range []struct{ in, err string }{
		{"some avg10=x\n", `line 1: some avg10 "x": want a percentage`},
		{"some avg60=1\n", `line 1: some: first field "avg60=1", want avg10=`},
		{"full avg10=101.00 total=0\n", "want a percentage"},
		{"some avg10=1 total=0\nsome avg10=2 total=0\n", `line 2: a second "some" line`},
	} {
		if _, err := parsePSI([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("parsePSI(%q) = %v, want an error containing %q", tc.in, err, tc.err)
		}
	}
}

// FuzzParsePSI checks that the parser never panics and that an accepted
// figure is the one a plain reading of the line finds.
func FuzzParsePSI(f *testing.F) {
	f.Add("some avg10=4.10 avg60=0.05 avg300=0.01 total=12345\nfull avg10=2.05 avg60=0.00 avg300=0.00 total=0\n")
	f.Add("some avg10=0.00 avg60=0.00 avg300=0.00 total=1")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := parsePSI([]byte(in))
		if err != nil {
			return
		}
		for kind, v := range map[string]struct {
			val  float64
			seen bool
		}{"some": {got.some, got.hasSome}, "full": {got.full, got.hasFull}} {
			found := false
			for _, line := range strings.Split(in, "\n") {
				k, rest, _ := strings.Cut(line, " ")
				if k != kind {
					continue
				}
				field, _, _ := strings.Cut(rest, " ")
				n, err := strconv.ParseFloat(strings.TrimPrefix(field, "avg10="), 64)
				found = err == nil && n == v.val
			}
			if found != v.seen {
				t.Fatalf("parsePSI(%q): %s = %v (seen %v), not what the file says", in, kind, v.val, v.seen)
			}
		}
	})
}
