package sample

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/qos"
)

// copyTree copies a fixture directory into a fresh temp dir so a test can
// advance it (replace /proc/stat) without touching testdata.
// newTestHost is NewHost over the proc root, without a logger, failing
// the test on an error.
func newTestHost(t *testing.T, root string) *Host {
	t.Helper()
	h, err := NewHost(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestHostSampleFixture(t *testing.T) {
	root := copyTree(t, "testdata/proc/t0")
	var logBuf bytes.Buffer
	h, err := NewHost(root, slog.New(slog.NewTextHandler(&logBuf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.PSIMissing(); err != nil {
		t.Fatalf("PSIMissing = %v, want nil", err)
	}
	if logBuf.Len() != 0 {
		t.Errorf("unexpected log: %s", logBuf.String())
	}
	t1, err := os.ReadFile("testdata/proc/t1/stat")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "stat"), t1, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := h.Sample()
	if err != nil {
		t.Fatal(err)
	}
	want := qos.HostSample{
		CPUCapacityMilli: 2000,
		CPUs:             []int{0, 1},
		// t0 -> t1: 200 ticks in all (guest time is inside user and not
		// counted again), of which idle 50 + iowait 10: 140/200 of 2 CPUs.
		CPUUsedMilli:      1400,
		MemTotalBytes:     24682416 * 1024,
		MemAvailableBytes: 24203816 * 1024,
		PageCacheBytes:    (3006868 + 75128) * 1024,
		PSI: qos.PSI{
			CPUSomeAvg10:    12.50,
			MemorySomeAvg10: 4.10,
			MemoryFullAvg10: 2.05,
			IOSomeAvg10:     7.77,
			IOFullAvg10:     6.66,
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Sample =\n %+v\nwant\n %+v", got, want)
	}

	// No tick elapsed: the previous rate is repeated, not zero or NaN.
	again, err := h.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if again.CPUUsedMilli != 1400 {
		t.Errorf("Sample with no elapsed ticks: CPUUsedMilli = %d, want 1400 (previous rate)", again.CPUUsedMilli)
	}

	// iowait may go backwards on real kernels: busy time still counts.
	// From t1: user +40, idle +100, iowait -20: 40 busy of 120 ticks.
	writeCPULine(t, root, "cpu  10140 510 3020 80150 990 2 203 105 430 0")
	if s, err := h.Sample(); err != nil || s.CPUUsedMilli != 667 {
		t.Errorf("iowait decreasing: CPUUsedMilli = %d, %v; want 667 (40/120 of 2000)", s.CPUUsedMilli, err)
	}
	// ... even below the busy delta (user +30, iowait -20): capped at
	// capacity, never above.
	writeCPULine(t, root, "cpu  10170 510 3020 80150 970 2 203 105 430 0")
	if s, err := h.Sample(); err != nil || s.CPUUsedMilli != 2000 {
		t.Errorf("iowait dropping: CPUUsedMilli = %d, %v; want 2000", s.CPUUsedMilli, err)
	}
	// No tick elapsed at all (busy +10, iowait -10): the previous rate
	// is repeated.
	writeCPULine(t, root, "cpu  10180 510 3020 80150 960 2 203 105 430 0")
	if s, err := h.Sample(); err != nil || s.CPUUsedMilli != 2000 {
		t.Errorf("zero total delta: CPUUsedMilli = %d, %v; want 2000 (previous)", s.CPUUsedMilli, err)
	}

	// Counters going backwards (back to t0) rebase instead of reporting
	// a negative rate.
	t0, _ := os.ReadFile("testdata/proc/t0/stat")
	if err := os.WriteFile(filepath.Join(root, "stat"), t0, 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := h.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if back.CPUUsedMilli != 0 {
		t.Errorf("Sample after counters went backwards: CPUUsedMilli = %d, want 0", back.CPUUsedMilli)
	}
}

func TestHostSampleWithoutPSI(t *testing.T) {
	var logBuf bytes.Buffer
	h, err := NewHost("testdata/proc-nopsi", slog.New(slog.NewTextHandler(&logBuf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	missing := h.PSIMissing()
	if !errors.Is(missing, fs.ErrNotExist) || !strings.Contains(missing.Error(), "CONFIG_PSI") {
		t.Fatalf("PSIMissing = %v, want an fs.ErrNotExist naming CONFIG_PSI", missing)
	}
	for range 3 {
		s, err := h.Sample()
		if err != nil {
			t.Fatalf("Sample without PSI: %v", err)
		}
		if s.PSI != (qos.PSI{}) {
			t.Errorf("PSI = %+v, want zero", s.PSI)
		}
		if s.MemTotalBytes != 24682416*1024 {
			t.Errorf("MemTotalBytes = %d", s.MemTotalBytes)
		}
	}
	if n := strings.Count(logBuf.String(), "pressure stall information unavailable"); n != 1 {
		t.Errorf("missing PSI logged %d times, want once:\n%s", n, logBuf.String())
	}
}

func TestHostBadInput(t *testing.T) {
	t.Run("no proc root", func(t *testing.T) {
		_, err := NewHost(filepath.Join(t.TempDir(), "nope"), nil)
		if err == nil {
			t.Fatal("NewHost on a missing root: want error")
		}
	})
	t.Run("meminfo without MemAvailable", func(t *testing.T) {
		root := copyTree(t, "testdata/proc-nopsi")
		mi, _ := os.ReadFile(filepath.Join(root, "meminfo"))
		var kept []string
		for _, l := range strings.Split(string(mi), "\n") {
			if !strings.HasPrefix(l, "MemAvailable:") {
				kept = append(kept, l)
			}
		}
		os.WriteFile(filepath.Join(root, "meminfo"), []byte(strings.Join(kept, "\n")), 0o644)
		h := newTestHost(t, root)
		_, err := h.Sample()
		if err == nil || !strings.Contains(err.Error(), "meminfo: field MemAvailable missing") {
			t.Fatalf("Sample = %v, want an error naming meminfo and MemAvailable", err)
		}
	})
	t.Run("garbled pressure file", func(t *testing.T) {
		root := copyTree(t, "testdata/proc/t0")
		h := newTestHost(t, root)
		os.WriteFile(filepath.Join(root, "pressure", "io"), []byte("some avg10=x\n"), 0o644)
		if _, err := h.Sample(); err == nil {
			t.Fatal("Sample with a garbled pressure/io: want error")
		}
	})
}

func TestHostReal(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skipf("no /proc: %v", err)
	}
	h := newTestHost(t, "/proc")
	s, err := h.Sample()
	if err != nil {
		t.Fatal(err)
	}
	online, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err == nil {
		if want := cpuList(t, strings.TrimSpace(string(online))); !reflect.DeepEqual(s.CPUs, want) || s.CPUCapacityMilli != int64(len(want))*1000 {
			t.Errorf("CPUs %v, capacity %d; /sys/devices/system/cpu/online lists %v", s.CPUs, s.CPUCapacityMilli, want)
		}
	}
	if s.CPUUsedMilli < 0 || s.CPUUsedMilli > s.CPUCapacityMilli {
		t.Errorf("CPUUsedMilli = %d outside [0, %d]", s.CPUUsedMilli, s.CPUCapacityMilli)
	}
	if s.MemTotalBytes == 0 || s.MemAvailableBytes > s.MemTotalBytes {
		t.Errorf("memory: total %d, available %d", s.MemTotalBytes, s.MemAvailableBytes)
	}
}

// cpuList expands a kernel cpu list such as "0-3,5".
func cpuList(t *testing.T, list string) []int {
	t.Helper()
	var cpus []int
	for _, part := range strings.Split(list, ",") {
		var lo, hi int
		switch c, _ := fmt.Sscanf(part, "%d-%d", &lo, &hi); c {
		case 2:
		case 1:
			hi = lo
		default:
			t.Fatalf("bad cpu list %q", list)
		}
		for i := lo; i <= hi; i++ {
			cpus = append(cpus, i)
		}
	}
	return cpus
}

// writeCPULine replaces the aggregate cpu line of root/stat.
func writeCPULine(t *testing.T, root, line string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "stat"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(b), "\n")
	if err := os.WriteFile(filepath.Join(root, "stat"), []byte(line+"\n"+rest), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ReadPSIEvery(n) reads /proc/pressure on the first call and every n-th
// after, repeating the last figures in between.
func TestHostReadPSIEvery(t *testing.T) {
	root := copyTree(t, "testdata/proc/t0")
	h := newTestHost(t, root)
	h.ReadPSIEvery(3)
	cpuPressure := func(avg10 string) {
		t.Helper()
		line := "some avg10=" + avg10 + " avg60=0.00 avg300=0.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
		if err := os.WriteFile(filepath.Join(root, "pressure", "cpu"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var got []float64
	for i, v := range []string{"1.00", "2.00", "3.00", "4.00", "5.00"} {
		cpuPressure(v)
		s, err := h.Sample()
		if err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
		got = append(got, s.PSI.CPUSomeAvg10)
	}
	if want := []float64{1, 1, 1, 4, 4}; !reflect.DeepEqual(got, want) {
		t.Errorf("cpu some avg10 per sample = %v, want %v", got, want)
	}
}

// ReadMemoryEvery(n) reads /proc/meminfo on the first call and every n-th
// after, repeating the last figures in between; /proc/stat is read on
// every call.
func TestHostReadMemoryEvery(t *testing.T) {
	root := copyTree(t, "testdata/proc/t0")
	h := newTestHost(t, root)
	h.ReadMemoryEvery(2)
	var avail []uint64
	var cpus []int64
	for i := range 4 {
		mi := fmt.Sprintf("MemTotal: 1000 kB\nMemAvailable: %d kB\nBuffers: 1 kB\nCached: 2 kB\n", 100*(i+1))
		if err := os.WriteFile(filepath.Join(root, "meminfo"), []byte(mi), 0o644); err != nil {
			t.Fatal(err)
		}
		writeCPULine(t, root, fmt.Sprintf("cpu  %d 500 3000 %d 1000 0 200 100 400 0", 10000+10*(i+1), 80000+10*(i+1)))
		s, err := h.Sample()
		if err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
		avail = append(avail, s.MemAvailableBytes/1024)
		cpus = append(cpus, s.CPUUsedMilli)
	}
	if want := []uint64{100, 100, 300, 300}; !reflect.DeepEqual(avail, want) {
		t.Errorf("MemAvailable kB per sample = %v, want %v", avail, want)
	}
	// Each sample: user +10 of 20 ticks on 2 CPUs.
	if want := []int64{1000, 1000, 1000, 1000}; !reflect.DeepEqual(cpus, want) {
		t.Errorf("CPUUsedMilli per sample = %v, want %v (read every call)", cpus, want)
	}
}
