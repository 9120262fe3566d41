package kerneltest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FeatureCgroupV2Controllers declares a cgroup2 hierarchy whose root offers
// resource controllers (cpu, memory, io, cpuset, pids) to its children: a
// pure v2 host, or the guest of the VM lane (test/vm).
const FeatureCgroupV2Controllers = "cgroupv2-controllers"

// InVM reports whether the test runs inside the VM lane's guest (test/vm),
// whose /init sets SLUICE_IN_VM=1.
func InVM() bool {
	return os.Getenv("SLUICE_IN_VM") == "1"
}

// RequireCgroupV2Controllers needs root and a cgroup2 mount whose root lists
// every named controller in cgroup.controllers and enables it in
// cgroup.subtree_control (so a child the test creates gets that
// controller's files); it returns the mount root. With no names it needs
// at least one controller. This host's hybrid cgroup2 has none, so tests
// that use it skip here and run in the VM lane.
func RequireCgroupV2Controllers(t testing.TB, controllers ...string) string {
	t.Helper()
	RequireRoot(t)
	for _, dir := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		avail, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
		if err != nil {
			continue
		}
		have := strings.Fields(string(avail))
		if len(controllers) == 0 && len(have) == 0 {
			Missing(t, FeatureCgroupV2Controllers, "cgroup2 at %s offers no controllers", dir)
		}
		enabledData, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
		if err != nil {
			Missing(t, FeatureCgroupV2Controllers, "read %s/cgroup.subtree_control: %v", dir, err)
		}
		enabled := strings.Fields(string(enabledData))
		for _, c := range controllers {
			if !slices.Contains(have, c) {
				Missing(t, FeatureCgroupV2Controllers, "cgroup2 at %s has no %s controller (cgroup.controllers: %q)", dir, c, strings.TrimSpace(string(avail)))
			}
			if !slices.Contains(enabled, c) {
				Missing(t, FeatureCgroupV2Controllers, "cgroup2 at %s does not enable %s for its children (cgroup.subtree_control: %q)", dir, c, strings.TrimSpace(string(enabledData)))
			}
		}
		return dir
	}
	Missing(t, FeatureCgroupV2Controllers, "no cgroup2 mount at /sys/fs/cgroup/unified or /sys/fs/cgroup")
	return ""
}
