package capability_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/agent/capability"
	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
	"github.com/sluicehq/sluice/qos/cgroup/cgrouptest"
)

func write(t *testing.T, name, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakeProc makes a /proc with or without PSI and resctrl support.
func fakeProc(t *testing.T, psi, resctrl bool) string {
	proc := t.TempDir()
	if psi {
		for _, r := range []string{"cpu", "memory", "io"} {
			write(t, filepath.Join(proc, "pressure", r), "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
		}
	}
	fs := "nodev\tsysfs\nnodev\tcgroup\nnodev\tcgroup2\n\text4\n"
	if resctrl {
		fs += "nodev\tresctrl\n"
	}
	write(t, filepath.Join(proc, "filesystems"), fs)
	return proc
}

func TestProbeFakeHosts(t *testing.T) {
	hybrid := cgrouptest.NewHost(t, cgrouptest.Hybrid, cgrouptest.Options{})
	v2 := cgrouptest.NewHost(t, cgrouptest.Unified, cgrouptest.Options{})
	mounted := t.TempDir()
	if err := os.Mkdir(filepath.Join(mounted, "info"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                      string
		roots                     capability.Roots
		mode                      cgroupfs.Mode
		psi, resctrlSup, resctrlM bool
	}{
		{"hybrid, psi, resctrl known", capability.Roots{Cgroup: hybrid.Root, Proc: fakeProc(t, true, true), Resctrl: t.TempDir()}, cgroupfs.ModeHybrid, true, true, false},
		{"v2, no psi, resctrl mounted", capability.Roots{Cgroup: v2.Root, Proc: fakeProc(t, false, false), Resctrl: mounted}, cgroupfs.ModeV2, false, true, true},
		{"no cgroups", capability.Roots{Cgroup: t.TempDir(), Proc: fakeProc(t, false, false), Resctrl: t.TempDir()}, cgroupfs.ModeUnknown, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := capability.Probe(context.Background(), tc.roots)
			if c.Cgroup.Mode() != tc.mode {
				t.Errorf("cgroup mode %v, want %v", c.Cgroup.Mode(), tc.mode)
			}
			if (c.CgroupErr != "") != (tc.mode == cgroupfs.ModeUnknown) {
				t.Errorf("cgroup error %q", c.CgroupErr)
			}
			if tc.mode != cgroupfs.ModeUnknown && !slices.Contains(c.Controllers, cgroupfs.Memory) {
				t.Errorf("controllers %v: want memory", c.Controllers)
			}
			if c.PSI != tc.psi || (c.PSIErr == "") != tc.psi {
				t.Errorf("psi %v (%q), want %v", c.PSI, c.PSIErr, tc.psi)
			}
			if c.Resctrl.Supported != tc.resctrlSup || c.Resctrl.Mounted != tc.resctrlM {
				t.Errorf("resctrl %+v, want supported %v mounted %v", c.Resctrl, tc.resctrlSup, tc.resctrlM)
			}
			if c.TC.Probed || len(c.TC.Qdiscs) > 0 {
				t.Errorf("tc %+v: nothing probes tc yet", c.TC)
			}
			// BPF is the real kernel's: usable exactly when no error.
			if c.BPFUsable == (c.BPFErr != "") {
				t.Errorf("bpf usable %v with error %q", c.BPFUsable, c.BPFErr)
			}
			b, err := json.Marshal(c)
			if err != nil || !strings.Contains(string(b), `"cgroup":"`+tc.mode.String()) {
				t.Errorf("json %s, %v", b, err)
			}
		})
	}
}

func TestProbeCancelledSkipsBPF(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := capability.Probe(ctx, capability.Roots{Cgroup: t.TempDir(), Proc: t.TempDir(), Resctrl: t.TempDir()})
	if c.BPFUsable || !strings.Contains(c.BPFErr, "not probed") {
		t.Errorf("cancelled probe: bpf %v %q", c.BPFUsable, c.BPFErr)
	}
}
