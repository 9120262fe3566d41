package ebpf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/cgroups/v3"
)

func TestKeyModeFor(t *testing.T) {
	for mode, want := range map[cgroups.CGMode]KeyMode{
		cgroups.Legacy:  KeyCgroupV1CPU,
		cgroups.Hybrid:  KeyCgroupV1CPU,
		cgroups.Unified: KeyCgroupV2,
	} {
		if got := KeyModeFor(mode); got != want {
			t.Errorf("KeyModeFor(%v) = %v, want %v", mode, got, want)
		}
	}
}

func TestHierarchyDir(t *testing.T) {
	hybrid := t.TempDir()
	if err := os.MkdirAll(filepath.Join(hybrid, "unified"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hybrid, "unified", "cgroup.controllers"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	unified := t.TempDir()
	for _, tc := range []struct {
		mode KeyMode
		root string
		want string
	}{
		{KeyCgroupV1CPU, hybrid, filepath.Join(hybrid, "cpu")},
		{KeyCgroupV2, hybrid, filepath.Join(hybrid, "unified")},
		{KeyCgroupV2, unified, unified},
	} {
		if got := HierarchyDir(tc.mode, tc.root); got != tc.want {
			t.Errorf("HierarchyDir(%v, %s) = %s, want %s", tc.mode, tc.root, got, tc.want)
		}
	}
	sub := filepath.Join(hybrid, "unified", "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	want, err := CgroupID(sub)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := CgroupIDFor(KeyCgroupV2, hybrid, "/a/b"); err != nil || got != want {
		t.Errorf("CgroupIDFor(v2, /a/b) = %d, %v; want %d", got, err, want)
	}
}
