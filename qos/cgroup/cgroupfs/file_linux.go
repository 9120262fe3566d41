package cgroupfs

import (
	"io"
	"io/fs"

	"golang.org/x/sys/unix"
)

// ReadFile reads a small kernel-generated file (a cgroup, /proc or /sys
// file) with plain system calls. os.ReadFile costs an *os.File, an fstat,
// and for cgroup files (which kernfs makes pollable) a registration with
// the runtime's epoll and its removal at close: the agent reads hundreds
// of cgroup files per pass with a hundred containers. Errors are
// *fs.PathError wrapping the errno.
func ReadFile(path string) ([]byte, error) {
	return ReadFileInto(path, make([]byte, 0, 512))
}

// ReadFileInto is ReadFile into buf (from its length on), growing buf if
// needed, so a caller reading every tick can reuse one buffer.
func ReadFileInto(path string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, max(cap(buf), 512))...)[:len(buf)]
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

// NoSubdirs reports whether path is a directory whose link count says it
// has no subdirectories: kernfs, like most Unix file systems, counts 2 plus
// one per subdirectory (kernfs_refresh_inode), so a leaf cgroup can be
// told by one stat instead of listing its dozens of control files. A count
// other than 2 (btrfs and overlayfs say 1) proves nothing and returns
// false, as find(1) does without -noleaf.
func NoSubdirs(path string) bool {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Nlink == 2
}

// OnCgroupfs reports whether dir is on a cgroup (v1) or cgroup2 mount,
// rather than a fixture tree on a disk file system.
func OnCgroupfs(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Type == unix.CGROUP_SUPER_MAGIC || st.Type == unix.CGROUP2_SUPER_MAGIC
}

// WriteFile writes data to an existing kernel file (never creating one)
// with one write(2), as ReadFile reads: without an *os.File, whose
// registration of a pollable cgroup file with the runtime's epoll and its
// removal cost four more system calls than the write itself. A write the
// kernel takes only in part is io.ErrShortWrite. Errors are *fs.PathError
// wrapping the errno.
func WriteFile(path string, data []byte) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	for {
		n, err := unix.Write(fd, data)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "write", Path: path, Err: err}
		}
		if n < len(data) {
			return &fs.PathError{Op: "write", Path: path, Err: io.ErrShortWrite}
		}
		return nil
	}
}
