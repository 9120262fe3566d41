package cgroupfs

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// ErrnoOf strips *fs.PathError so messages name the cgroup and file once,
// in the project's form ("cgroup /x: write cpu.max: invalid argument"),
// while errors.Is still sees the errno.
func ErrnoOf(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// IsGone reports whether err means the cgroup or process no longer exists
// (a container exited between sampling and acting): ENOENT, ESRCH, or
// ENODEV from a file whose cgroup was removed after it was opened.
func IsGone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) || errors.Is(err, syscall.ENODEV)
}

// Exists reports whether a host path exists.
func Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Lister lists a cgroup's children; cgroup.FS and its fakes implement it.
type Lister interface {
	ReadDir(name string) ([]string, error)
}

// CgroupExists reports whether cgroup cg (a path relative to fsys's
// hierarchy root) exists in fsys.
func CgroupExists(fsys Lister, cg string) bool {
	_, err := fsys.ReadDir(cg)
	return err == nil
}
