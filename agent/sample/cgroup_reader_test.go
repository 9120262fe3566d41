package sample

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
		{"/sluice/offline/job-1", CgroupUsage{CPUTotal: 123456789012 * time.Nanosecond, MemoryUsageBytes: 402653184, MemoryLimitBytes: 1 << 30}},
		// total_inactive_file above usage (read skew) clamps to 0; the
		// PAGE_COUNTER_MAX limit means unlimited.
		{"sluice/online/web/", CgroupUsage{CPUTotal: 5 * time.Second, MemoryUsageBytes: 0, MemoryLimitBytes: 0}},
	}
	for _, tc := range []struct {
		root  string
		wants []want
	}{
		{"testdata/cgroup/v1-split", v1},
		{"testdata/cgroup/v1-combined", v1},
		{"testdata/cgroup/v2", []want{
			{"/sluice/offline/job-1", CgroupUsage{CPUTotal: 987654321 * time.Microsecond, MemoryUsageBytes: 637534208 - 314572800, MemoryLimitBytes: 1 << 30}},
			{"/sluice/online/web", CgroupUsage{CPUTotal: 42 * time.Microsecond, MemoryUsageBytes: 104857600 - 4194304, MemoryLimitBytes: 0}},
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
