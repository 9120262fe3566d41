package cgroup_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup"
	"github.com/sluicehq/sluice/qos/cgroup/cgrouptest"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newFakeV2(t testing.TB, opts cgrouptest.Options) (*cgrouptest.V2, cgroup.Enforcer) {
	t.Helper()
	tree := cgrouptest.NewV2(t, opts)
	e, err := cgroup.NewV2(cgroup.Config{
		OfflineParent: "/sluice/offline",
		PageSize:      4096,
		Proc:          tree.Proc(),
		Now:           func() time.Time { return t0 },
	}, tree)
	if err != nil {
		t.Fatal(err)
	}
	return tree, e
}

// plan is an enforcing plan as qos.Decide words it: the budget's quota
// over the 100ms period, the minimal weight and idle, offline tasks'
// oom_score_adj 1000.
func plan(budgetMilli int64, high, limit uint64) qos.Plan {
	return qos.Plan{
		OfflineCPU: qos.CPUIntent{BudgetMilli: budgetMilli, QuotaMicros: max(budgetMilli*100, 1000), PeriodMicros: 100000,
			Reason: qos.Reason{Rule: qos.RuleCPULend}, Weight: 1, Idle: true, YieldReason: qos.Reason{Rule: qos.RuleOfflineYields}},
		OfflineMemory:   qos.MemoryIntent{HighBytes: high, MaxBytes: limit, Reason: qos.Reason{Rule: qos.RuleMemoryLend}},
		OfflineOOMScore: qos.OOMScoreIntent{Adj: 1000, Reason: qos.Reason{Rule: qos.RuleOfflineOOMFirst}},
	}
}

// pooled marks a test's cpuset intents as planned.
var pooled = qos.Reason{Rule: qos.RuleCpusetSharedPool}

func statuses(rs []qos.IntentResult) string {
	return cgrouptest.Results(rs, func(r qos.IntentResult) string { return r.Intent })
}

func TestV2ApplyWritesExactText(t *testing.T) {
	tree, e := newFakeV2(t, cgrouptest.Options{})
	ctx := context.Background()
	got := e.Apply(ctx, plan(1500, 1<<30, 1<<30+1<<28+123))
	if want := "offline-cpu=applied offline-memory=applied offline-oom-score=unchanged"; statuses(got) != want {
		t.Fatalf("results %s, want %s", statuses(got), want)
	}
	for _, r := range got {
		if r.Target != "/sluice/offline" || !r.At.Equal(t0) {
			t.Errorf("result %+v: want target /sluice/offline at %v", r, t0)
		}
	}
	want := `/
  cgroup.controllers: cpuset cpu io memory pids
  cgroup.procs: 
  cgroup.subtree_control: cpu memory
/sluice
  cgroup.controllers: cpu memory
  cgroup.procs: 
  cgroup.subtree_control: cpu memory
  cpu.idle: 0
  cpu.max: max 100000
  cpu.weight: 100
  memory.high: max
  memory.max: max
/sluice/offline
  cgroup.controllers: cpu memory
  cgroup.procs: 
  cgroup.subtree_control: 
  cpu.idle: 1
  cpu.max: 150000 100000
  cpu.weight: 0
  memory.high: 1073741824
  memory.max: 1342177280
`
	if r := tree.Render(); r != want {
		t.Errorf("tree:\n%s\nwant:\n%s", r, want)
	}
	checkWrites(t, "writes", tree.Writes(), "",
		`/cgroup.subtree_control <- "+cpu +memory"`,
		`/sluice/cgroup.subtree_control <- "+cpu +memory"`,
		`/sluice/offline/cpu.max <- "150000 100000"`,
		`/sluice/offline/cpu.weight <- "1"`,
		`/sluice/offline/cpu.idle <- "1"`,
		`/sluice/offline/memory.high <- "1073741824"`,
		`/sluice/offline/memory.max <- "1342177280"`,
	)
}

// The enforcer writes the plan's values, not its own: a plan that takes
// the offline parent out of idle clears cpu.idle before it writes the
// weight (the kernel rejects weight writes to an idle group), and the
// quota and period are the plan's.
func TestV2ApplyWritesThePlansValues(t *testing.T) {
	tree, e := newFakeV2(t, cgrouptest.Options{})
	ctx := context.Background()
	e.Apply(ctx, plan(1500, 1<<30, 1<<30))
	tree.ResetWrites()
	p := plan(1500, 1<<30, 1<<30)
	p.OfflineCPU.QuotaMicros, p.OfflineCPU.PeriodMicros = 25000, 50000
	p.OfflineCPU.Weight, p.OfflineCPU.Idle = 50, false
	if got := statuses(e.Apply(ctx, p)); got != "offline-cpu=applied offline-memory=unchanged offline-oom-score=unchanged" {
		t.Fatalf("results %s", got)
	}
	checkWrites(t, "writes", tree.Writes(), "",
		`/sluice/offline/cpu.max <- "25000 50000"`,
		`/sluice/offline/cpu.idle <- "0"`,
		`/sluice/offline/cpu.weight <- "50"`,
	)
}

func TestV2ApplyTwiceWritesNothing(t *testing.T) {
	tree, e := newFakeV2(t, cgrouptest.Options{})
	ctx := context.Background()
	p := plan(700, 300<<20, 400<<20)
	e.Apply(ctx, p)
	for _, pid := range []int{101, 102} {
		if err := tree.AddProc("/sluice/offline", pid); err != nil {
			t.Fatal(err)
		}
	}
	if got := statuses(e.Apply(ctx, p)); got != "offline-cpu=unchanged offline-memory=unchanged offline-oom-score=applied" {
		t.Fatalf("second apply: %s", got)
	}
	for _, pid := range []int{101, 102} {
		if v, _ := tree.OOMScoreAdj(pid); v != 1000 {
			t.Errorf("pid %d oom_score_adj %d, want 1000", pid, v)
		}
	}
	tree.ResetWrites()
	if got := statuses(e.Apply(ctx, p)); got != "offline-cpu=unchanged offline-memory=unchanged offline-oom-score=unchanged" {
		t.Fatalf("third apply: %s", got)
	}
	if w := tree.Writes(); len(w) != 0 {
		t.Errorf("steady-state apply wrote %v", w)
	}
}

func TestV2DryRunWritesNothing(t *testing.T) {
	tree, e := newFakeV2(t, cgrouptest.Options{})
	p := plan(700, 300<<20, 400<<20)
	p.DryRun = true
	got := e.Apply(context.Background(), p)
	if w := tree.Writes(); len(w) != 0 {
		t.Fatalf("dry run wrote %v", w)
	}
	if s := statuses(got); s != "offline-cpu=dry-run offline-memory=dry-run" {
		t.Fatalf("dry run results: %s", s)
	}
	// Once the kernel holds the plan, a dry run has nothing to report.
	p.DryRun = false
	e.Apply(context.Background(), p)
	tree.ResetWrites()
	p.DryRun = true
	if s := statuses(e.Apply(context.Background(), p)); s != "offline-cpu=unchanged offline-memory=unchanged offline-oom-score=unchanged" {
		t.Fatalf("dry run of the current state: %s", s)
	}
	if w := tree.Writes(); len(w) != 0 {
		t.Fatalf("dry run wrote %v", w)
	}
}

func TestV2OneFailedFileDoesNotStopOthers(t *testing.T) {
	tree, e := newFakeV2(t, cgrouptest.Options{})
	ctx := context.Background()
	e.Apply(ctx, plan(500, 0, 1<<30)) // create the parent
	tree.Reject("/sluice/offline/cpu.max", syscall.EPERM)
	got := e.Apply(ctx, plan(900, 0, 2<<30))
	if got[0].Status != qos.ResultFailed || got[0].Err != "cgroup /sluice/offline: write cpu.max 90000 100000: operation not permitted" {
		t.Errorf("cpu result %+v", got[0])
	}
	if got[1].Status != qos.ResultApplied {
		t.Errorf("memory result %+v: want applied despite the cpu failure", got[1])
	}
	if r := tree.Render(); !strings.Contains(r, "memory.max: 2147483648") {
		t.Errorf("memory.max not written:\n%s", r)
	}
}

func TestV2KernelRejectionIsReportedWithFile(t *testing.T) {
	// A plan for a parent the kernel cannot give a cpu controller to: a
	// process sits in /sluice, so /sluice may not enable controllers for
	// its children (no internal processes).
	tree, e := newFakeV2(t, cgrouptest.Options{})
	if err := tree.Mkdir("/sluice"); err != nil {
		t.Fatal(err)
	}
	if err := tree.AddProc("/sluice", 7); err != nil {
		t.Fatal(err)
	}
	got := e.Apply(context.Background(), plan(500, 0, 1<<30))
	for _, r := range got[:2] {
		if r.Status != qos.ResultFailed || r.Err != "cgroup /sluice: write cgroup.subtree_control +cpu +memory: device or resource busy" {
			t.Errorf("result %+v", r)
		}
	}
}

func TestV2NoCPUIdleIsNotAFailure(t *testing.T) {
	tree, e := newFakeV2(t, cgrouptest.Options{NoCPUIdle: true})
	got := e.Apply(context.Background(), plan(500, 0, 1<<30))
	if got[0].Status != qos.ResultApplied {
		t.Fatalf("cpu result %+v", got[0])
	}
	if r := tree.Render(); !strings.Contains(r, "cpu.weight: 1\n") || strings.Contains(r, "cpu.idle") {
		t.Errorf("want weight 1 and no cpu.idle:\n%s", r)
	}
	if s, err := e.Current(context.Background()); err != nil || s.CPUIdle {
		t.Errorf("Current = %+v, %v", s, err)
	}
}

func TestV2RefusesZeroMemoryLimit(t *testing.T) {
	tree, e := newFakeV2(t, cgrouptest.Options{})
	got := e.Apply(context.Background(), plan(500, 0, 0))
	if got[1].Status != qos.ResultFailed || !strings.Contains(got[1].Err, "refusing memory limit 0 bytes") {
		t.Fatalf("memory result %+v", got[1])
	}
	if !strings.Contains(tree.Render(), "memory.max: max") {
		t.Errorf("memory.max changed")
	}
}

func TestV2CurrentAdoptsKernelState(t *testing.T) {
	tree, e := newFakeV2(t, cgrouptest.Options{})
	ctx := context.Background()
	if s, err := e.Current(ctx); err != nil || s.Exists {
		t.Fatalf("Current before creation = %+v, %v", s, err)
	}
	e.Apply(ctx, plan(1250, 100<<20, 200<<20+5))
	s, err := e.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := cgroup.Settings{Exists: true, CPUBudgetMilli: 1250, CPUPeriod: 100 * time.Millisecond, CPUIdle: true,
		MemoryHighBytes: 100 << 20, MemoryMaxBytes: 200 << 20}
	if s != want {
		t.Errorf("Current = %+v, want %+v", s, want)
	}
	// A second enforcer (a restarted agent) sees the same and writes nothing.
	e2, err := cgroup.NewV2(cgroup.Config{OfflineParent: "/sluice/offline", PageSize: 4096}, tree)
	if err != nil {
		t.Fatal(err)
	}
	tree.ResetWrites()
	e2.Apply(ctx, plan(s.CPUBudgetMilli, s.MemoryHighBytes, s.MemoryMaxBytes))
	if w := tree.Writes(); len(w) != 0 {
		t.Errorf("restarted enforcer wrote %v", w)
	}
}

func TestV2Release(t *testing.T) {
	tree, e := newFakeV2(t, cgrouptest.Options{})
	ctx := context.Background()
	e.Apply(ctx, plan(500, 100<<20, 200<<20))
	if s := statuses(e.Release(ctx)); s != "offline-cpu=applied offline-memory=applied" {
		t.Fatalf("release: %s", s)
	}
	r := tree.Render()
	for _, want := range []string{"cpu.max: max 100000", "memory.high: max", "memory.max: max", "cpu.idle: 1"} {
		if !strings.Contains(r, want) {
			t.Errorf("after release want %q:\n%s", want, r)
		}
	}
	if s := statuses(e.Release(ctx)); s != "offline-cpu=unchanged offline-memory=unchanged" {
		t.Errorf("second release: %s", s)
	}
}

func TestV2CpusetWidensParentsFirstAndSkipsVanished(t *testing.T) {
	tree, e := newFakeV2(t, cgrouptest.Options{CPUs: 4})
	ctx := context.Background()
	for _, cg := range []string{"/online", "/online/web", "/online/gone"} {
		if err := tree.Mkdir(cg); err != nil {
			t.Fatal(err)
		}
		if cg == "/online" {
			if err := tree.WriteFile("/cgroup.subtree_control", []byte("+cpuset")); err != nil {
				t.Fatal(err)
			}
		}
		if cg == "/online/web" {
			if err := tree.WriteFile("/online/cgroup.subtree_control", []byte("+cpuset")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tree.WriteFile("/online/cpuset.cpus", []byte("0")); err != nil {
		t.Fatal(err)
	}
	if err := tree.Rmdir("/online/gone"); err != nil {
		t.Fatal(err)
	}
	tree.ResetWrites()
	p := qos.Plan{Cpusets: []qos.CpusetIntent{
		{CgroupPath: "/online/web", CPUs: []int{2, 3, 1}, Reason: pooled},
		{CgroupPath: "/online/gone", CPUs: []int{0}, Reason: pooled},
	}}
	got := e.Apply(ctx, p)
	if s := statuses(got[len(got)-2:]); s != "cpuset=applied cpuset=unchanged" {
		t.Fatalf("cpuset results: %s", s)
	}
	want := `/online/cpuset.cpus <- "0-3"` + "\n" + `/online/web/cpuset.cpus <- "1-3"`
	checkWrites(t, "cpuset writes", tree.Writes(), "cpuset", want)
	tree.ResetWrites()
	e.Apply(ctx, p)
	for _, w := range tree.Writes() {
		if strings.Contains(w.Path, "cpuset") {
			t.Errorf("second apply wrote %v", w)
		}
	}
}

// TestV2RandomTransitions drives the enforcer through random plans in a
// seeded order and checks, after each, that the tree holds exactly what
// the plan asks (an oracle independent of the enforcer's diffing) and that
// repeating the plan writes nothing.
func TestV2RandomTransitions(t *testing.T) {
	rng := seededRand(t)
	tree, e := newFakeV2(t, cgrouptest.Options{})
	ctx := context.Background()
	budgets := []int64{0, 5, 10, 250, 1000, 1999, 4000}
	sizes := []uint64{0, 4095, 4096, 1 << 20, 64<<20 + 1, 1 << 30}
	for i := range 200 {
		p := plan(budgets[rng.IntN(len(budgets))], sizes[rng.IntN(len(sizes))], 1+sizes[rng.IntN(len(sizes))])
		p.DryRun = rng.IntN(5) == 0
		before := tree.Render()
		got := e.Apply(ctx, p)
		for _, r := range got {
			if r.Status == qos.ResultFailed {
				t.Fatalf("step %d %+v: %s", i, p, r.Err)
			}
		}
		if p.DryRun {
			if tree.Render() != before {
				t.Fatalf("step %d: dry run changed the tree", i)
			}
			continue
		}
		quota := max(p.OfflineCPU.BudgetMilli*100, 1000)
		high := "max"
		if p.OfflineMemory.HighBytes > 0 {
			high = strconv.FormatUint(max(p.OfflineMemory.HighBytes/4096*4096, 4096), 10)
		}
		r := tree.Render()
		for _, want := range []string{
			fmt.Sprintf("cpu.max: %d 100000\n", quota),
			"memory.high: " + high + "\n",
			fmt.Sprintf("memory.max: %d\n", max(p.OfflineMemory.MaxBytes/4096*4096, 4096)),
			"cpu.idle: 1\n",
		} {
			if !strings.Contains(r[strings.Index(r, "/sluice/offline\n"):], want) {
				t.Fatalf("step %d %+v: want %q in\n%s", i, p, want, r)
			}
		}
		tree.ResetWrites()
		e.Apply(ctx, p)
		if w := tree.Writes(); len(w) != 0 {
			t.Fatalf("step %d: repeating the plan wrote %v", i, w)
		}
	}
}

func BenchmarkApplySteadyFakeV2(b *testing.B) {
	tree, e := newFakeV2(b, cgrouptest.Options{})
	ctx := context.Background()
	p := plan(1500, 1<<30, 2<<30)
	e.Apply(ctx, p)
	for pid := 1; pid <= 10; pid++ {
		if err := tree.AddProc("/sluice/offline", 1000+pid); err != nil {
			b.Fatal(err)
		}
	}
	e.Apply(ctx, p)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e.Apply(ctx, p)
	}
}

func TestV2CpusetOfflineParentGetsController(t *testing.T) {
	tree, e := newFakeV2(t, cgrouptest.Options{CPUs: 4})
	p := plan(500, 0, 1<<30)
	p.Cpusets = []qos.CpusetIntent{{CgroupPath: "/sluice/offline", CPUs: []int{0, 1}, Reason: pooled}}
	got := e.Apply(context.Background(), p)
	if s := statuses(got); s != "offline-cpu=applied offline-memory=applied offline-oom-score=unchanged cpuset=applied" {
		t.Fatalf("results %s", s)
	}
	r := tree.Render()
	if !strings.Contains(r, "cgroup.subtree_control: cpu cpuset memory\n") || !strings.Contains(r, "cpuset.cpus: 0-1\n") {
		t.Errorf("tree:\n%s", r)
	}
	tree.ResetWrites()
	e.Apply(context.Background(), p)
	if w := tree.Writes(); len(w) != 0 {
		t.Errorf("second apply wrote %v", w)
	}
}
