package cgroupfs_test

import (
	"testing"

	cgroups "github.com/containerd/cgroups/v3"

	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
	"github.com/sluicehq/sluice/test/kerneltest"
)

func TestRealDetectAgreesWithContainerd(t *testing.T) {
	kerneltest.RequireCgroupV1Controller(t, "cpuacct")
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
