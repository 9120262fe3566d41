package kerneltest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Feature names accepted in SLUICE_REQUIRE.
const (
	FeatureRoot       = "root"
	FeatureCgroupV1   = "cgroupv1"
	FeatureCgroupV2   = "cgroupv2"
	FeatureBPF        = "bpf"
	FeatureContainerd = "containerd"
	FeaturePSI        = "psi"
	FeatureQEMU       = "qemu"
)

// Declared reports whether the environment declares feature present.
func Declared(feature string) bool {
	for _, f := range strings.Split(os.Getenv("SLUICE_REQUIRE"), ",") {
		f = strings.TrimSpace(f)
		if f == feature || f == "all" {
			return true
		}
	}
	return false
}

// Missing skips t, or fails it when feature is declared present.
func Missing(t testing.TB, feature, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf("%s missing: %s", feature, fmt.Sprintf(format, args...))
	if Declared(feature) {
		t.Fatalf("%s (declared present by SLUICE_REQUIRE)", msg)
	}
	t.Skip(msg)
}

// RequireRoot needs euid 0.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, FeatureRoot, "test needs root (euid %d)", os.Geteuid())
	}
}

// CgroupV1Root is where v1 controllers are mounted on the hosts Sluice targets.
const CgroupV1Root = "/sys/fs/cgroup"

// RequireCgroupV1Controller needs root and a writable v1 hierarchy for
// controller, and returns its mount point.
func RequireCgroupV1Controller(t testing.TB, controller string) string {
	t.Helper()
	RequireRoot(t)
	dir := filepath.Join(CgroupV1Root, controller)
	if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
		Missing(t, FeatureCgroupV1, "no v1 %s controller at %s: %v", controller, dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.controllers")); err == nil {
		Missing(t, FeatureCgroupV1, "%s is a cgroup v2 mount, not v1", dir)
	}
	return dir
}

// RequireCgroupV2 needs root and a mounted cgroup2 hierarchy, and returns
// its mount point (the unified root on hybrid hosts).
func RequireCgroupV2(t testing.TB) string {
	t.Helper()
	RequireRoot(t)
	for _, dir := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(dir, "cgroup.controllers")); err == nil {
			return dir
		}
	}
	Missing(t, FeatureCgroupV2, "no cgroup2 mount at /sys/fs/cgroup/unified or /sys/fs/cgroup")
	return ""
}

// RequirePSI needs /proc/pressure.
func RequirePSI(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/proc/pressure/cpu"); err != nil {
		Missing(t, FeaturePSI, "no /proc/pressure/cpu (kernel without CONFIG_PSI or psi=0): %v", err)
	}
}

// RequireBinary needs an executable on PATH, part of feature, and returns its path.
func RequireBinary(t testing.TB, feature, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, feature, "%s not on PATH", name)
	}
	return p
}

// RequireContainerd needs root plus containerd and runc binaries, and
// returns the containerd path.
func RequireContainerd(t testing.TB) string {
	t.Helper()
	RequireRoot(t)
	RequireBinary(t, FeatureContainerd, "runc")
	return RequireBinary(t, FeatureContainerd, "containerd")
}
