package ebpf

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/cgroups/v3"
	"golang.org/x/sys/unix"
)

// KeyModeFor picks the key mode for a host's cgroup mode: v1 cpu ids where
// CPU control is in v1 (legacy and hybrid hosts), v2 ids on unified hosts.
func KeyModeFor(mode cgroups.CGMode) KeyMode {
	if mode == cgroups.Unified {
		return KeyCgroupV2
	}
	return KeyCgroupV1CPU
}

// CgroupID returns the id the programs use for the cgroup directory dir:
// its inode number. The kernel's cgroup id is its kernfs node id, which on
// 64-bit kernels (5.5+) is the inode number of the directory, in v1 and v2
// alike.
func CgroupID(dir string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return 0, fmt.Errorf("cgroup id of %s: %w", dir, &os.PathError{Op: "stat", Path: dir, Err: err})
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return 0, fmt.Errorf("cgroup id of %s: not a directory", dir)
	}
	return st.Ino, nil
}

// HierarchyDir returns the directory whose subdirectories mode keys by,
// for the cgroup file system mounted at cgroupRoot (normally
// /sys/fs/cgroup): <root>/cpu for KeyCgroupV1CPU; for KeyCgroupV2,
// <root>/unified on hybrid hosts and <root> itself on unified ones.
func HierarchyDir(mode KeyMode, cgroupRoot string) string {
	if mode == KeyCgroupV1CPU {
		return filepath.Join(cgroupRoot, "cpu")
	}
	unified := filepath.Join(cgroupRoot, "unified")
	if _, err := os.Stat(filepath.Join(unified, "cgroup.controllers")); err == nil {
		return unified
	}
	return cgroupRoot
}

// CgroupIDFor returns the id of the cgroup at path rel (relative to each
// hierarchy root, e.g. "/sluice/online/x") in the hierarchy mode keys by.
func CgroupIDFor(mode KeyMode, cgroupRoot, rel string) (uint64, error) {
	return CgroupID(filepath.Join(HierarchyDir(mode, cgroupRoot), rel))
}
