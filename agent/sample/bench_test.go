package sample

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
)

const benchCgroups = 100

// fakeTree builds benchCgroups cgroups under a temp root by copying the
// fixture job's files (real-sized memory.stat and cpu.stat) into
// /bench/cNNN of each hierarchy, and returns the root and the paths.
func fakeTree(b *testing.B, fixture string, hierarchies []string) (string, []string) {
	b.Helper()
	root := b.TempDir()
	if err := os.CopyFS(root, os.DirFS(fixture)); err != nil {
		b.Fatal(err)
	}
	var paths []string
	for i := range benchCgroups {
		p := fmt.Sprintf("/bench/c%03d", i)
		paths = append(paths, p)
		for _, h := range hierarchies {
			src := filepath.Join(root, h, "sluice/offline/job-1")
			dst := filepath.Join(root, h, p)
			if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
				b.Fatal(err)
			}
		}
	}
	return root, paths
}

// sampleAll is what the agent loop does per tick for its workloads.
func sampleAll(b *testing.B, r *CgroupReader, m *CPUMeter, paths []string, at time.Time) {
	for _, p := range paths {
		u, err := r.Usage(p)
		if err != nil {
			b.Fatal(err)
		}
		m.Observe(p, u.CPUTotal, at)
	}
}

// benchCgroupReader measures one CgroupReader sample of every cgroup in
// paths, fed to a CPUMeter as the agent's tick does.
func benchCgroupReader(b *testing.B, layout cgroupfs.Layout, paths []string) {
	r, err := NewCgroupReader(layout)
	if err != nil {
		b.Fatal(err)
	}
	m := NewCPUMeter()
	at := time.Unix(0, 0)
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(time.Second)
		sampleAll(b, r, m, paths, at)
	}
}

func BenchmarkCgroupReaderFake(b *testing.B) {
	for _, tc := range []struct {
		name        string
		fixture     string
		hierarchies []string
	}{
		{"v1-100", "testdata/cgroup/v1-split", []string{"cpuacct", "memory"}},
		{"v2-100", "testdata/cgroup/v2", []string{"."}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			root, paths := fakeTree(b, tc.fixture, tc.hierarchies)
			benchCgroupReader(b, layoutOf(b, root), paths)
		})
	}
}

func BenchmarkHostSampleFixture(b *testing.B) { benchHostSample(b, "testdata/proc/t0") }

// benchHostSample measures one host sample from the proc tree at procRoot.
func benchHostSample(b *testing.B, procRoot string) {
	h, err := NewHost(procRoot, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Sample(); err != nil {
			b.Fatal(err)
		}
	}
}
