package cgrouptest

import (
	"os"
	"path/filepath"
	"testing"
)

// HostVariant is one way hosts mount cgroups.
type HostVariant string

// The variants a Host models.
const (
	// V1Split: cpu, cpuacct, memory and cpuset mounted apart, no cgroup2.
	V1Split HostVariant = "v1-split"
	// V1Combined: cpu and cpuacct co-mounted at cpu,cpuacct with cpu and
	// cpuacct symlinks to it (most distributions), memory and cpuset
	// apart, no cgroup2.
	V1Combined HostVariant = "v1-combined"
	// Hybrid: V1Split plus a cgroup2 at unified offering no resource
	// controller but hugetlb (Sluice's CI machines).
	Hybrid HostVariant = "hybrid"
	// Unified: one cgroup2 at the root holding every controller.
	Unified HostVariant = "v2"
)

// Host is a fake cgroup mount root laid out like a host of one variant:
// each hierarchy is a fake (V1 or V2) kept in its directory under Root,
// so cgroupfs.Detect(Root) finds the layout the variant names, and tests
// reach each hierarchy's fake to check what was written.
type Host struct {
	Root string
	// CPU, CPUAcct, Memory and Cpuset are the v1 hierarchies (nil on v2);
	// CPU and CPUAcct are the same fake when co-mounted.
	CPU, CPUAcct, Memory, Cpuset *V1
	// V2 is the cgroup2 hierarchy: the root on v2, <Root>/unified on
	// hybrid hosts, nil on pure v1.
	V2 *V2
}

// NewHost lays out a fake host of the variant in a temporary directory.
func NewHost(t testing.TB, variant HostVariant, opts Options) *Host {
	t.Helper()
	h := &Host{Root: t.TempDir()}
	mount := func(name string) string {
		dir := filepath.Join(h.Root, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatalf("fake host: %v", err)
		}
		return dir
	}
	switch variant {
	case Unified:
		h.V2 = newV2(h.Root, opts)
		return h
	case V1Combined:
		h.CPU = newV1(mount("cpu,cpuacct"), "cpu", opts)
		h.CPUAcct = h.CPU
		for _, link := range []string{"cpu", "cpuacct"} {
			if err := os.Symlink("cpu,cpuacct", filepath.Join(h.Root, link)); err != nil {
				t.Fatalf("fake host: %v", err)
			}
		}
	case V1Split, Hybrid:
		h.CPU = newV1(mount("cpu"), "cpu", opts)
		h.CPUAcct = newV1(mount("cpuacct"), "cpuacct", opts)
	default:
		t.Fatalf("fake host: unknown variant %q", variant)
	}
	h.Memory = newV1(mount("memory"), "memory", opts)
	h.Cpuset = newV1(mount("cpuset"), "cpuset", opts)
	if variant == Hybrid {
		h.V2 = newV2(mount("unified"), opts)
		h.V2.put("/cgroup.controllers", "hugetlb")
	}
	return h
}
