package resctrl

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// FS is a resctrl mount as the enforcer sees it. Names are slash-separated
// paths relative to the mount root, e.g. "sluice-offline/schemata"; the
// default group's files are at the top ("schemata", "tasks").
//
// Contract: WriteFile never creates a file and issues exactly one write,
// because each write to a resctrl file is one command to the kernel (a
// schemata write is applied whole or not at all; a tasks write moves one
// task). Errors wrap the kernel's errno: errors.Is with syscall.EINVAL,
// ENOSPC, ESRCH, ENOENT, EEXIST. Safe for one goroutine at a time.
type FS interface {
	ReadFile(name string) ([]byte, error)
	WriteFile(name string, data []byte) error
	// Mkdir creates one group; an existing one is EEXIST, running out of
	// CLOSIDs is ENOSPC.
	Mkdir(name string) error
	// Remove removes one group; the kernel moves its tasks to the default
	// group.
	Remove(name string) error
	// ReadDir lists the directories in name ("" is the root).
	ReadDir(name string) ([]string, error)
}

// Dir is the FS of a resctrl mount at a host directory, e.g.
// Dir("/sys/fs/resctrl").
type Dir string

func (d Dir) path(name string) string { return filepath.Join(string(d), filepath.FromSlash(name)) }

// ReadFile implements FS.
func (d Dir) ReadFile(name string) ([]byte, error) { return os.ReadFile(d.path(name)) }

// WriteFile implements FS without O_CREATE: a missing file is ENOENT.
func (d Dir) WriteFile(name string, data []byte) error {
	f, err := os.OpenFile(d.path(name), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	return errors.Join(werr, f.Close())
}

// Mkdir implements FS.
func (d Dir) Mkdir(name string) error { return os.Mkdir(d.path(name), 0o755) }

// Remove implements FS.
func (d Dir) Remove(name string) error { return os.Remove(d.path(name)) }

// ReadDir implements FS.
func (d Dir) ReadDir(name string) ([]string, error) {
	ents, err := os.ReadDir(d.path(name))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() || e.Type()&fs.ModeSymlink != 0 {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out, nil
}
