package capability_test

import (
	"context"
	"os"
	"testing"

	"github.com/sluicehq/sluice/agent/capability"
	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
	"github.com/sluicehq/sluice/test/kerneltest"
)

// On the real host Probe agrees with the features the kerneltest gates
// find: the same cgroup layout as Detect, PSI exactly when the pressure
// files read, BPF usable where the gate says BPF works.
func TestProbeRealHost(t *testing.T) {
	kerneltest.RequireRoot(t)
	c := capability.Probe(context.Background(), capability.Roots{})
	want, err := cgroupfs.Detect("/sys/fs/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if c.Cgroup != want || c.CgroupErr != "" {
		t.Errorf("cgroup %v (%q), Detect says %v", c.Cgroup, c.CgroupErr, want)
	}
	_, perr := os.ReadFile("/proc/pressure/memory")
	if c.PSI != (perr == nil) {
		t.Errorf("psi %v (%q), /proc/pressure/memory read: %v", c.PSI, c.PSIErr, perr)
	}
	kerneltest.RequireBPF(t)
	if !c.BPFUsable || c.BPFErr != "" {
		t.Errorf("bpf unusable on a BPF host: %+v %q", c.BPF, c.BPFErr)
	}
	t.Logf("%+v", c)
}
