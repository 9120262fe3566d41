package cgroup

import (
	"io/fs"

	"golang.org/x/sys/unix"
)

// readKernelFile reads a small kernel-generated file with plain system
// calls. os.ReadFile costs an *os.File, an fstat, and for cgroup files
// (which kernfs makes pollable) a registration with the runtime's epoll
// and its removal at close: with a hundred offline cgroups the enforcer
// reads hundreds of cgroup.procs and oom_score_adj files per pass.
func readKernelFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, cap(buf))...)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// noSubdirs reports whether path is a directory whose link count says it
// has no subdirectories: kernfs, like most Unix file systems, counts 2 plus
// one per subdirectory (kernfs_refresh_inode), so a leaf cgroup can be
// told by one stat instead of listing its dozens of control files. A count
// other than 2 (btrfs and overlayfs say 1) proves nothing and returns
// false, as find(1) does without -noleaf.
func noSubdirs(path string) bool {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Nlink == 2
}
