package cgroup_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup"
	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
	"github.com/sluicehq/sluice/qos/cgroup/cgrouptest"
)

func TestNewValidatesConfig(t *testing.T) {
	v2 := detect(t, cgrouptest.NewHost(t, cgrouptest.Unified, cgrouptest.Options{}))
	for _, c := range []struct {
		cfg    cgroup.Config
		layout cgroupfs.Layout
		want   string
	}{
		{cgroup.Config{}, v2, `offline parent "": want a cgroup below the root`},
		{cgroup.Config{OfflineParent: "/"}, v2, `offline parent "/"`},
		{cgroup.Config{OfflineParent: "/x", CPUPeriod: 1}, v2, "cpu period 1ns: the kernel accepts 1ms to 1s"},
		{cgroup.Config{OfflineParent: "/x"}, cgroupfs.Layout{}, "no cgroup hierarchy detected"},
	} {
		_, err := cgroup.New(c.cfg, c.layout)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v, %v) = %v, want %q", c.cfg, c.layout, err, c.want)
		}
	}
}

func detect(t *testing.T, h *cgrouptest.Host) cgroupfs.Layout {
	t.Helper()
	l, err := cgroupfs.Detect(h.Root)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// New drives the hierarchies the layout names: on every v1 variant the
// offline parent's quota lands in the cpu hierarchy (co-mounted or not)
// and its limit in the memory hierarchy.
func TestNewFollowsLayout(t *testing.T) {
	for _, variant := range []cgrouptest.HostVariant{cgrouptest.V1Split, cgrouptest.V1Combined, cgrouptest.Hybrid} {
		t.Run(string(variant), func(t *testing.T) {
			h := cgrouptest.NewHost(t, variant, cgrouptest.Options{})
			for _, fake := range []*cgrouptest.V1{h.CPU, h.Memory} {
				for _, cg := range []string{"/sluice", "/sluice/offline"} {
					if err := fake.Mkdir(cg); err != nil {
						t.Fatal(err)
					}
				}
			}
			e, err := cgroup.New(cgroup.Config{OfflineParent: "/sluice/offline", PageSize: 4096}, detect(t, h))
			if err != nil {
				t.Fatal(err)
			}
			if e.Mode() != cgroupfs.ModeV1 {
				t.Errorf("mode %v, want v1", e.Mode())
			}
			for _, r := range e.Apply(context.Background(), plan(500, 0, 1<<30)) {
				if r.Status != qos.ResultApplied {
					t.Errorf("%+v", r)
				}
			}
			if q, _ := h.CPU.ReadFile("/sluice/offline/cpu.cfs_quota_us"); string(q) != "50000\n" {
				t.Errorf("cpu.cfs_quota_us %q, want 50000", q)
			}
			if m, _ := h.Memory.ReadFile("/sluice/offline/memory.limit_in_bytes"); string(m) != "1073741824\n" {
				t.Errorf("memory.limit_in_bytes %q, want 1073741824", m)
			}
		})
	}
	e, err := cgroup.New(cgroup.Config{OfflineParent: "/sluice/offline"}, detect(t, cgrouptest.NewHost(t, cgrouptest.Unified, cgrouptest.Options{})))
	if err != nil || e.Mode() != cgroupfs.ModeV2 {
		t.Fatalf("New on v2: %v, %v", e, err)
	}
}

func TestNewV1WithoutCpusetHierarchyReportsUnsupported(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"cpu", "memory"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, d, "cgroup.procs"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := cgroupfs.Detect(root)
	if err != nil {
		t.Fatal(err)
	}
	e, err := cgroup.New(cgroup.Config{OfflineParent: "/sluice/offline"}, l)
	if err != nil {
		t.Fatal(err)
	}
	got := e.Apply(context.Background(), qos.Plan{Cpusets: []qos.CpusetIntent{{CgroupPath: "/web", CPUs: []int{1}, Reason: pooled}}})
	if len(got) != 1 || got[0].Status != qos.ResultUnsupported || got[0].Target != "/web" {
		t.Fatalf("results %+v", got)
	}
	if e.Mode() != cgroupfs.ModeV1 {
		t.Errorf("mode %s", e.Mode())
	}
}

func TestApplyAdoptsPlanOfflineParent(t *testing.T) {
	tree, e := newFakeV2(t, cgrouptest.Options{})
	p := plan(500, 0, 1<<30)
	p.OfflineParent = "/kubepods/besteffort"
	got := e.Apply(context.Background(), p)
	if got[0].Target != "/kubepods/besteffort" || got[0].Status != qos.ResultApplied {
		t.Fatalf("results %+v", got)
	}
	if r := tree.Render(); !strings.Contains(r, "/kubepods/besteffort\n") {
		t.Errorf("parent not created:\n%s", r)
	}
	if s, err := e.Current(context.Background()); err != nil || s.CPUBudgetMilli != 500 {
		t.Errorf("Current of the adopted parent = %+v, %v", s, err)
	}
	p.OfflineParent = "/"
	if got := e.Apply(context.Background(), p); got[0].Status != qos.ResultFailed || !strings.Contains(got[0].Err, "below the root") {
		t.Errorf("root as offline parent: %+v", got)
	}
}
