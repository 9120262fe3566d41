package cgroup_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup"
	"github.com/sluicehq/sluice/qos/cgroup/cgrouptest"
)

func TestNewValidatesConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  cgroup.Config
		mode cgroup.Mode
		want string
	}{
		{cgroup.Config{}, cgroup.ModeV2, `offline parent "": want a cgroup below the root`},
		{cgroup.Config{OfflineParent: "/"}, cgroup.ModeV2, `offline parent "/"`},
		{cgroup.Config{OfflineParent: "/x", CPUPeriod: 1}, cgroup.ModeV2, "cpu period 1ns: the kernel accepts 1ms to 1s"},
		{cgroup.Config{OfflineParent: "/x"}, "v3", `cgroup mode "v3": want v1 or v2`},
	} {
		_, err := cgroup.New(c.cfg, c.mode, t.TempDir())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v, %s) = %v, want %q", c.cfg, c.mode, err, c.want)
		}
	}
}

func TestNewV1WithoutCpusetHierarchyReportsUnsupported(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"cpu", "memory"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e, err := cgroup.New(cgroup.Config{OfflineParent: "/sluice/offline"}, cgroup.ModeV1, root)
	if err != nil {
		t.Fatal(err)
	}
	got := e.Apply(context.Background(), qos.Plan{Cpusets: []qos.CpusetIntent{{CgroupPath: "/web", CPUs: []int{1}, Reason: pooled}}})
	if len(got) != 1 || got[0].Status != qos.ResultUnsupported || got[0].Target != "/web" {
		t.Fatalf("results %+v", got)
	}
	if e.Mode() != cgroup.ModeV1 {
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
