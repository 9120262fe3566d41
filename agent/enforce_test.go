package agent

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/agent/discovery"
	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup"
	"github.com/sluicehq/sluice/qos/cgroup/cgrouptest"
)

// enforceRig is the loop with the real v1 enforcer on fake v1 hierarchies.
type enforceRig struct {
	*rig
	cpu, mem *cgrouptest.V1
}

func newEnforceRig(t *testing.T) *enforceRig {
	t.Helper()
	r := newRig(t)
	cpu := cgrouptest.NewV1(t, "cpu", cgrouptest.Options{CPUs: 8})
	mem := cgrouptest.NewV1(t, "memory", cgrouptest.Options{})
	pol := qos.DefaultPolicy()
	enf, err := cgroup.NewV1(cgroup.Config{OfflineParent: pol.OfflineParent}, cgroup.V1Roots{CPU: cpu, Memory: mem})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{
		Host: r.host, Usage: r.cg, Policy: pol, Now: r.clk.now,
		Enforcers: []Enforcement{{Name: "cgroup", Enforcer: enf, Inline: true}},
		Workloads: &fakeWorkloads{ws: []discovery.Workload{
			{ID: "web", Name: "web", Class: qos.ClassOnline, CgroupPath: "/online/web"},
			{ID: "batch-a", Name: "batch-a", Class: qos.ClassOffline, CgroupPath: pol.OfflineParent + "/a"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.a = a
	return &enforceRig{rig: r, cpu: cpu, mem: mem}
}

// hostTick is one fast tick d after the previous one, without a container
// sample; offline keeps using 500m, as in the steps before.
func (r *enforceRig) hostTick(d time.Duration) {
	r.clk.t = r.clk.t.Add(d)
	r.cg.add(r.a.policy.OfflineParent, d/2, 1<<30)
	r.a.Iterate(context.Background(), "host")
}

func (r *enforceRig) quota(t *testing.T) string {
	t.Helper()
	b, err := r.cpu.ReadFile(r.a.policy.OfflineParent + "/cpu.cfs_quota_us")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// A host tick whose plan asks the kernel for what the last pass wrote does
// not run the enforcer again; the kernel is re-read and corrected at least
// once per container interval, and a changed plan is enforced in the tick
// that planned it.
func TestEnforceSkipsUnchangedPlanUntilResync(t *testing.T) {
	r := newEnforceRig(t)
	r.host.s.CPUUsedMilli = 1000
	r.step(0, 0, 0)
	for range 30 { // let the budget settle at its cap
		r.step(time.Second, 500, 500)
	}
	want := r.quota(t)
	if want == "-1" {
		t.Fatal("offline parent not capped after 30 s of enforcing")
	}
	budget := r.a.Snapshot().Plan.OfflineCPU.BudgetMilli

	// Someone lifts the cap behind the agent's back.
	if err := r.cpu.WriteFile(r.a.policy.OfflineParent+"/cpu.cfs_quota_us", []byte("-1")); err != nil {
		t.Fatal(err)
	}
	r.cpu.ResetWrites()
	r.mem.ResetWrites()
	for range 5 {
		r.hostTick(100 * time.Millisecond)
	}
	if got := r.a.Snapshot().Plan.OfflineCPU.BudgetMilli; got != budget {
		t.Fatalf("budget moved %dm -> %dm with the load unchanged; the test needs a steady plan", budget, got)
	}
	if w := append(r.cpu.Writes(), r.mem.Writes()...); len(w) != 0 || r.quota(t) != "-1" {
		t.Fatalf("unchanged plan within the container interval: writes %v, quota %s; want no enforcement pass", w, r.quota(t))
	}
	// One container interval after the last pass the kernel is read again
	// and the drift corrected.
	r.hostTick(500 * time.Millisecond)
	if got := r.quota(t); got != want {
		t.Fatalf("quota %s one container interval after the last pass, want %s restored", got, want)
	}

	// An online burst cuts the budget in the very tick that sees it.
	r.cpu.ResetWrites()
	r.host.s.CPUUsedMilli = 7500
	r.hostTick(100 * time.Millisecond)
	if got := r.a.Snapshot().Plan.OfflineCPU.BudgetMilli; got >= budget {
		t.Fatalf("budget %dm -> %dm: the burst must cut it", budget, got)
	}
	if got := r.quota(t); got == want {
		t.Fatalf("quota still %s in the tick that cut the budget; writes %v", got, r.cpu.Writes())
	}
}

// A pass that failed is retried on the next tick, not a container interval
// later.
func TestEnforceRetriesFailureOnNextTick(t *testing.T) {
	r := newEnforceRig(t)
	r.host.s.CPUUsedMilli = 1000
	quota := r.a.policy.OfflineParent + "/cpu.cfs_quota_us"
	r.step(0, 0, 0)
	for range 6 { // past the grow hold and up the ramp, so a cut is possible
		r.step(time.Second, 500, 500)
	}
	r.cpu.Reject(quota, syscall.EACCES)
	r.host.s.CPUUsedMilli = 7000 // a cut: the quota must be written
	r.step(time.Second, 500, 500)
	if !anyFailed(r.a.Snapshot().Results) {
		t.Fatalf("results %+v, want the rejected quota write failed", r.a.Snapshot().Results)
	}
	attempts := func() (n int) {
		for _, w := range r.cpu.Writes() {
			if w.Path == quota {
				n++
			}
		}
		return n
	}
	before := attempts()
	r.hostTick(100 * time.Millisecond)
	if attempts() != before+1 {
		t.Fatalf("quota write attempts %d -> %d on the tick after a failed pass, want one retry", before, attempts())
	}
}
