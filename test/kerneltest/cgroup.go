package kerneltest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The cgroup helpers below take absolute mount roots (as returned by
// RequireCgroupV1Controller, RequireCgroupV2 and RequireCgroupV2Controllers)
// and a cgroup path relative to them ("/sluice-x/offline" or
// "sluice-x/offline"), so one call serves v1 hierarchies, the hybrid unified
// mount and a pure v2 host alike.

// UniqueName returns prefix-<pid>-<8 random hex digits>: a cgroup name no
// other test run on the host uses, and whose pid says which run left it
// behind if a cleanup ever fails.
func UniqueName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return prefix + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}

// MakeCgroup creates the cgroup rel under every root, with any missing
// parents, and returns its directory under each root in the order given.
// rel itself must not exist yet: a test only ever owns cgroups it made.
// Roots that are the same directory (cpu and cpuacct co-mounted) are
// created once. For each root it registers a t.Cleanup that removes the
// topmost directory it created, with everything below it (see RemoveTree);
// register processes after the cgroup so that their own cleanup, which runs
// first, has stopped them.
func MakeCgroup(t testing.TB, rel string, roots ...string) []string {
	t.Helper()
	clean := relPath(t, rel)
	dirs := make([]string, 0, len(roots))
	var seen []string
	for _, root := range roots {
		dir := filepath.Join(root, clean)
		dirs = append(dirs, dir)
		real, err := filepath.EvalSymlinks(root)
		if err != nil {
			t.Fatalf("cgroup root %s: %v", root, err)
		}
		if slices.Contains(seen, real) {
			continue
		}
		seen = append(seen, real)
		if _, err := os.Lstat(dir); err == nil {
			t.Fatalf("make cgroup %s: already exists (not this test's)", dir)
		}
		// The topmost missing component is what this call creates and so
		// what its cleanup may remove.
		top := root
		for _, part := range strings.Split(clean, string(filepath.Separator)) {
			top = filepath.Join(top, part)
			if _, err := os.Lstat(top); errors.Is(err, fs.ErrNotExist) {
				break
			}
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("make cgroup: %v", err)
		}
		t.Cleanup(func() { RemoveTree(t, top) })
	}
	return dirs
}

// CleanupCgroup registers a t.Cleanup that removes the cgroup rel, and
// everything below it, under every root: for a cgroup the code under test
// creates (an enforcer's offline parent) inside a unique name the test
// chose. It creates nothing.
func CleanupCgroup(t testing.TB, rel string, roots ...string) {
	t.Helper()
	clean := relPath(t, rel)
	for _, root := range roots {
		t.Cleanup(func() { RemoveTree(t, filepath.Join(root, clean)) })
	}
}

// RemoveTree removes the cgroup dir and its descendants deepest first,
// SIGKILLing any task still in one on the way (see killProcs), and
// retrying rmdir for up to 2 s per cgroup, because a killed task leaves its
// cgroup a moment after it dies (EBUSY until then). A dir that does not
// exist is already removed. It reports, with t.Errorf, a cgroup it could
// not remove, and refuses to touch a hierarchy's mount root.
func RemoveTree(t testing.TB, dir string) {
	t.Helper()
	dir = filepath.Clean(dir)
	if isMountRoot(dir) {
		t.Errorf("remove cgroup tree %s: refusing a hierarchy's root", dir)
		return
	}
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil // a cgroup vanishing mid-walk is no error
	})
	slices.Reverse(dirs) // lexical walk order puts parents before children
	for _, d := range dirs {
		var err error
		for range 100 {
			killProcs(d)
			if err = os.Remove(d); err == nil || errors.Is(err, fs.ErrNotExist) {
				err = nil
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("remove cgroup: %v", err)
		}
	}
}

// ReadCgroupFile returns the content of a cgroup (or proc) file with the
// trailing newline trimmed, failing the test if it cannot be read.
func ReadCgroupFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// ReadCgroupInt reads a cgroup file holding one decimal integer
// (cpuacct.usage, cpu.cfs_quota_us, memory.current...), failing the test
// on a read error or other content.
func ReadCgroupInt(t testing.TB, path string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(ReadCgroupFile(t, path), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

// ReadCgroupKey reads key's integer value from a flat keyed cgroup file
// ("key value" lines: cpu.stat, memory.events...), failing the test on a
// read error, a missing key or a value that is not an integer.
func ReadCgroupKey(t testing.TB, path, key string) int64 {
	t.Helper()
	for _, line := range strings.Split(ReadCgroupFile(t, path), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("%s: %s %q: %v", path, key, v, err)
			}
			return n
		}
	}
	t.Fatalf("%s: no %s", path, key)
	return 0
}

// WriteCgroupFile writes value to a cgroup file in one write (cgroup files
// take one value a write), failing the test with the file and value on error.
func WriteCgroupFile(t testing.TB, path, value string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(value), 0); err != nil {
		t.Fatalf("write %q to %s: %v", value, path, err)
	}
}

// relPath cleans a cgroup path relative to a mount root and fails the test
// on one that names the root itself or leaves it: removing either would
// touch cgroups the test did not create.
func relPath(t testing.TB, rel string) string {
	t.Helper()
	clean := filepath.Clean(strings.TrimLeft(rel, "/"))
	if clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
		t.Fatalf("cgroup path %q: must name a cgroup below the mount root", rel)
	}
	return clean
}

// killProcs SIGKILLs every task in the cgroup dir: through cgroup.kill
// where the kernel has it (v2, 5.14+: it also catches tasks forking while
// cgroup.procs is read), else through each pid listed in cgroup.procs.
func killProcs(dir string) {
	if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0); err == nil {
		return
	}
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// isMountRoot reports whether dir is a mount point (a cgroup hierarchy's
// root): its device differs from its parent's.
func isMountRoot(dir string) bool {
	var st, parent syscall.Stat_t
	if syscall.Stat(dir, &st) != nil || syscall.Stat(filepath.Dir(dir), &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev || dir == "/"
}

// UniqueCgroup returns "/"+UniqueName(prefix), a cgroup path that exists
// under none of the roots yet, and registers CleanupCgroup for it under
// every root: for tests whose code under test creates the cgroups inside.
func UniqueCgroup(t testing.TB, prefix string, roots ...string) string {
	t.Helper()
	rel := "/" + UniqueName(prefix)
	CleanupCgroup(t, rel, roots...)
	return rel
}
