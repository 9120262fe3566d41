package sample

import (
	"fmt"
	"testing"

	"github.com/containerd/cgroups/v3/cgroup1"

	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
	"github.com/sluicehq/sluice/test/kerneltest"
)

// realTree creates benchCgroups empty cgroups under a unique parent in the
// v1 cpuacct and memory hierarchies and removes them after the benchmark.
func realTree(b *testing.B) []string {
	b.Helper()
	parent := kerneltest.UniqueName("sluice-sample")
	roots := []string{kerneltest.RequireCgroupV1Controller(b, "cpuacct"), kerneltest.RequireCgroupV1Controller(b, "memory")}
	var paths []string
	for i := range benchCgroups {
		p := fmt.Sprintf("/%s/c%03d", parent, i)
		kerneltest.MakeCgroup(b, p, roots...)
		paths = append(paths, p)
	}
	return paths
}

// BenchmarkCgroupReaderReal samples 100 real v1 cgroups with CgroupReader,
// and, for comparison, with containerd/cgroups/v3's cgroup1 Stat (every
// subsystem), the reason CgroupReader reads its few files directly.
func BenchmarkCgroupReaderReal(b *testing.B) {
	kerneltest.RequireRoot(b)
	layout, err := cgroupfs.Detect(cgroupRoot)
	if err != nil || layout.Mode() == cgroupfs.ModeV2 {
		kerneltest.Missing(b, kerneltest.FeatureCgroupV1, "cgroup layout %v, %v", layout, err)
	}
	paths := realTree(b)
	b.Run("sluice-v1-100", func(b *testing.B) { benchCgroupReader(b, layout, paths) })
	b.Run("containerd-cgroup1-stat-100", func(b *testing.B) {
		var cgs []cgroup1.Cgroup
		for _, p := range paths {
			cg, err := cgroup1.Load(cgroup1.StaticPath(p))
			if err != nil {
				b.Fatal(err)
			}
			cgs = append(cgs, cg)
		}
		b.ReportAllocs()
		for b.Loop() {
			for _, cg := range cgs {
				if _, err := cg.Stat(cgroup1.IgnoreNotExist); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

func BenchmarkHostSampleReal(b *testing.B) { benchHostSample(b, "/proc") }
