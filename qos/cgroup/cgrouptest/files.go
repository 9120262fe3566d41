package cgrouptest

import (
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
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

func newFiles(t testing.TB) files {
	return files{dir: t.TempDir(), reject: map[string]error{}}
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
