package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/test/kerneltest"
)

// TestTreeOnRealKernel makes the benchmark's subtree in the real v1
// hierarchies and checks the knobs each condition relies on, that a
// command joins its cgroups before it execs, and that cleanup leaves
// nothing behind.
func TestTreeOnRealKernel(t *testing.T) {
	for _, c := range v1Controllers {
		kerneltest.RequireCgroupV1Controller(t, c)
	}
	tr := tree{root: kerneltest.CgroupV1Root, base: "/" + kerneltest.UniqueName("sluice-colo-test")}
	t.Cleanup(func() {
		if err := tr.killAll(5 * time.Second); err != nil {
			t.Error(err)
		}
		if err := tr.remove(); err != nil {
			t.Error(err)
		}
		for _, c := range v1Controllers {
			if _, err := os.Stat(filepath.Join(tr.root, c, tr.base)); !os.IsNotExist(err) {
				t.Errorf("%s%s left behind (%v)", c, tr.base, err)
			}
		}
	})
	if err := tr.create(); err != nil {
		t.Fatal(err)
	}
	read := func(ctrl, cg, file string) string {
		return strings.TrimSpace(kerneltest.ReadCgroupFile(t, filepath.Join(tr.root, ctrl, cg, file)))
	}
	if got := read("cpu", tr.loadgen(), "cpu.shares"); got != "10240" {
		t.Errorf("loadgen cpu.shares %s, want 10240", got)
	}
	if got := read("cpu", tr.spinner(), "cpu.idle"); got != "1" {
		t.Errorf("spinner cpu.idle %s, want 1", got)
	}
	// koordinator-like, then cpu-idle-only, then back to neutral: the
	// kernel refuses cpu.shares on an idle group, so order matters.
	for _, m := range []struct {
		shares       string
		idle         bool
		wantShares   string
		wantIdleFlag string
	}{{"2", false, "2", "0"}, {"1024", true, "", "1"}, {"1024", false, "1024", "0"}} {
		if err := tr.offlineMode(m.shares, m.idle); err != nil {
			t.Fatalf("offlineMode(%s, %v): %v", m.shares, m.idle, err)
		}
		if got := read("cpu", tr.offline(), "cpu.idle"); got != m.wantIdleFlag {
			t.Errorf("offlineMode(%s, %v): cpu.idle %s, want %s", m.shares, m.idle, got, m.wantIdleFlag)
		}
		if got := read("cpu", tr.offline(), "cpu.shares"); m.wantShares != "" && got != m.wantShares {
			t.Errorf("offlineMode(%s, %v): cpu.shares %s, want %s", m.shares, m.idle, got, m.wantShares)
		}
	}
	if q := tr.quotaCores(); q != -1 {
		t.Errorf("quota after neutral %v, want -1 (none)", q)
	}
	kerneltest.WriteCgroupFile(t, filepath.Join(tr.root, "cpu", tr.offline(), "cpu.cfs_quota_us"), "50000")
	if q := tr.quotaCores(); q != 0.5 {
		t.Errorf("quota 50000/100000 read as %v CPUs, want 0.5", q)
	}
	out, err := tr.command(tr.online(), "cat", "/proc/self/cgroup").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"cpu", "memory"} {
		found := false
		for _, line := range strings.Split(string(out), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) == 3 && strings.Contains(","+parts[1]+",", ","+c+",") && parts[2] == tr.online() {
				found = true
			}
		}
		if !found {
			t.Errorf("command did not run in %s of hierarchy %s:\n%s", tr.online(), c, out)
		}
	}
	if u, err := tr.cpuUsage("/"); err != nil || u <= 0 {
		t.Errorf("root cpuacct.usage %v, %v: want host busy time", u, err)
	}
	// The agent's figure is its own cgroup's: a process run there shows
	// in it, and in nothing the share is computed from.
	c0, err := readCounters(tr)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.command(tr.agent(), "/bin/sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done").Run(); err != nil {
		t.Fatal(err)
	}
	c1, err := readCounters(tr)
	if err != nil {
		t.Fatal(err)
	}
	w := window(c0, c1, 2)
	if d := c1.agent - c0.agent; d <= 0 || w.online != 0 || w.offline != 0 || w.loadgen != 0 {
		t.Errorf("a busy process in the agent's cgroup: agent %v; online %v, offline %v, loadgen %v s (want only the agent's to grow)", d, w.online, w.offline, w.loadgen)
	}
}
