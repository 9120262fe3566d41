package agent

import (
	"context"
	"testing"
	"time"

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
	for i := 2; i < 200; i++ {
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
		if b := p.OfflineCPU.BudgetMilli; b < min(prev, max(computed, floor)) {
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
