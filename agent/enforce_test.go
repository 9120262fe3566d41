package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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

func newEnforceRig(t *testing.T, more ...Enforcement) *enforceRig {
	t.Helper()
	r := newRig(t)
	cpu := cgrouptest.NewV1(t, "cpu", cgrouptest.Options{CPUs: 8})
	mem := cgrouptest.NewV1(t, "memory", cgrouptest.Options{})
	pol := qos.DefaultPolicy()
	enf, err := cgroup.NewV1(cgroup.Config{OfflineParent: pol.OfflineParent}, cgroup.V1Roots{CPU: cpu, Memory: mem})
	if err != nil {
		t.Fatal(err)
	}
	r.enforceWith(t, pol, append([]Enforcement{{Name: "cgroup", Enforcer: enf, Inline: true}}, more...)...)
	return &enforceRig{rig: r, cpu: cpu, mem: mem}
}

// enforceWith replaces r's agent by one that enforces pol with es, on the
// web and batch-a workloads.
func (r *rig) enforceWith(t *testing.T, pol qos.Policy, es ...Enforcement) {
	t.Helper()
	a, err := New(Config{
		Host: r.host, Usage: r.cg, Policy: pol, Now: r.clk.now, Enforcers: es,
		Workloads: &fakeWorkloads{ws: []discovery.Workload{
			{ID: "web", Name: "web", Class: qos.ClassOnline, CgroupPath: "/online/web"},
			{ID: "batch-a", Name: "batch-a", Class: qos.ClassOffline, CgroupPath: pol.OfflineParent + "/a"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.a = a
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

// slowEnforcer stands for an enforcer that takes long (image pulls, task
// moves, tc changes): Apply hands over its plan, then blocks until
// released.
type slowEnforcer struct {
	got     chan qos.Plan
	release chan struct{}
}

func (e *slowEnforcer) Apply(ctx context.Context, p qos.Plan) []qos.IntentResult {
	e.got <- p
	select {
	case <-e.release:
	case <-ctx.Done():
	}
	return []qos.IntentResult{{Intent: "slow", Target: "x", Status: qos.ResultApplied}}
}

// A slow enforcer never delays the CPU and memory caps: while it is stuck
// in Apply, the loop keeps iterating and writing the cgroup files, and
// once free it gets the latest plan, not each one it missed. (Were it run
// in the loop, Iterate would block for good and the test would hang.)
func TestSlowEnforcerDoesNotDelayCaps(t *testing.T) {
	slow := &slowEnforcer{got: make(chan qos.Plan), release: make(chan struct{})}
	r := newEnforceRig(t, Enforcement{Name: "slow", Enforcer: slow})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	step := func(d time.Duration, webMilli, batchMilli int64) {
		r.clk.t = r.clk.t.Add(d)
		r.cg.add("/online/web", time.Duration(webMilli)*d/1000, 2<<30)
		r.cg.add(r.a.policy.OfflineParent+"/a", time.Duration(batchMilli)*d/1000, 1<<30)
		r.cg.add(r.a.policy.OfflineParent, time.Duration(batchMilli)*d/1000, 1<<30)
		r.a.SampleWorkloads(r.clk.t)
		r.a.Iterate(ctx, "test")
	}
	r.host.s.CPUUsedMilli = 1000
	step(0, 0, 0)
	first := <-slow.got // the worker is now inside Apply, blocked
	if r.quota(t) == "-1" {
		t.Fatal("offline parent not capped in the first iteration")
	}
	for range 6 { // past the grow hold and up the ramp, so a cut is possible
		step(time.Second, 500, 500)
	}
	before := r.a.Snapshot().Plan.OfflineCPU
	if before.BudgetMilli <= first.OfflineCPU.BudgetMilli || r.quota(t) != fmt.Sprint(before.QuotaMicros) {
		t.Fatalf("budget %dm -> %dm, quota %s: want the ramp written while the slow enforcer is stuck",
			first.OfflineCPU.BudgetMilli, before.BudgetMilli, r.quota(t))
	}

	// An online burst while the slow enforcer is stuck: the cut is
	// written in the iteration that plans it.
	r.host.s.CPUUsedMilli = 7500
	r.clk.t = r.clk.t.Add(100 * time.Millisecond)
	r.cg.add(r.a.policy.OfflineParent, 50*time.Millisecond, 1<<30)
	r.a.Iterate(ctx, "host")
	cut := r.a.Snapshot().Plan.OfflineCPU
	if cut.BudgetMilli >= before.BudgetMilli {
		t.Fatalf("budget %dm -> %dm: the burst must cut it", before.BudgetMilli, cut.BudgetMilli)
	}
	if got := r.quota(t); got != fmt.Sprint(cut.QuotaMicros) {
		t.Fatalf("quota %s while the slow enforcer is stuck, want the cut %d", got, cut.QuotaMicros)
	}

	close(slow.release)
	if latest := <-slow.got; latest.OfflineCPU.BudgetMilli != cut.BudgetMilli {
		t.Fatalf("freed slow enforcer got budget %dm, want the latest plan's %dm", latest.OfflineCPU.BudgetMilli, cut.BudgetMilli)
	}
}

// reportingEnforcer answers every Apply with fixed results, or one
// "kill" result per planned kill, and counts its calls.
type reportingEnforcer struct {
	status qos.ResultStatus
	err    error
	kills  bool
}

func (e *reportingEnforcer) Apply(_ context.Context, p qos.Plan) []qos.IntentResult {
	if e.kills {
		var rs []qos.IntentResult
		for _, k := range p.Kills {
			rs = append(rs, qos.IntentResult{Intent: qos.IntentKill, Target: k.ID, Status: e.status})
		}
		return rs
	}
	r := qos.IntentResult{Intent: "fake", Target: "x", Status: e.status}
	if e.err != nil {
		r.Err = e.err.Error()
	}
	return []qos.IntentResult{r}
}

// A failing or unsupported enforcer stops neither the cgroup writes nor
// the other enforcers, and the results of every enforcer reach the next
// Observation: a kill reported by the killer's worker is what makes the
// decision core record the victim as killed.
func TestEnforcerResultsReachTheNextObservation(t *testing.T) {
	failing := &reportingEnforcer{status: qos.ResultFailed, err: errors.New("tc: no such device")}
	unsupported := &reportingEnforcer{status: qos.ResultUnsupported}
	killer := &reportingEnforcer{status: qos.ResultApplied, kills: true}
	r := newEnforceRig(t,
		Enforcement{Name: "failing-inline", Enforcer: failing, Inline: true},
		Enforcement{Name: "unsupported", Enforcer: unsupported},
		Enforcement{Name: "killer", Enforcer: killer},
	)
	done := make(chan string, 16)
	for _, w := range r.a.workers {
		w.applied = func(name string) { done <- name }
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	parent := r.a.policy.OfflineParent
	// Offline holds 10GiB where the limit is 16GiB x 80% - online 2GiB -
	// system 1GiB = 9.8GiB: after the 5 s grace a kill is planned.
	// Steps are a container interval apart, so every one is enforced and
	// posted to the workers.
	r.host.s.MemAvailableBytes = 3 << 30
	var victim string
	for i := 0; i < 10 && victim == ""; i++ {
		r.clk.t = r.clk.t.Add(time.Second)
		r.cg.add("/online/web", 0, 2<<30)
		r.cg.add(parent+"/a", 0, 10<<30)
		r.cg.add(parent, 0, 10<<30)
		r.a.SampleWorkloads(r.clk.t)
		r.a.Iterate(ctx, "test")
		// Both workers report before the next iteration.
		for range r.a.workers {
			<-done
		}
		if ks := r.a.Snapshot().Plan.Kills; len(ks) > 0 {
			victim = ks[0].ID
		}
	}
	if victim != "batch-a" {
		t.Fatalf("no kill of batch-a planned; plan %+v", r.a.Snapshot().Plan.Kills)
	}
	if r.quota(t) == "-1" {
		t.Fatal("a failing inline enforcer stopped the cgroup writes")
	}
	if st := r.a.Snapshot().State.Kill; hasKilled(st, "batch-a") || st.Pending == nil {
		t.Fatalf("kill state %+v before any observation carried the killer's report, want batch-a pending", st)
	}
	r.clk.t = r.clk.t.Add(time.Second)
	r.a.SampleWorkloads(r.clk.t)
	r.a.Iterate(ctx, "test")
	if st := r.a.Snapshot().State.Kill; !hasKilled(st, "batch-a") || st.Pending != nil {
		t.Fatalf("kill state %+v after the killer reported batch-a killed, want it recorded and nothing pending", st)
	}
	res := r.a.Snapshot().Results
	for _, want := range []qos.IntentResult{
		{Intent: "fake", Target: "x", Status: qos.ResultFailed, Err: "tc: no such device"},
		{Intent: "fake", Target: "x", Status: qos.ResultUnsupported},
		{Intent: qos.IntentKill, Target: "batch-a", Status: qos.ResultApplied},
	} {
		if !slices.Contains(res, want) {
			t.Errorf("results %+v lack %+v", res, want)
		}
	}
	// The next heartbeat reports the kill once, with the plan's reason,
	// and what the host lends offline work now.
	rep := r.a.BrainReport()
	if len(rep.Kills) != 1 || rep.Kills[0].Container != "batch-a" || !strings.Contains(rep.Kills[0].Reason, "above its limit") {
		t.Errorf("heartbeat kills %+v, want batch-a with the plan's reason", rep.Kills)
	}
	snap := r.a.Snapshot()
	if rep.LentCPUMilli != snap.Plan.OfflineCPU.BudgetMilli || rep.LentMemoryBytes != int64(snap.Plan.OfflineMemory.MaxBytes) || len(rep.Usage) != 3 {
		t.Errorf("heartbeat %+v: want the plan's budget %dm and limit %d and the three classes", rep, snap.Plan.OfflineCPU.BudgetMilli, snap.Plan.OfflineMemory.MaxBytes)
	}
	if l := snap.Plan.OfflineCPU.Reason.Lend; l == nil || l.Level <= 0 || rep.CPUWaterLevel != l.Level {
		t.Errorf("heartbeat water level %v, want the level the plan applied (%+v)", rep.CPUWaterLevel, l)
	}
	if again := r.a.BrainReport(); len(again.Kills) != 0 {
		t.Errorf("a kill reported twice: %+v", again.Kills)
	}
}

func hasKilled(k qos.KillState, id string) bool {
	return slices.ContainsFunc(k.Killed, func(r qos.KillRecord) bool { return r.ID == id })
}

// The mailbox keeps only the latest plan, but a kill in a plan the worker
// never took is carried into its replacement: kills are edges, not levels.
func TestMailboxKeepsLatestPlanAndCarriesKills(t *testing.T) {
	w := newWorker(Enforcement{Name: "killer", Enforcer: &reportingEnforcer{kills: true}}, slog.New(slog.DiscardHandler))
	kill := func(id string) qos.KillIntent { return qos.KillIntent{ID: id, Class: qos.ClassOffline} }
	w.post(qos.Plan{OfflineParent: "/a", Kills: []qos.KillIntent{kill("x")}})
	w.post(qos.Plan{OfflineParent: "/b"})
	w.post(qos.Plan{OfflineParent: "/c", Kills: []qos.KillIntent{kill("y"), kill("x")}})
	got := <-w.mail
	if got.OfflineParent != "/c" || len(got.Kills) != 2 || got.Kills[0].ID != "y" || got.Kills[1].ID != "x" {
		t.Fatalf("mailbox holds %+v, want the latest plan with kills y, x once each", got)
	}
	select {
	case p := <-w.mail:
		t.Fatalf("a second plan %+v in a one-slot mailbox", p)
	default:
	}
}

// planRecorder records the plans Apply was given.
type planRecorder struct{ plans []qos.Plan }

func (e *planRecorder) Apply(_ context.Context, p qos.Plan) []qos.IntentResult {
	e.plans = append(e.plans, p)
	return []qos.IntentResult{{Intent: qos.IntentOfflineMemory, Target: p.OfflineParent, Status: qos.ResultApplied}}
}

// While offline memory ramps up (a larger limit every host tick), the
// enforcers get the grown limit once per container interval, not at every
// tick; a memory cut is enforced in the tick that planned it.
func TestEnforceWaitsWithMemoryGrowthOnly(t *testing.T) {
	r := newRig(t)
	rec := &planRecorder{}
	pol := qos.DefaultPolicy()
	pol.DryRun = false
	r.enforceWith(t, pol, Enforcement{Name: "recorder", Enforcer: rec, Inline: true})
	r.step(0, 0, 0)
	var grew, applied int
	prev := r.a.prevPlan.OfflineMemory.MaxBytes
	for i := range 100 { // 10 s of host ticks: the grow hold, then the ramp
		n := len(rec.plans)
		if i%10 == 0 {
			r.step(100*time.Millisecond, 500, 500)
		} else {
			r.clk.t = r.clk.t.Add(100 * time.Millisecond)
			r.cg.add(pol.OfflineParent, 50*time.Millisecond, 1<<30)
			r.a.Iterate(context.Background(), "host")
		}
		if m := r.a.prevPlan.OfflineMemory.MaxBytes; m > prev {
			grew++
			if len(rec.plans) > n {
				applied++
			}
			prev = m
		}
	}
	if grew < 20 {
		t.Fatalf("the memory limit grew in %d ticks of 100; want a ramp of at least 20", grew)
	}
	if applied > grew/5 {
		t.Errorf("%d of %d growth ticks enforced at once; want about one a second", applied, grew)
	}
	last := rec.plans[len(rec.plans)-1].OfflineMemory.MaxBytes
	if last < prev-prev/5 {
		t.Errorf("last enforced limit %d, planned %d: the kernel fell behind by more than a second of ramp", last, prev)
	}
	// Online takes memory: the limit is cut, and enforced at once.
	n := len(rec.plans)
	r.host.s.MemAvailableBytes = 2 << 30
	r.clk.t = r.clk.t.Add(100 * time.Millisecond)
	r.a.Iterate(context.Background(), "host")
	cut := r.a.prevPlan.OfflineMemory.MaxBytes
	if cut >= prev {
		t.Fatalf("memory limit %d after online took memory, want below %d", cut, prev)
	}
	if len(rec.plans) != n+1 || rec.plans[n].OfflineMemory.MaxBytes != cut {
		t.Errorf("the cut to %d was not enforced in the tick that planned it", cut)
	}
}
