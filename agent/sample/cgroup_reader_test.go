package sample

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
)

// layoutOf detects the layout of a fixture tree, as the agent does at start.
func layoutOf(t testing.TB, root string) cgroupfs.Layout {
	t.Helper()
	l, err := cgroupfs.Detect(root)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestCgroupReaderFixtures(t *testing.T) {
	type want struct {
		path string
		u    CgroupUsage
	}
	v1 := []want{
		// working set 512 MiB - 128 MiB total_inactive_file (not the
		// cgroup-local inactive_file line, which memory.stat also has).
		{"/sluice/offline/job-1", CgroupUsage{CPUTotal: 123456789012 * time.Nanosecond, MemoryUsageBytes: 402653184, MemoryLimitBytes: 1 << 30, MemoryChargedBytes: 512 << 20}},
		// total_inactive_file above usage (read skew) clamps to 0; the
		// PAGE_COUNTER_MAX limit means unlimited.
		{"sluice/online/web/", CgroupUsage{CPUTotal: 5 * time.Second, MemoryUsageBytes: 0, MemoryLimitBytes: 0, MemoryChargedBytes: 1 << 20}},
	}
	for _, tc := range []struct {
		root  string
		wants []want
	}{
		{"testdata/cgroup/v1-split", v1},
		{"testdata/cgroup/v1-combined", v1},
		{"testdata/cgroup/v2", []want{
			{"/sluice/offline/job-1", CgroupUsage{CPUTotal: 987654321 * time.Microsecond, MemoryUsageBytes: 637534208 - 314572800, MemoryLimitBytes: 1 << 30, MemoryChargedBytes: 637534208}},
			{"/sluice/online/web", CgroupUsage{CPUTotal: 42 * time.Microsecond, MemoryUsageBytes: 104857600 - 4194304, MemoryLimitBytes: 0, MemoryChargedBytes: 104857600}},
		}},
	} {
		r, err := NewCgroupReader(layoutOf(t, tc.root))
		if err != nil {
			t.Fatalf("NewCgroupReader(%s): %v", tc.root, err)
		}
		for _, w := range tc.wants {
			got, err := r.Usage(w.path)
			if err != nil || got != w.u {
				t.Errorf("%s %s: Usage = %+v, %v; want %+v", tc.root, w.path, got, err, w.u)
			}
		}
	}
}

// TestCgroupReaderMembersFixture lists a fixture cgroup's children. Its
// directory has no cgroup.procs, as happens when the cgroup is removed
// between the listing and the open: that is ErrCgroupGone, which callers
// treat as a vanished cgroup, not a failed read.
func TestCgroupReaderMembersFixture(t *testing.T) {
	r, err := NewCgroupReader(layoutOf(t, "testdata/cgroup/v1-split"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Members("/sluice"); !errors.Is(err, ErrCgroupGone) {
		t.Errorf("Members of a directory without cgroup.procs = %v, want ErrCgroupGone", err)
	}
	if _, err := r.Members("/sluice/none"); !errors.Is(err, ErrCgroupGone) {
		t.Errorf("Members of a missing directory = %v, want ErrCgroupGone", err)
	}
	m, err := r.Members("/")
	if err != nil || m.Tasks || !slices.Equal(m.Children, []string{"sluice"}) {
		t.Errorf(`Members("/") = %+v, %v; want child [sluice], no process (empty cgroup.procs)`, m, err)
	}
}

// TestCgroupReaderUsageLazy changes a fixture cgroup's files between
// passes and checks when UsageLazy reuses the inactive file count of an
// earlier memory.stat read and when it reads memory.stat again.
func TestCgroupReaderUsageLazy(t *testing.T) {
	const job = "/sluice/offline/job-1"
	const mib = 1 << 20
	// The fixture: charged 512 MiB, total_inactive_file 128 MiB, limit 1 GiB.
	type step struct {
		name string
		// charged and limit are written before the read (0: leave);
		// inactive is always written, so a reuse shows as the old count.
		charged, limit, inactive uint64
		skipPass                 bool // do not read the cgroup in the pass before
		wantWS                   uint64
		wantAge                  int
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"reused while the charge stands, up to the age bound", []step{
			{name: "first read", inactive: 128 * mib, wantWS: 384 * mib},
			{name: "pass 1", inactive: 64 * mib, wantWS: 384 * mib, wantAge: 1},
			{name: "pass 2, charge moved within a 32nd", charged: 512*mib + 15*mib, inactive: 64 * mib, wantWS: 384*mib + 15*mib, wantAge: 2},
			{name: "pass 3", inactive: 64 * mib, wantWS: 384*mib + 15*mib, wantAge: 3},
			{name: "pass 4", inactive: 64 * mib, wantWS: 384*mib + 15*mib, wantAge: 4},
			{name: "pass 5", inactive: 64 * mib, wantWS: 384*mib + 15*mib, wantAge: 5},
			{name: "pass 6", inactive: 64 * mib, wantWS: 384*mib + 15*mib, wantAge: 6},
			{name: "pass 7", inactive: 64 * mib, wantWS: 384*mib + 15*mib, wantAge: 7},
			{name: "pass 8", inactive: 64 * mib, wantWS: 384*mib + 15*mib, wantAge: 8},
			{name: "pass 9", inactive: 64 * mib, wantWS: 384*mib + 15*mib, wantAge: 9},
			{name: "pass 10: too old, read again", inactive: 64 * mib, wantWS: 448*mib + 15*mib},
			{name: "and reused from there", inactive: 32 * mib, wantWS: 448*mib + 15*mib, wantAge: 1},
		}},
		{"charge moved by more than a 32nd", []step{
			{name: "first read", inactive: 128 * mib, wantWS: 384 * mib},
			{name: "charge up 17 MiB", charged: 529 * mib, inactive: 100 * mib, wantWS: 429 * mib},
			{name: "charge down 17 MiB", charged: 512 * mib, inactive: 90 * mib, wantWS: 422 * mib},
		}},
		{"small cgroup: 1 MiB band", []step{
			{name: "first read", charged: 8 * mib, inactive: 4 * mib, wantWS: 4 * mib},
			{name: "within 1 MiB", charged: 9 * mib, inactive: 2 * mib, wantWS: 5 * mib, wantAge: 1},
			{name: "beyond 1 MiB", charged: 10*mib + 1, inactive: 2 * mib, wantWS: 8*mib + 1},
		}},
		{"near its own limit", []step{
			{name: "first read, limit 580 MiB: charge within an eighth", limit: 580 * mib, inactive: 128 * mib, wantWS: 384 * mib},
			{name: "read afresh while within an eighth", inactive: 64 * mib, wantWS: 448 * mib},
			{name: "limit raised to 600 MiB: read afresh once more, limit with it", limit: 600 * mib, inactive: 32 * mib, wantWS: 480 * mib},
			{name: "then reused", inactive: 16 * mib, wantWS: 480 * mib, wantAge: 1},
		}},
		{"forgotten after a pass without a read", []step{
			{name: "first read", inactive: 128 * mib, wantWS: 384 * mib},
			{name: "after a pass away", skipPass: true, inactive: 64 * mib, wantWS: 448 * mib},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := copyTree(t, "testdata/cgroup/v1-split")
			dir := filepath.Join(root, "memory", job)
			r, err := NewCgroupReader(layoutOf(t, root))
			if err != nil {
				t.Fatal(err)
			}
			stat, err := os.ReadFile(filepath.Join(dir, "memory.stat"))
			if err != nil {
				t.Fatal(err)
			}
			write := func(name string, v uint64) {
				if err := os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, "%d\n", v), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for i, s := range tc.steps {
				if i > 0 {
					if s.skipPass {
						r.CloseUnused()
					}
					r.CloseUnused()
				}
				if s.charged > 0 {
					write("memory.usage_in_bytes", s.charged)
				}
				if s.limit > 0 {
					write("memory.limit_in_bytes", s.limit)
				}
				text := strings.Replace(string(stat), "total_inactive_file 134217728", fmt.Sprintf("total_inactive_file %d", s.inactive), 1)
				if err := os.WriteFile(filepath.Join(dir, "memory.stat"), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				u, err := r.UsageLazy(job)
				if err != nil || u.MemoryUsageBytes != s.wantWS || u.InactiveFromPass != s.wantAge {
					t.Fatalf("%s: UsageLazy = working set %d MiB (+%d B), from pass %d, %v; want %d MiB (+%d B), from pass %d",
						s.name, u.MemoryUsageBytes>>20, u.MemoryUsageBytes%mib, u.InactiveFromPass, err, s.wantWS>>20, s.wantWS%mib, s.wantAge)
				}
			}
			// Usage always reads memory.stat.
			exact, err := r.Usage(job)
			last := tc.steps[len(tc.steps)-1]
			if want := u64sub(exact.MemoryChargedBytes, last.inactive); err != nil || exact.MemoryUsageBytes != want || exact.InactiveFromPass != 0 {
				t.Errorf("Usage = %+v, %v; want working set %d read now", exact, err, want)
			}
		})
	}
}

func u64sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

func TestCgroupReaderGoneAndMissing(t *testing.T) {
	for _, root := range []string{"testdata/cgroup/v1-split", "testdata/cgroup/v2"} {
		r, err := NewCgroupReader(layoutOf(t, root))
		if err != nil {
			t.Fatal(err)
		}
		// An exited container, and a path trying to leave the root (it is
		// cleaned to /etc under the root, which does not exist there).
		for _, p := range []string{"/sluice/offline/exited", "../../../etc"} {
			_, err := r.Usage(p)
			if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrCgroupGone) {
				t.Errorf("%s: Usage(%q) = %v, want ErrCgroupGone wrapping fs.ErrNotExist", root, p, err)
			}
		}
	}
	r, err := NewCgroupReader(layoutOf(t, "testdata/cgroup/v2"))
	if err != nil {
		t.Fatal(err)
	}
	// cpu.stat exists but the memory controller is not enabled there.
	if cpu, err := r.CPU("/sluice/nomem"); err != nil || cpu != 7*time.Microsecond {
		t.Errorf("CPU(/sluice/nomem) = %v, %v; want 7µs", cpu, err)
	}
	_, err = r.Usage("/sluice/nomem")
	if !errors.Is(err, ErrNoController) || errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "memory.current") {
		t.Errorf("Usage(/sluice/nomem) = %v, want ErrNoController naming memory.current and not fs.ErrNotExist", err)
	}
}

func TestCgroupReaderBadFiles(t *testing.T) {
	root := copyTree(t, "testdata/cgroup/v2")
	job := filepath.Join(root, "sluice/offline/job-1")
	r, err := NewCgroupReader(layoutOf(t, root))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file, content, wantErr string
	}{
		{"memory.current", "12x\n", "cgroup /sluice/offline/job-1: memory.current: parse value"},
		{"memory.max", "-1\n", "cgroup /sluice/offline/job-1: memory.max: parse memory limit"},
		{"memory.stat", "anon 1\nfile 2\n", "memory.stat: inactive_file: key missing"},
		{"cpu.stat", "usage_usec 18446744073709551616\n", "cpu.stat: parse usage_usec"},
	} {
		orig, _ := os.ReadFile(filepath.Join(job, tc.file))
		os.WriteFile(filepath.Join(job, tc.file), []byte(tc.content), 0o644)
		_, err := r.Usage("/sluice/offline/job-1")
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s = %q: Usage error %v, want it to contain %q", tc.file, tc.content, err, tc.wantErr)
		}
		os.WriteFile(filepath.Join(job, tc.file), orig, 0o644)
	}
	if _, err := r.Usage("/sluice/offline/job-1"); err != nil {
		t.Errorf("after restoring files: %v", err)
	}
}

func TestNewCgroupReaderRejects(t *testing.T) {
	// A v1 host without a memory hierarchy cannot be read.
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "cpuacct"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "cpuacct", "cgroup.procs"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewCgroupReader(layoutOf(t, root)); err == nil || !strings.Contains(err.Error(), "memory") {
		t.Errorf("v1 without memory: %v, want error naming memory", err)
	}
	if _, err := NewCgroupReader(cgroupfs.Layout{}); err == nil {
		t.Error("zero layout: want error")
	}
}

func TestReadCgroupFileGrows(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("padding_key 1\n", 1000) + "inactive_file 77\n"
	os.WriteFile(filepath.Join(dir, "memory.stat"), []byte(big), 0o644)
	var buf [16]byte
	data, err := readCgroupFile(openAndRead, dir, "memory.stat", buf[:0])
	if err != nil || string(data) != big {
		t.Fatalf("readCgroupFile: %d bytes, %v; want %d bytes", len(data), err, len(big))
	}
	if v, err := cgroupfs.ParseFlatKeyed(data, "inactive_file"); err != nil || v != 77 {
		t.Errorf("ParseFlatKeyed = %d, %v", v, err)
	}
}

// TestCgroupReaderConcurrent shares one reader (and its buffer pool) between
// goroutines; run with -race.
func TestCgroupReaderConcurrent(t *testing.T) {
	r, err := NewCgroupReader(layoutOf(t, "testdata/cgroup/v2"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]CgroupUsage{}
	for _, p := range []string{"/sluice/offline/job-1", "/sluice/online/web"} {
		if want[p], err = r.Usage(p); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 200 {
				p := "/sluice/offline/job-1"
				if (g+i)%2 == 0 {
					p = "/sluice/online/web"
				}
				if got, err := r.Usage(p); err != nil || got != want[p] {
					errs <- fmt.Errorf("%s: %+v, %v; want %+v", p, got, err, want[p])
					return
				}
				if _, err := r.Usage("/sluice/gone"); !errors.Is(err, ErrCgroupGone) {
					errs <- fmt.Errorf("gone: %v", err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	// Fixture trees are not cgroupfs: their files are never held open (an
	// unlinked regular file would keep reading its old contents).
	if n := r.CloseUnused(); n != 0 {
		t.Errorf("%d fixture files held open, want 0", n)
	}
}

// Cgroups first read in the same pass are read afresh on different passes
// after, not all together every InactiveMaxPasses.
func TestCgroupReaderUsageLazyStaggers(t *testing.T) {
	r, err := NewCgroupReader(layoutOf(t, "testdata/cgroup/v1-split"))
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"/sluice/offline/job-1", "/sluice/online/web"}
	fresh := map[string][]int{}
	for pass := range 2 * InactiveMaxPasses {
		for _, p := range paths {
			u, err := r.UsageLazy(p)
			if err != nil {
				t.Fatal(err)
			}
			if u.InactiveFromPass == 0 {
				fresh[p] = append(fresh[p], pass)
			}
		}
		r.CloseUnused()
	}
	a, b := fresh[paths[0]], fresh[paths[1]]
	if len(a) < 2 || len(b) < 2 || a[1] == b[1] {
		t.Errorf("passes read afresh: %s %v, %s %v; want each re-read, on different passes", paths[0], a, paths[1], b)
	}
}
