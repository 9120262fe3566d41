package ebpf

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
)

// KeyModeFor picks the key mode for a host's cgroup layout: v1 cpu ids
// where CPU control is in v1 (legacy and hybrid hosts), v2 ids on unified
// hosts.
func KeyModeFor(l cgroupfs.Layout) KeyMode {
	if l.Mode() == cgroupfs.ModeV2 {
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

// CgroupIDFor returns the id of the cgroup at path rel (relative to each
// hierarchy root, e.g. "/sluice/online/x") in the hierarchy mode keys by:
// the v1 cpu hierarchy for KeyCgroupV1CPU, the cgroup2 hierarchy BPF sees
// (the root on v2, the unified mount on hybrid hosts) for KeyCgroupV2.
func CgroupIDFor(mode KeyMode, l cgroupfs.Layout, rel string) (uint64, error) {
	dir, ok := l.UnifiedDir(rel)
	if mode == KeyCgroupV1CPU {
		dir, ok = l.Dir(cgroupfs.CPU, rel)
	}
	if !ok {
		return 0, fmt.Errorf("cgroup id of %s keyed by %v: cgroup layout %v has no such hierarchy: %w", rel, mode, l, ErrNotSupported)
	}
	return CgroupID(dir)
}
