package sample

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Mode is how cgroups are mounted on a host.
type Mode int

const (
	// ModeUnknown is the zero Mode; no reader accepts it.
	ModeUnknown Mode = iota
	// ModeV1 is legacy mode: one v1 hierarchy per controller, no cgroup2.
	ModeV1
	// ModeHybrid is v1 controllers plus a controller-less cgroup2 at
	// <root>/unified (PSI, BPF attach). Resource accounting is v1.
	ModeHybrid
	// ModeV2 is the unified hierarchy mounted at the root.
	ModeV2
)

func (m Mode) String() string {
	switch m {
	case ModeV1:
		return "v1"
	case ModeHybrid:
		return "hybrid"
	case ModeV2:
		return "v2"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// DetectMode tells how cgroups are mounted under cgroupRoot (normally
// "/sys/fs/cgroup"). It is meant to be called once at start.
//
// containerd/cgroups/v3's Mode() gives the same answer on real hosts (a test
// checks it) but reads a fixed root and caches it process-wide, so it cannot
// look at a fake tree. The markers used here are as reliable: the kernel puts
// cgroup.controllers in every cgroup2 directory and in no v1 directory.
func DetectMode(cgroupRoot string) (Mode, error) {
	if exists(filepath.Join(cgroupRoot, "cgroup.controllers")) {
		return ModeV2, nil
	}
	if _, err := v1Hierarchy(cgroupRoot, "cpuacct"); err != nil {
		return ModeUnknown, fmt.Errorf("detect cgroup mode under %s: no cgroup2 mount and %w", cgroupRoot, err)
	}
	if exists(filepath.Join(cgroupRoot, "unified", "cgroup.controllers")) {
		return ModeHybrid, nil
	}
	return ModeV1, nil
}

// v1Hierarchy finds the mount of a v1 controller under root. Hosts mount cpu
// and cpuacct either apart (<root>/cpuacct, as on Sluice's CI) or together
// (<root>/cpu,cpuacct, usually with cpu and cpuacct symlinks to it), so any
// directory whose comma-separated name lists the controller will do.
func v1Hierarchy(root, controller string) (string, error) {
	dir := filepath.Join(root, controller)
	if exists(filepath.Join(dir, "cgroup.procs")) {
		return dir, nil
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return "", fmt.Errorf("find v1 %s hierarchy: %w", controller, err)
	}
	for _, e := range entries {
		for _, c := range strings.Split(e.Name(), ",") {
			d := filepath.Join(root, e.Name())
			if c == controller && exists(filepath.Join(d, "cgroup.procs")) {
				return d, nil
			}
		}
	}
	return "", fmt.Errorf("no v1 %s hierarchy under %s: %w", controller, root, fs.ErrNotExist)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
