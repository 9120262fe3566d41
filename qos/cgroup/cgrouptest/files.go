package cgrouptest

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// files is a fake hierarchy's storage and what both versions share around
// it: one host directory per cgroup and one host file per cgroup file (so
// a failing test can be inspected), the lock that serialises the enforcer's
// calls, the log of every write and the writes a test makes fail.
type files struct {
	dir string

	mu     sync.Mutex
	writes []Write
	reject map[string]error
}

// newFilesAt keeps a hierarchy's files in dir, an existing directory.
func newFilesAt(dir string) files {
	return files{dir: dir, reject: map[string]error{}}
}

// Reject makes every later write to name fail with err (an LSM, a
// read-only bind mount...), to test that one failure does not stop others.
func (f *files) Reject(name string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reject[path.Clean(name)] = err
}

// Writes returns the write log.
func (f *files) Writes() []Write {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.writes)
}

// ResetWrites clears the write log.
func (f *files) ResetWrites() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = nil
}

// ReadDir implements the enforcer's FS.
func (f *files) ReadDir(name string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.children(path.Clean("/" + name))
}

// logWrite runs one write of the enforcer's FS under the lock: write gets
// the clean path and the value without surrounding blanks (as the kernel's
// parsers strip them), and the attempt is logged with its result.
func (f *files) logWrite(name string, data []byte, write func(name, v string) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	name = path.Clean("/" + name)
	err := write(name, strings.TrimSpace(string(data)))
	f.writes = append(f.writes, Write{Path: name, Value: string(data), Err: err})
	if err != nil {
		return perr("write", name, err)
	}
	return nil
}

// read is ReadFile of both versions for a clean path: the value followed by
// a newline, as the kernel prints it. The caller holds the lock.
func (f *files) read(name string) ([]byte, error) {
	if !f.hasFile(name) {
		return nil, perr("open", name, syscall.ENOENT)
	}
	return []byte(f.get(name) + "\n"), nil
}

// mkdir creates cgroup cg's directory as the enforcer's FS does: a missing
// parent is ENOENT (as the kernel says), an existing cgroup is no error
// (the real FS ignores EEXIST) and is not created again. The caller holds the lock and fills a created cgroup's files.
func (f *files) mkdir(cg string) (created bool, err error) {
	if f.isDir(cg) {
		return false, nil
	}
	if !f.isDir(path.Dir(cg)) {
		return false, perr("mkdir", cg, syscall.ENOENT)
	}
	if err := os.Mkdir(f.host(cg), 0o755); err != nil {
		return false, err
	}
	return true, nil
}

// render prints every cgroup and its files but those hidden names as
// text, sorted, one "  file: value" line per file with the value's
// newlines folded. The caller holds the lock.
func (f *files) render(hidden func(file string) bool) string {
	var b strings.Builder
	_ = filepath.WalkDir(f.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(f.dir, p)
		cg := path.Clean("/" + filepath.ToSlash(rel))
		fmt.Fprintf(&b, "%s\n", cg)
		ents, _ := os.ReadDir(p)
		for _, e := range ents {
			if e.IsDir() || hidden(e.Name()) {
				continue
			}
			fmt.Fprintf(&b, "  %s: %s\n", e.Name(), strings.ReplaceAll(f.get(path.Join(cg, e.Name())), "\n", " "))
		}
		return nil
	})
	return b.String()
}

func (f *files) host(name string) string {
	return filepath.Join(f.dir, filepath.FromSlash(path.Clean("/"+name)))
}

func (f *files) put(name, v string) {
	if err := os.WriteFile(f.host(name), []byte(v), 0o644); err != nil {
		panic(err) // the temp dir is ours: failing here is a broken test machine
	}
}

func (f *files) get(name string) string {
	b, _ := os.ReadFile(f.host(name))
	return string(b)
}

func (f *files) isDir(cg string) bool {
	st, err := os.Stat(f.host(cg))
	return err == nil && st.IsDir()
}

func (f *files) hasFile(name string) bool {
	st, err := os.Stat(f.host(name))
	return err == nil && !st.IsDir()
}

func (f *files) children(cg string) ([]string, error) {
	ents, err := os.ReadDir(f.host(cg))
	if err != nil {
		return nil, perr("open", cg, syscall.ENOENT)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func perr(op, name string, err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }
