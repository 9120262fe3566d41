package cgroup_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/qos/cgroup"
	"github.com/sluicehq/sluice/test/kerneltest"
)

// Dir lists child cgroups and reads cgroup and /proc files as the kernel
// has them; a leaf is told by its link count without listing it, so
// ReadDir must still see a child the moment it is made.
func TestRealDirListsAndReads(t *testing.T) {
	root := kerneltest.RequireCgroupV1Controller(t, "cpu")
	name := kerneltest.UniqueName("sluice-dir")
	kerneltest.MakeCgroup(t, name+"/a", root)
	d := cgroup.Dir(root)

	for _, tc := range []struct {
		cg   string
		want []string
	}{{name, []string{"a"}}, {name + "/a", nil}} {
		got, err := d.ReadDir(tc.cg)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ReadDir(%s) = %q, %v; want %q", tc.cg, got, err, tc.want)
		}
	}
	if err := d.Mkdir(name + "/a/b"); err != nil {
		t.Fatal(err)
	}
	if got, err := d.ReadDir(name + "/a"); err != nil || !slices.Equal(got, []string{"b"}) {
		t.Errorf("ReadDir(%s/a) after making b = %q, %v; want [b]", name, got, err)
	}
	if _, err := d.ReadDir(name + "/gone"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadDir of a missing cgroup: %v, want fs.ErrNotExist", err)
	}

	if b, err := d.ReadFile(name + "/a/cpu.cfs_quota_us"); err != nil || strings.TrimSpace(string(b)) != "-1" {
		t.Errorf("ReadFile(cpu.cfs_quota_us) = %q, %v; want -1", b, err)
	}
	if _, err := d.ReadFile(name + "/gone/cpu.shares"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile in a missing cgroup: %v, want fs.ErrNotExist", err)
	}
	b, err := cgroup.Dir("/proc").ReadFile(strconv.Itoa(os.Getpid()) + "/status")
	if err != nil || !strings.Contains(string(b), "\nPid:\t"+strconv.Itoa(os.Getpid())+"\n") || len(b) < 512 {
		t.Errorf("ReadFile(/proc/self/status): %d bytes, %v; want the whole file (it is over 512 bytes)", len(b), err)
	}
}

// On an ordinary directory tree ReadDir lists subdirectories only.
func TestDirReadDirOrdinaryTree(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"x/y", "z"} {
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "x", "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d := cgroup.Dir(root)
	for cg, want := range map[string][]string{"/": {"x", "z"}, "/x": {"y"}, "/z": nil} {
		if got, err := d.ReadDir(cg); err != nil || !slices.Equal(got, want) {
			t.Errorf("ReadDir(%s) = %q, %v; want %q", cg, got, err, want)
		}
	}
}
