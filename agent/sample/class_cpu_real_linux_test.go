package sample

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/test/kerneltest"
)

// TestRealClassCPUAddsUp runs an online busy loop and two offline ones
// capped at half a CPU, reads the fast tick's counters every 100 ms as the
// agent does, and checks the accounting identity over each 1 s window: the
// classes never add up above the host's busy time by more than 3% of one
// core (so unclassed use, the remainder, is not hiding a negative), and the
// offline parent never shows more than its cap.
func TestRealClassCPUAddsUp(t *testing.T) {
	cpuRoot := kerneltest.RequireCgroupV1Controller(t, "cpu")
	acctRoot := kerneltest.RequireCgroupV1Controller(t, "cpuacct")
	layout := layoutOf(t, cgroupRoot)
	on, off := kerneltest.UniqueName("sluice-classcpu-on"), kerneltest.UniqueName("sluice-classcpu-off")
	onDirs := kerneltest.MakeCgroup(t, on, cpuRoot, acctRoot)
	offDirs := kerneltest.MakeCgroup(t, off, cpuRoot, acctRoot)
	kerneltest.WriteCgroupFile(t, filepath.Join(offDirs[0], "cpu.cfs_period_us"), "100000")
	kerneltest.WriteCgroupFile(t, filepath.Join(offDirs[0], "cpu.cfs_quota_us"), "50000")
	kerneltest.StartChild(t, kerneltest.WorkloadSpin, onDirs...)
	for range 2 {
		kerneltest.StartChild(t, kerneltest.WorkloadSpin, offDirs...)
	}

	r, err := NewCgroupReader(layout)
	if err != nil {
		t.Fatal(err)
	}
	m := NewClassCPUMeter()
	read := func(p string) time.Duration {
		v, err := r.CPU(p)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tick := func() (qos.CPUAccounting, time.Time, bool) {
		host, offline := read("/"), read("/"+off)
		ws := []WorkloadCPU{{CgroupPath: "/" + on, Class: qos.ClassOnline, Total: read("/" + on)}}
		at := time.Now()
		c, ok := m.Observe(at, HostBusy{Exact: true, Total: host}, offline, true, ws)
		return c, at, ok
	}
	_, last, _ := tick()
	type window struct{ host, online, offline, unclassed, skew, secs float64 }
	var w window
	windows := 0
	for windows < 4 {
		time.Sleep(100 * time.Millisecond)
		c, at, ok := tick()
		if !ok {
			t.Fatal("no rate after the first tick")
		}
		dt := at.Sub(last).Seconds()
		last = at
		w.host += float64(c.HostBusyMilli) * dt
		w.online += float64(c.OnlineMilli) * dt
		w.offline += float64(c.OfflineMilli) * dt
		w.unclassed += float64(c.UnclassedMilli) * dt
		w.skew += float64(c.SkewMilli) * dt
		w.secs += dt
		if w.secs < 1 {
			continue
		}
		avg := func(v float64) float64 { return v / w.secs }
		t.Logf("window %d (%.2fs): host %.0fm = online %.0fm + offline %.0fm + unclassed %.0fm (skew %.0fm)",
			windows, w.secs, avg(w.host), avg(w.online), avg(w.offline), avg(w.unclassed), avg(w.skew))
		if avg(w.skew) > 30 {
			t.Errorf("window %d: the classes add up %.0f milli-CPUs above the host's busy time; want at most 30 (3%% of a core)", windows, avg(w.skew))
		}
		if got := avg(w.host) - avg(w.online) - avg(w.offline) - avg(w.unclassed) + avg(w.skew); got > 1 || got < -1 {
			t.Errorf("window %d: host − classes − unclassed + skew = %.1f milli-CPUs; want 0", windows, got)
		}
		// A window whose edges do not fall on CFS period boundaries can
		// hold one period's quota (50 ms) more than its share.
		if avg(w.offline) > 550 {
			t.Errorf("window %d: offline %.0f milli-CPUs above its 500m cap plus one period", windows, avg(w.offline))
		}
		if avg(w.online) < 50 {
			t.Errorf("window %d: online %.0f milli-CPUs: its busy loop was not measured", windows, avg(w.online))
		}
		w = window{}
		windows++
	}
}
