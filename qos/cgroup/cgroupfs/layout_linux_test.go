package cgroupfs_test

import (
	"testing"

	cgroups "github.com/containerd/cgroups/v3"

	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
	"github.com/sluicehq/sluice/test/kerneltest"
)

// On any real host (v1 and hybrid here, v2 in the VM lane) Detect agrees
// with containerd's own detection.
func TestRealDetectAgreesWithContainerd(t *testing.T) {
	if cgroups.Mode() == cgroups.Unavailable {
		kerneltest.Missing(t, kerneltest.FeatureCgroupV1, "no cgroup file system at /sys/fs/cgroup")
	}
	l, err := cgroupfs.Detect("/sys/fs/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	want := map[cgroups.CGMode]cgroupfs.Mode{cgroups.Legacy: cgroupfs.ModeV1, cgroups.Hybrid: cgroupfs.ModeHybrid, cgroups.Unified: cgroupfs.ModeV2}[cgroups.Mode()]
	if l.Mode() != want {
		t.Errorf("Detect = %v, containerd says %v", l, want)
	}
	for _, c := range l.Controllers() {
		if l.Hierarchy(c) == "" {
			t.Errorf("controller %s listed without a hierarchy", c)
		}
	}
	t.Logf("layout: %v", l)
}
