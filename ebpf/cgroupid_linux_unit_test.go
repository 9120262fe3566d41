package ebpf

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
	"github.com/sluicehq/sluice/qos/cgroup/cgrouptest"
)

// The key mode and the directory an id is read from follow the detected
// layout: v1 cpu ids (co-mounted or not) on v1 and hybrid hosts, v2 ids
// from the unified mount on hybrid hosts and from the root on v2.
func TestKeyModeAndCgroupIDForLayouts(t *testing.T) {
	for _, tc := range []struct {
		variant    cgrouptest.HostVariant
		key        KeyMode
		cpuDir     string // where a v1 cpu id is read, relative to the root
		unifiedDir string // where a v2 id is read; "" for none
	}{
		{cgrouptest.V1Split, KeyCgroupV1CPU, "cpu", ""},
		{cgrouptest.V1Combined, KeyCgroupV1CPU, "cpu,cpuacct", ""},
		{cgrouptest.Hybrid, KeyCgroupV1CPU, "cpu", "unified"},
		{cgrouptest.Unified, KeyCgroupV2, ".", "."},
	} {
		t.Run(string(tc.variant), func(t *testing.T) {
			h := cgrouptest.NewHost(t, tc.variant, cgrouptest.Options{})
			l, err := cgroupfs.Detect(h.Root)
			if err != nil {
				t.Fatal(err)
			}
			if got := KeyModeFor(l); got != tc.key {
				t.Errorf("KeyModeFor = %v, want %v", got, tc.key)
			}
			for _, c := range []struct {
				mode KeyMode
				dir  string
			}{{KeyCgroupV1CPU, tc.cpuDir}, {KeyCgroupV2, tc.unifiedDir}} {
				if c.mode == KeyCgroupV1CPU && tc.variant == cgrouptest.Unified {
					continue // a v2 host's "cpu hierarchy" is the root: same id
				}
				got, err := CgroupIDFor(c.mode, l, "/a/b")
				if c.dir == "" {
					if !errors.Is(err, ErrNotSupported) {
						t.Errorf("CgroupIDFor(%v) = %d, %v; want ErrNotSupported", c.mode, got, err)
					}
					continue
				}
				sub := filepath.Join(h.Root, c.dir, "a", "b")
				if err := os.MkdirAll(sub, 0o755); err != nil {
					t.Fatal(err)
				}
				want, err := CgroupID(sub)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := CgroupIDFor(c.mode, l, "/a/b"); err != nil || got != want {
					t.Errorf("CgroupIDFor(%v, /a/b) = %d, %v; want %d (%s)", c.mode, got, err, want, sub)
				}
			}
		})
	}
}
