package lane

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
)

// metaPackage is the Debian package whose dependency names the kernel.
const metaPackage = "linux-image-amd64"

// DefaultModules are the modules every guest gets: the qdiscs, classifiers
// and devices Sluice's enforcers test against (configfs comes in as
// null_blk's dependency).
func DefaultModules() []string {
	return []string{
		"sch_fq", "sch_htb", "sch_tbf", "sch_netem", "sch_ingress",
		"cls_bpf", "act_bpf", "veth", "dummy", "null_blk",
	}
}

// Kernel is a fetched, ready-to-boot Debian kernel.
type Kernel struct {
	Package string `json:"package"` // e.g. linux-image-6.1.0-56-amd64
	Deb     string `json:"deb"`     // the .deb file name fetched, with its version
	Release string `json:"release"` // e.g. 6.1.0-56-amd64
	// Vmlinux is the uncompressed kernel (absolute path once loaded).
	Vmlinux string `json:"vmlinux"`
	// Modules are uncompressed .ko files in load order, dependencies first
	// (absolute paths once loaded).
	Modules []string `json:"modules"`
}

// modulesKey names a module set in the cache, so changing the list
// fetches a matching module set instead of reusing a stale one.
func modulesKey(modules []string) string {
	names := make([]string, len(modules))
	for i, m := range modules {
		names[i] = ModuleName(m)
	}
	slices.Sort(names)
	sum := sha256.Sum256([]byte(strings.Join(slices.Compact(names), ",")))
	return hex.EncodeToString(sum[:4])
}

// ParseKernelDepends reads `apt-cache depends linux-image-amd64` output and
// returns the versioned linux-image-*-amd64 package it depends on.
func ParseKernelDepends(out []byte) (string, error) {
	for _, line := range strings.Split(string(out), "\n") {
		dep, ok := strings.CutPrefix(strings.TrimSpace(line), "Depends: ")
		if !ok {
			continue
		}
		dep = strings.TrimSpace(dep)
		if strings.HasPrefix(dep, "linux-image-") && strings.HasSuffix(dep, "-amd64") &&
			dep != metaPackage && isDebianName(dep) {
			return dep, nil
		}
	}
	return "", fmt.Errorf("apt-cache depends %s: no linux-image-*-amd64 dependency in %q", metaPackage, truncate(out, 200))
}

func truncate(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// GuestControllers are enabled in the guest's root cgroup.subtree_control,
// so tests can create child cgroups with every v2 interface file.
func GuestControllers() []string {
	return []string{"cpu", "memory", "io", "cpuset", "pids"}
}

// GuestRequire is SLUICE_REQUIRE inside the guest: the features the guest
// is built to have, so a test that would skip for their lack fails instead.
const GuestRequire = "root,cgroupv2,cgroupv2-controllers,psi,bpf"

// passedEnv are host variables copied into the guest when set.
var passedEnv = [...]string{"GOTRACEBACK", "GODEBUG"}

// GuestEnv is the test's environment in the guest, built from the host's
// (of which only GOTRACEBACK and GODEBUG pass: host paths mean nothing
// there).
func GuestEnv(hostEnv []string) []string {
	env := []string{
		"PATH=/bin:/sbin",
		"HOME=/root",
		"TMPDIR=/tmp",
		"SLUICE_IN_VM=1",
		"SLUICE_REQUIRE=" + GuestRequire,
	}
	for _, kv := range hostEnv {
		k, _, _ := strings.Cut(kv, "=")
		for _, p := range passedEnv {
			if k == p {
				env = append(env, kv)
			}
		}
	}
	return env
}

// Config is one `go test -exec` run.
type Config struct {
	// TestBinary and Args are what go test asked to run.
	TestBinary string
	Args       []string
	// PackageDir is the host directory go test ran the binary in; its
	// testdata/ (if any) is copied to the guest working directory.
	PackageDir string
	// Init is the static guest /init (test/vm/init built with
	// CGO_ENABLED=0 GOAMD64=v1).
	Init string
	// CacheDir holds fetched kernels.
	CacheDir string
	// Modules are loaded in the guest before the test (DefaultModules if nil).
	Modules []string
	// Busybox, if set, is a static busybox packed as /bin/busybox with a
	// link per applet, for tests that need a shell or dd in the guest.
	Busybox string
	// QEMU, MemoryMiB, CPUs size the machine (defaults:
	// qemu-system-x86_64, 1024, 2).
	QEMU      string
	MemoryMiB int
	CPUs      int
	// Env is the host environment GuestEnv filters.
	Env []string
	Out io.Writer
	Log *slog.Logger
}

// isDebianName reports whether s is a valid Debian package name
// (lower-case letters, digits, '.', '+', '-'): apt-cache also prints
// virtual packages as <name>, which cannot be downloaded.
func isDebianName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '+' || r == '-') {
			return false
		}
	}
	return s != ""
}
