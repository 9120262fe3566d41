package cgroup

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
)

// FS is one cgroup hierarchy (or /proc) as the enforcer sees it. Names are
// slash-separated paths relative to the hierarchy root, e.g.
// "/sluice/offline/cpu.max".
//
// Contract: WriteFile never creates a file (cgroup files exist or the
// controller is not there) and issues one write, because each write to a
// cgroup file is one command to the kernel. Errors wrap the kernel's errno
// (use errors.Is with syscall.ENOENT, syscall.EINVAL, syscall.EBUSY...).
// Implementations must be safe for use by one goroutine at a time.
type FS interface {
	ReadFile(name string) ([]byte, error)
	WriteFile(name string, data []byte) error
	// Mkdir creates one cgroup; an existing one is not an error.
	Mkdir(name string) error
	// ReadDir lists the child cgroups (directories) of name.
	ReadDir(name string) ([]string, error)
}

// NoteFS is an FS that can also keep a short note on a cgroup itself: an
// extended attribute of the cgroup's directory in the kernel's trusted
// namespace (kernfs offers it on v1 and v2 hierarchies to CAP_SYS_ADMIN).
// A note lives and dies with its cgroup, so what the enforcer must
// remember about a cgroup survives an agent restart without a state file
// that could go stale. ReadNote of a missing note is ENODATA; a hierarchy
// without extended attributes says EOPNOTSUPP.
type NoteFS interface {
	FS
	ReadNote(cgroup, name string) ([]byte, error)
	WriteNote(cgroup, name string, data []byte) error
	RemoveNote(cgroup, name string) error
}

// Dir is the FS of a mounted hierarchy rooted at a host directory, e.g.
// Dir("/sys/fs/cgroup/cpu") or Dir("/proc").
type Dir string

// ReadFile implements FS.
func (d Dir) ReadFile(name string) ([]byte, error) {
	return cgroupfs.ReadFile(d.path(name))
}

// WriteFile implements FS without O_CREATE: a missing file is ENOENT, as
// the kernel would say, never a new regular file in a cgroup directory.
func (d Dir) WriteFile(name string, data []byte) error {
	return cgroupfs.WriteFile(d.path(name), data)
}

// Mkdir implements FS.
func (d Dir) Mkdir(name string) error {
	err := os.Mkdir(d.path(name), 0o755)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	return err
}

// ReadDir implements FS.
func (d Dir) ReadDir(name string) ([]string, error) {
	p := d.path(name)
	if cgroupfs.NoSubdirs(p) {
		return nil, nil
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// ReadNote implements NoteFS.
func (d Dir) ReadNote(cgroup, name string) ([]byte, error) {
	buf := make([]byte, 256) // notes are a few numbers
	n, err := unix.Getxattr(d.path(cgroup), name, buf)
	if err != nil {
		return nil, &fs.PathError{Op: "getxattr " + name, Path: d.path(cgroup), Err: err}
	}
	return buf[:n], nil
}

// WriteNote implements NoteFS.
func (d Dir) WriteNote(cgroup, name string, data []byte) error {
	if err := unix.Setxattr(d.path(cgroup), name, data, 0); err != nil {
		return &fs.PathError{Op: "setxattr " + name, Path: d.path(cgroup), Err: err}
	}
	return nil
}

// RemoveNote implements NoteFS.
func (d Dir) RemoveNote(cgroup, name string) error {
	if err := unix.Removexattr(d.path(cgroup), name); err != nil {
		return &fs.PathError{Op: "removexattr " + name, Path: d.path(cgroup), Err: err}
	}
	return nil
}

func (d Dir) path(name string) string {
	return filepath.Join(string(d), filepath.FromSlash(path.Clean("/"+name)))
}
