package agent

import (
	"context"
	"path"
	"testing"
	"time"

	"github.com/sluicehq/sluice/agent/discovery"
	"github.com/sluicehq/sluice/qos"
)

// An online class that bursts every half second, steady system use, and a
// /proc/stat busy figure that swings between far too low and far too high
// (it is sampled at the scheduler tick): the fast tick measures every class
// from exact counters over one window, so the offline budget follows what
// online really uses and no phantom system spike cuts it.
func TestFastTickFollowsExactCountersNotProcStat(t *testing.T) {
	r := newRig(t)
	// The lending figures the arithmetic below was written for (a 2 s hold
	// outlasts the half-second calm between bursts).
	r.a.policy.CPU.HighWater, r.a.policy.CPU.RampPerSecond, r.a.policy.CPU.GrowHold = 0.70, 0.10, 2*time.Second
	pol := r.a.policy
	const offlineMilli, unclassedMilli = 1000, 100
	tick := func(i int, onlineMilli int64) qos.Plan {
		const d = 100 * time.Millisecond
		r.clk.t = r.clk.t.Add(d)
		r.cg.add("/online/web", time.Duration(onlineMilli)*d/1000, 1<<30)
		r.cg.add(pol.OfflineParent+"/a", offlineMilli*d/1000, 1<<30)
		r.cg.add(pol.OfflineParent, offlineMilli*d/1000, 1<<30)
		r.cg.add("/", time.Duration(onlineMilli+offlineMilli+unclassedMilli)*d/1000, 0)
		r.host.s.CPUUsedMilli = []int64{500, 7000}[i%2] // the phantom
		if i%10 == 0 {
			r.a.SampleWorkloads(r.clk.t)
		}
		r.a.Iterate(context.Background(), "host")
		return r.a.Snapshot().Plan
	}
	tick(0, 200)
	capacity := r.host.s.CPUCapacityMilli
	floor := int64(float64(capacity) * pol.CPU.OfflineFloor)
	prev := tick(1, 200).OfflineCPU.BudgetMilli
	cuts := 0
	// The decision subtracts system use's one-second average
	// (qos.SystemCPUSmoothing). The first decision's window is unknown (at
	// start-up only /proc/stat is there to read) and does not seed it; the
	// first exact window does, so the budget holds to the exact figure
	// from the second tick on.
	const settled = 2
	for i := 2; i < 300; i++ {
		online := int64(200)
		if i%10 >= 5 {
			online = 2000 // a burst, half of every second
		}
		p := tick(i, online)
		s := r.a.Snapshot()
		if got := s.Classes[qos.ClassSystem].CPUUsedMilli; got != unclassedMilli {
			t.Fatalf("tick %d: system %dm, want the exact %dm whatever /proc/stat says", i, got, unclassedMilli)
		}
		if got := s.Classes[qos.ClassOnline].CPUUsedMilli; got != online {
			t.Fatalf("tick %d: online %dm on the fast tick, want %dm from its own counter", i, got, online)
		}
		if c := s.CPU; c == nil || c.UnclassedMilli != unclassedMilli || c.HostBusyMilli != online+offlineMilli+unclassedMilli ||
			s.Host.CPUUsedMilli != c.HostBusyMilli {
			t.Fatalf("tick %d: accounting %+v, host busy %dm; want unclassed %dm named apart and host busy from the root counter",
				i, c, s.Host.CPUUsedMilli, unclassedMilli)
		}
		computed := int64(float64(capacity)*pol.CPU.HighWater) - online - unclassedMilli
		if b := p.OfflineCPU.BudgetMilli; i >= settled && b < min(prev, max(computed, floor)) {
			t.Fatalf("tick %d: budget cut from %dm to %dm; the water level asks for no less than %dm: %s",
				i, prev, b, computed, p.OfflineCPU.Reason)
		}
		if p.OfflineCPU.BudgetMilli < prev {
			cuts++
		}
		prev = p.OfflineCPU.BudgetMilli
	}
	if cuts == 0 {
		t.Error("no cut at any burst: the bursts were not seen")
	}
}

// The fast tick reads a directory once for all its workloads where the
// directory holds nothing else (its counter is their sum), and workload by
// workload where it holds a process of its own, a cgroup no workload is,
// or workloads of two classes; the classes add up the same either way.
func TestFastTickReadsWholeClassDirectoryOnce(t *testing.T) {
	r := newRig(t)
	r.a.policy.OfflineParent = "" // a dry run on a host without one: offline is read too
	r.cg.tasks = map[string]bool{"/svc": true}
	type wl struct {
		path  string
		class qos.Class
		milli int64
	}
	wls := []wl{
		{"/batch/a", qos.ClassOffline, 300}, {"/batch/b", qos.ClassOffline, 200}, {"/batch/c", qos.ClassOffline, 100},
		{"/web/x", qos.ClassOnline, 400}, {"/web/y", qos.ClassOnline, 100}, // and /web/stray, no workload
		{"/svc/p", qos.ClassOnline, 50}, {"/svc/q", qos.ClassOnline, 50}, // /svc holds a process
		{"/mixed/on", qos.ClassOnline, 10}, {"/mixed/off", qos.ClassOffline, 20},
	}
	src := r.a.cfg.Workloads.(*fakeWorkloads)
	src.ws = nil
	for _, w := range wls {
		src.ws = append(src.ws, discovery.Workload{ID: w.path, Name: w.path, Class: w.class, CgroupPath: w.path})
	}
	var online, offline int64
	for _, w := range wls {
		if w.class == qos.ClassOnline {
			online += w.milli
		} else {
			offline += w.milli
		}
	}
	const strayMilli = 70
	tick := func(i int) {
		const d = 100 * time.Millisecond
		r.clk.t = r.clk.t.Add(d)
		for _, w := range wls {
			r.cg.add(w.path, time.Duration(w.milli)*d/1000, 1<<20)
			r.cg.add(path.Dir(w.path), time.Duration(w.milli)*d/1000, 1<<20) // the kernel charges every level
		}
		r.cg.add("/web/stray", strayMilli*d/1000, 1<<20)
		r.cg.add("/web", strayMilli*d/1000, 1<<20)
		r.cg.add("/", time.Duration(online+offline+strayMilli)*d/1000, 0)
		if i%10 == 0 {
			r.a.SampleWorkloads(r.clk.t)
		}
		r.a.Iterate(context.Background(), "host")
	}
	check := func(from, to int) {
		t.Helper()
		r.cg.cpuReads = nil
		for i := from; i < to; i++ {
			tick(i)
			c := r.a.Snapshot().CPU
			if i == from {
				// The first tick, or the first after a change of
				// plan: a counter read anew has no rate yet.
				continue
			}
			if c == nil || c.OnlineMilli != online || c.OfflineMilli != offline || c.UnclassedMilli != strayMilli {
				t.Fatalf("tick %d: accounting %+v; want online %dm, offline %dm, unclassed %dm (the stray cgroup)", i, c, online, offline, strayMilli)
			}
		}
	}
	check(0, 20)
	reads := r.cg.cpuReads
	if reads["/batch"] != 20 || reads["/batch/a"] != 0 {
		t.Errorf("/batch read %d times, /batch/a %d times over 20 fast ticks: want the directory every tick and no workload in it", reads["/batch"], reads["/batch/a"])
	}
	for _, p := range []string{"/web/x", "/svc/p", "/mixed/on", "/mixed/off"} {
		if reads[p] != 20 {
			t.Errorf("%s read %d times over 20 fast ticks, want 20: its directory holds more than one class's workloads", p, reads[p])
		}
	}
	for _, p := range []string{"/web", "/svc", "/mixed"} {
		if reads[p] != 0 {
			t.Errorf("%s read %d times: its counter holds more than its workloads", p, reads[p])
		}
	}

	// A process in /batch itself: from the next container tick on, its
	// workloads are read one by one.
	r.cg.tasks["/batch"] = true
	check(20, 30)
	if reads := r.cg.cpuReads; reads["/batch/a"] != 10 || reads["/batch"] != 0 {
		t.Errorf("after a process joined /batch: /batch read %d times, /batch/a %d times over the next 10 fast ticks (the first a container tick); want the workloads only",
			reads["/batch"], reads["/batch/a"])
	}
}

// Offline workloads under the offline parent are read through its counter:
// planning the fast tick does not list the parent to see whether it could.
func TestFastTickPlanLeavesOfflineParentAlone(t *testing.T) {
	r := newRig(t)
	src := r.a.cfg.Workloads.(*fakeWorkloads)
	src.ws = append(src.ws, discovery.Workload{ID: "batch-b", Name: "batch-b", Class: qos.ClassOffline, CgroupPath: r.a.policy.OfflineParent + "/b"})
	r.cg.add(r.a.policy.OfflineParent+"/b", time.Second, 1<<20)
	for range 3 {
		r.step(time.Second, 100, 100)
	}
	if n := r.cg.memberReads[r.a.policy.OfflineParent]; n != 0 {
		t.Errorf("the offline parent listed %d times; want none, its counter is read", n)
	}
	if n := r.cg.cpuReads[r.a.policy.OfflineParent+"/b"]; n != 0 {
		t.Errorf("an offline workload under the parent read %d times on the fast tick; want none", n)
	}
}
