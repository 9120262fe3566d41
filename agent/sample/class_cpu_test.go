package sample

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/qos"
)

func TestClassCPUMeterAddsUpToHostBusy(t *testing.T) {
	m := NewClassCPUMeter()
	t0 := time.Unix(1000, 0)
	ws := func(web, batch, sys time.Duration) []WorkloadCPU {
		return []WorkloadCPU{
			{CgroupPath: "/online/web", Class: qos.ClassOnline, Total: web},
			{CgroupPath: "/offline/batch", Class: qos.ClassOffline, Total: batch},
			{CgroupPath: "/system.slice/sshd", Class: qos.ClassSystem, Total: sys},
		}
	}
	if _, ok := m.Observe(t0, HostBusy{Exact: true, Total: 10 * time.Second}, 4*time.Second, true, ws(time.Second, 4*time.Second, 0)); ok {
		t.Fatal("a rate from the first reading")
	}
	// 100 ms: host 180 ms busy = online 50 + offline 100 + system 10 + 20 unclassed.
	got, ok := m.Observe(t0.Add(100*time.Millisecond), HostBusy{Exact: true, Total: 10*time.Second + 180*time.Millisecond},
		4*time.Second+100*time.Millisecond, true, ws(time.Second+50*time.Millisecond, 4*time.Second+90*time.Millisecond, 10*time.Millisecond))
	want := qos.CPUAccounting{HostBusyMilli: 1800, OnlineMilli: 500, OfflineMilli: 1000, SystemMilli: 100, UnclassedMilli: 200}
	if !ok || got != want {
		t.Errorf("got %+v, %v; want %+v (offline from its parent, not its workloads)", got, ok, want)
	}
	// The offline parent unreadable: its workloads count; a new workload
	// has no rate yet and adds nothing; the classes above the host show as
	// skew, never as negative unclassed use.
	t1 := t0.Add(200 * time.Millisecond)
	next := append(ws(time.Second+100*time.Millisecond, 4*time.Second+190*time.Millisecond, 10*time.Millisecond),
		WorkloadCPU{CgroupPath: "/online/new", Class: qos.ClassOnline, Total: time.Hour})
	got, ok = m.Observe(t1, HostBusy{Exact: true, Total: 10*time.Second + 320*time.Millisecond}, 0, false, next)
	want = qos.CPUAccounting{HostBusyMilli: 1400, OnlineMilli: 500, OfflineMilli: 1000, SkewMilli: 100}
	if !ok || got != want {
		t.Errorf("got %+v, %v; want %+v", got, ok, want)
	}
	// A workload that went is dropped, not counted at its next appearance
	// against a stale reading.
	// Without a root counter, the host's rate from elsewhere is used as is.
	got, ok = m.Observe(t1.Add(100*time.Millisecond), HostBusy{Milli: 900}, 0, false, nil)
	if want := (qos.CPUAccounting{HostBusyMilli: 900, UnclassedMilli: 900}); !ok || got != want {
		t.Errorf("got %+v, %v; want %+v", got, ok, want)
	}
	m = NewClassCPUMeter()
	m.Observe(t0, HostBusy{Exact: true}, 0, false, next)
	if n := m.m.Len(); n != 5 { // host + 4 workloads (no offline parent)
		t.Errorf("meter holds %d counters, want 5", n)
	}
}

// A read within MinClassWindow of the previous one returns the previous
// result and does not move the counters' reference points: over a window
// of milliseconds the kernel's counters disagree by scheduler ticks.
func TestClassCPUMeterIgnoresTinyWindows(t *testing.T) {
	m := NewClassCPUMeter()
	t0 := time.Unix(1000, 0)
	on := func(total time.Duration) []WorkloadCPU {
		return []WorkloadCPU{{CgroupPath: "/online/web", Class: qos.ClassOnline, Total: total}}
	}
	m.Observe(t0, HostBusy{Exact: true, Total: 0}, 0, false, on(0))
	first, _ := m.Observe(t0.Add(100*time.Millisecond), HostBusy{Exact: true, Total: 50 * time.Millisecond}, 0, false, on(20*time.Millisecond))
	// 1 ms later, a counter a whole 4 ms tick ahead of the root's.
	got, ok := m.Observe(t0.Add(101*time.Millisecond), HostBusy{Exact: true, Total: 50 * time.Millisecond}, 0, false, on(24*time.Millisecond))
	if !ok || got != first {
		t.Errorf("1 ms window: %+v, %v; want the previous result %+v", got, ok, first)
	}
	// The next real window runs from the last kept reading (100 ms).
	got, _ = m.Observe(t0.Add(200*time.Millisecond), HostBusy{Exact: true, Total: 150 * time.Millisecond}, 0, false, on(74*time.Millisecond))
	if want := (qos.CPUAccounting{HostBusyMilli: 1000, OnlineMilli: 540, UnclassedMilli: 460}); got != want {
		t.Errorf("after the skipped read: %+v, want %+v", got, want)
	}
}
