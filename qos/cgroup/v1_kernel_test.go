package cgroup_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup"
	"github.com/sluicehq/sluice/test/kerneltest"
)

type v1Host struct {
	cpu, cpuacct, mem string
	top               string
	offline           string
	e                 cgroup.Enforcer
}

// newV1Host points a v1 enforcer at this machine's hierarchies with an
// offline parent under a unique top cgroup.
func newV1Host(t *testing.T) *v1Host {
	t.Helper()
	h := &v1Host{
		cpu:     kerneltest.RequireCgroupV1Controller(t, "cpu"),
		cpuacct: kerneltest.RequireCgroupV1Controller(t, "cpuacct"),
		mem:     kerneltest.RequireCgroupV1Controller(t, "memory"),
	}
	h.top = kerneltest.UniqueCgroup(t, "sluice-test", h.cpu, h.cpuacct, h.mem)
	h.offline = h.top + "/offline"
	h.e = h.newEnforcer(t)
	return h
}

// newEnforcer is a v1 enforcer over the host's cpu and memory
// hierarchies; a second one stands for a restarted agent.
func (h *v1Host) newEnforcer(t *testing.T) cgroup.Enforcer {
	t.Helper()
	e, err := cgroup.NewV1(cgroup.Config{OfflineParent: h.offline, Proc: cgroup.Dir("/proc")},
		cgroup.V1Roots{CPU: cgroup.Dir(h.cpu), Memory: cgroup.Dir(h.mem)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (h *v1Host) apply(t *testing.T, p qos.Plan, want string) []qos.IntentResult {
	t.Helper()
	got := h.e.Apply(context.Background(), p)
	if s := statuses(got); want != "" && s != want {
		t.Fatalf("apply %+v: %s, want %s", p, s, want)
	}
	return got
}

// cpuRateMilli measures the offline parent's CPU use from cpuacct.usage
// over window, in milli-CPUs.
func (h *v1Host) cpuRateMilli(t *testing.T, window time.Duration) int64 {
	t.Helper()
	f := filepath.Join(h.cpuacct, h.offline, "cpuacct.usage")
	u0, w0 := kerneltest.ReadCgroupInt(t, f), time.Now()
	time.Sleep(window)
	u1, w1 := kerneltest.ReadCgroupInt(t, f), time.Now()
	return (u1 - u0) * 1000 / int64(w1.Sub(w0))
}

func TestRealV1OfflineHeldToBudgetAndReleased(t *testing.T) {
	h := newV1Host(t)
	h.apply(t, plan(300, 0, 512<<20), "offline-cpu=applied offline-memory=applied offline-oom-score=unchanged")
	kerneltest.MakeCgroup(t, h.offline, h.cpuacct)
	var spinners []*kerneltest.Child
	for range 2 {
		spinners = append(spinners, kerneltest.StartChild(t, kerneltest.WorkloadSpin,
			filepath.Join(h.cpu, h.offline), filepath.Join(h.cpuacct, h.offline), filepath.Join(h.mem, h.offline)))
	}
	// The next apply adopts the new tasks: oom_score_adj 1000, nothing else.
	h.apply(t, plan(300, 0, 512<<20), "offline-cpu=unchanged offline-memory=unchanged offline-oom-score=applied")
	for _, s := range spinners {
		if v := kerneltest.ReadCgroupFile(t, "/proc/"+strconv.Itoa(s.Pid())+"/oom_score_adj"); v != "1000" {
			t.Errorf("spinner %d oom_score_adj %s, want 1000", s.Pid(), v)
		}
	}
	if got := kerneltest.ReadCgroupFile(t, filepath.Join(h.cpu, h.offline, "cpu.cfs_quota_us")); got != "30000" {
		t.Fatalf("cfs_quota_us %s, want 30000", got)
	}
	// Two busy loops want 2000m; the cap holds them to 300m. Upper bound
	// with slack: the point is the cap, not the scheduler's precision.
	rate := h.cpuRateMilli(t, 2*time.Second)
	t.Logf("two busy loops under a 300m budget used %dm", rate)
	if rate > 300*5/4+50 {
		t.Errorf("offline used %dm under a 300m budget", rate)
	}
	statFile := filepath.Join(h.cpu, h.offline, "cpu.stat")
	if kerneltest.ReadCgroupKey(t, statFile, "nr_throttled") == 0 {
		t.Error("busy loops under a 300m cap were never throttled")
	}
	// Budget above what the loops can use (2 CPUs): the cap is released,
	// so the kernel stops throttling — checked by counters, not speed.
	h.apply(t, plan(4000, 0, 512<<20), "offline-cpu=applied offline-memory=unchanged offline-oom-score=unchanged")
	if got := kerneltest.ReadCgroupFile(t, filepath.Join(h.cpu, h.offline, "cpu.cfs_quota_us")); got != "400000" {
		t.Fatalf("cfs_quota_us %s, want 400000", got)
	}
	time.Sleep(300 * time.Millisecond) // let the current period end
	n0 := kerneltest.ReadCgroupKey(t, statFile, "nr_throttled")
	time.Sleep(time.Second)
	if n1 := kerneltest.ReadCgroupKey(t, statFile, "nr_throttled"); n1 != n0 {
		t.Errorf("still throttled after the budget grew: nr_throttled %d -> %d", n0, n1)
	}
}

func TestRealV1OnlineBurstCutsOfflineCap(t *testing.T) {
	h := newV1Host(t)
	pol := qos.DefaultPolicy()
	pol.OfflineParent = h.offline
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	obs := func(at time.Duration, onlineMilli int64) qos.Observation {
		return qos.Observation{
			Time: base.Add(at),
			Host: qos.HostSample{CPUCapacityMilli: 2000, CPUUsedMilli: onlineMilli + 100,
				MemTotalBytes: 8 << 30, MemAvailableBytes: 6 << 30},
			Classes: map[qos.Class]qos.ClassUsage{
				qos.ClassOnline: {CPUUsedMilli: onlineMilli, MemoryUsageBytes: 1 << 30, Count: 1},
				qos.ClassSystem: {CPUUsedMilli: 100, MemoryUsageBytes: 512 << 20},
			},
		}
	}
	var state qos.State
	var quiet qos.Plan
	for i := range 30 { // online quiet long enough for the budget to ramp up
		quiet, state = qos.Decide(obs(time.Duration(i)*time.Second, 100), pol, qos.Targets{}, state)
		h.apply(t, quiet, "")
	}
	kerneltest.MakeCgroup(t, h.offline, h.cpuacct)
	for range 2 {
		kerneltest.StartChild(t, kerneltest.WorkloadSpin, filepath.Join(h.cpu, h.offline), filepath.Join(h.cpuacct, h.offline))
	}
	if got, want := kerneltest.ReadCgroupFile(t, filepath.Join(h.cpu, h.offline, "cpu.cfs_quota_us")), strconv.FormatInt(quiet.OfflineCPU.BudgetMilli*100, 10); got != want {
		t.Fatalf("quiet: cfs_quota_us %s, want %s (%s)", got, want, quiet.OfflineCPU.Reason.String())
	}
	burst, _ := qos.Decide(obs(30*time.Second, 1300), pol, qos.Targets{}, state)
	if burst.OfflineCPU.BudgetMilli >= quiet.OfflineCPU.BudgetMilli {
		t.Fatalf("online burst did not cut offline: %dm -> %dm", quiet.OfflineCPU.BudgetMilli, burst.OfflineCPU.BudgetMilli)
	}
	if !strings.Contains(burst.OfflineCPU.Reason.String(), "online 1300m") {
		t.Errorf("reason %q does not name the online use", burst.OfflineCPU.Reason.String())
	}
	got := h.apply(t, burst, "")
	if got[0].Status != qos.ResultApplied {
		t.Fatalf("burst cpu result %+v", got[0])
	}
	want := max(burst.OfflineCPU.BudgetMilli*100, 1000)
	if q := kerneltest.ReadCgroupFile(t, filepath.Join(h.cpu, h.offline, "cpu.cfs_quota_us")); q != strconv.FormatInt(want, 10) {
		t.Fatalf("burst: cfs_quota_us %s, want %d (%s)", q, want, burst.OfflineCPU.Reason.String())
	}
	t.Logf("quiet budget %dm, burst budget %dm: %s", quiet.OfflineCPU.BudgetMilli, burst.OfflineCPU.BudgetMilli, burst.OfflineCPU.Reason.String())
	rate := h.cpuRateMilli(t, 2*time.Second)
	t.Logf("two busy loops after the burst used %dm", rate)
	if rate > burst.OfflineCPU.BudgetMilli*5/4+50 {
		t.Errorf("offline used %dm under a %dm budget", rate, burst.OfflineCPU.BudgetMilli)
	}
}

// TestRealV1TightenClampsChildrenFirst checks the ordering against the
// kernel itself: v1 rejects a parent quota below a child's (EINVAL), so
// the enforcer clamps children first and gives their quota back when the
// parent is loosened.
func TestRealV1TightenClampsChildrenFirst(t *testing.T) {
	h := newV1Host(t)
	h.apply(t, plan(2000, 0, 512<<20), "")
	child := filepath.Join(h.cpu, h.offline, "job")
	grandchild := filepath.Join(child, "task")
	kerneltest.MakeCgroup(t, h.offline+"/job/task", h.cpu)
	kerneltest.WriteCgroupFile(t, filepath.Join(child, "cpu.cfs_quota_us"), "100000") // 1 CPU
	kerneltest.WriteCgroupFile(t, filepath.Join(grandchild, "cpu.cfs_quota_us"), "50000")

	h.apply(t, plan(200, 0, 512<<20), "offline-cpu=applied offline-memory=unchanged offline-oom-score=unchanged")
	for p, want := range map[string]string{
		filepath.Join(h.cpu, h.offline): "20000", child: "20000", grandchild: "20000",
	} {
		if got := kerneltest.ReadCgroupFile(t, filepath.Join(p, "cpu.cfs_quota_us")); got != want {
			t.Errorf("after tightening %s: quota %s, want %s", p, got, want)
		}
	}
	h.apply(t, plan(700, 0, 512<<20), "offline-cpu=applied offline-memory=unchanged offline-oom-score=unchanged")
	for p, want := range map[string]string{
		filepath.Join(h.cpu, h.offline): "70000", child: "70000", grandchild: "50000",
	} {
		if got := kerneltest.ReadCgroupFile(t, filepath.Join(p, "cpu.cfs_quota_us")); got != want {
			t.Errorf("after loosening to 700m %s: quota %s, want %s", p, got, want)
		}
	}
	rel := h.e.Release(context.Background())
	if s := statuses(rel); s != "offline-cpu=applied offline-memory=applied" {
		t.Errorf("release: %s", s)
	}
	for p, want := range map[string]string{
		filepath.Join(h.cpu, h.offline): "-1", child: "100000", grandchild: "50000",
	} {
		if got := kerneltest.ReadCgroupFile(t, filepath.Join(p, "cpu.cfs_quota_us")); got != want {
			t.Errorf("after release %s: quota %s, want %s", p, got, want)
		}
	}
	// And the kernel really refuses the wrong order, so the test means something.
	kerneltest.WriteCgroupFile(t, filepath.Join(h.cpu, h.offline, "cpu.cfs_quota_us"), "100000")
	err := cgroup.Dir(h.cpu).WriteFile(h.offline+"/cpu.cfs_quota_us", []byte("10000"))
	if !errors.Is(err, syscall.EINVAL) {
		t.Errorf("kernel accepted a parent quota below its child's: %v", err)
	}
}

// TestRealV1ClampSurvivesRestart: the clamp note is a real extended
// attribute on the child's cgroup directory, so an enforcer started later
// (a restarted agent) gives the child its own quota back.
func TestRealV1ClampSurvivesRestart(t *testing.T) {
	h := newV1Host(t)
	h.apply(t, plan(2000, 0, 512<<20), "")
	child := filepath.Join(h.cpu, h.offline, "job")
	kerneltest.MakeCgroup(t, h.offline+"/job", h.cpu)
	kerneltest.WriteCgroupFile(t, filepath.Join(child, "cpu.cfs_quota_us"), "150000")
	h.apply(t, plan(300, 0, 512<<20), "offline-cpu=applied offline-memory=unchanged offline-oom-score=unchanged")
	if got := kerneltest.ReadCgroupFile(t, filepath.Join(child, "cpu.cfs_quota_us")); got != "30000" {
		t.Fatalf("clamped child quota %s, want 30000", got)
	}
	note, err := cgroup.Dir(h.cpu).ReadNote(h.offline+"/job", "trusted.sluice.clamped_cfs")
	if err != nil || string(note) != "150000 100000" {
		t.Fatalf("clamp note on the child: %q, %v", note, err)
	}

	restarted := h.newEnforcer(t)
	if s := statuses(restarted.Apply(context.Background(), plan(1800, 0, 512<<20))); !strings.HasPrefix(s, "offline-cpu=applied") {
		t.Fatalf("loosen after restart: %s", s)
	}
	if got := kerneltest.ReadCgroupFile(t, filepath.Join(child, "cpu.cfs_quota_us")); got != "150000" {
		t.Errorf("child quota after the restarted enforcer loosened: %s, want its own 150000", got)
	}
	if _, err := cgroup.Dir(h.cpu).ReadNote(h.offline+"/job", "trusted.sluice.clamped_cfs"); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("note after giving the quota back: %v, want ENODATA (removed)", err)
	}
}

func TestRealV1IdleAndShares(t *testing.T) {
	h := newV1Host(t)
	h.apply(t, plan(500, 0, 512<<20), "")
	dir := filepath.Join(h.cpu, h.offline)
	if _, err := cgroup.Dir(h.cpu).ReadFile(h.offline + "/cpu.idle"); err != nil {
		// Kernel without cpu.idle: minimal shares only.
		if got := kerneltest.ReadCgroupFile(t, filepath.Join(dir, "cpu.shares")); got != "2" {
			t.Errorf("cpu.shares %s, want 2", got)
		}
		return
	}
	if got := kerneltest.ReadCgroupFile(t, filepath.Join(dir, "cpu.idle")); got != "1" {
		t.Errorf("cpu.idle %s, want 1", got)
	}
	s, err := h.e.Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !s.Exists || !s.CPUIdle || s.CPUBudgetMilli != 500 || s.MemoryMaxBytes != 512<<20 || s.MemoryHighBytes != 0 {
		t.Errorf("Current = %+v", s)
	}
	// Idle groups reject shares writes; the steady state must not try.
	h.apply(t, plan(500, 0, 512<<20), "offline-cpu=unchanged offline-memory=unchanged offline-oom-score=unchanged")
}

// TestRealV1MemoryLimitBelowUsage: v1 refuses a limit below usage it cannot
// reclaim (no swap here, anonymous memory) with EBUSY. The enforcer
// reports it, keeps the old limit, and still applies the soft limit.
func TestRealV1MemoryLimitBelowUsage(t *testing.T) {
	h := newV1Host(t)
	h.apply(t, plan(500, 0, 512<<20), "")
	kerneltest.StartChild(t, kerneltest.WorkloadHogPrefix+"64", filepath.Join(h.mem, h.offline))
	got := h.apply(t, plan(500, 8<<20, 16<<20), "")
	mem := got[1]
	if mem.Status != qos.ResultFailed {
		if hasSwap(t) {
			t.Skip("swap present: the kernel reclaimed the hog instead of refusing")
		}
		t.Fatalf("memory result %+v: want failed (EBUSY)", mem)
	}
	if !strings.Contains(mem.Err, "cgroup "+h.offline+": write memory.limit_in_bytes 16777216: device or resource busy") {
		t.Errorf("error %q", mem.Err)
	}
	if v := kerneltest.ReadCgroupFile(t, filepath.Join(h.mem, h.offline, "memory.limit_in_bytes")); v != strconv.Itoa(512<<20) {
		t.Errorf("limit changed to %s after a refused write", v)
	}
	if v := kerneltest.ReadCgroupFile(t, filepath.Join(h.mem, h.offline, "memory.soft_limit_in_bytes")); v != strconv.Itoa(8<<20) {
		t.Errorf("soft limit %s, want %d", v, 8<<20)
	}
}

func hasSwap(t *testing.T) bool {
	return len(strings.Split(kerneltest.ReadCgroupFile(t, "/proc/swaps"), "\n")) > 1
}

func BenchmarkApplySteadyRealV1(b *testing.B) {
	cpu := kerneltest.RequireCgroupV1Controller(b, "cpu")
	mem := kerneltest.RequireCgroupV1Controller(b, "memory")
	top := kerneltest.UniqueCgroup(b, "sluice-test", cpu, mem)
	e, err := cgroup.NewV1(cgroup.Config{OfflineParent: top + "/offline", Proc: cgroup.Dir("/proc")},
		cgroup.V1Roots{CPU: cgroup.Dir(cpu), Memory: cgroup.Dir(mem)})
	if err != nil {
		b.Fatal(err)
	}
	p := plan(1500, 1<<30, 2<<30)
	if r := e.Apply(context.Background(), p); r[0].Status != qos.ResultApplied {
		b.Fatalf("first apply: %+v", r)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e.Apply(context.Background(), p)
	}
}

// cpusetHost needs this machine's v1 cpu, memory and cpuset hierarchies
// and at least two CPUs in the root cpuset, which it returns.
func cpusetHost(t *testing.T) (cpuRoot, memRoot, csRoot string, cpus []int) {
	t.Helper()
	cpuRoot = kerneltest.RequireCgroupV1Controller(t, "cpu")
	memRoot = kerneltest.RequireCgroupV1Controller(t, "memory")
	csRoot = kerneltest.RequireCgroupV1Controller(t, "cpuset")
	cpus, err := cgroupCPUs(csRoot)
	if err != nil || len(cpus) < 2 {
		t.Skipf("need 2 CPUs in the root cpuset (%v, %v)", cpus, err)
	}
	return cpuRoot, memRoot, csRoot, cpus
}

// TestRealV1CpusetsLoosenParentsTightenChildren pins the offline parent
// and an online cgroup on this machine's v1 cpuset hierarchy. Shrinking
// the offline parent below a child's CPUs is EBUSY/EINVAL on v1 unless the
// child is clamped first; the kernel checks the order.
func TestRealV1CpusetsLoosenParentsTightenChildren(t *testing.T) {
	cpuRoot, memRoot, csRoot, all := cpusetHost(t)
	top := kerneltest.UniqueCgroup(t, "sluice-test", cpuRoot, memRoot, csRoot)
	offline, web := top+"/offline", top+"/online/web"
	cs := &countingFS{FS: cgroup.Dir(csRoot)}
	e, err := cgroup.NewV1(cgroup.Config{OfflineParent: offline},
		cgroup.V1Roots{CPU: cgroup.Dir(cpuRoot), Memory: cgroup.Dir(memRoot), Cpuset: cs})
	if err != nil {
		t.Fatal(err)
	}
	a, b := all[0], all[1]
	p := plan(500, 0, 512<<20)
	p.Cpusets = []qos.CpusetIntent{{CgroupPath: offline, CPUs: []int{a, b}, Reason: pooled}}
	if s := statuses(e.Apply(context.Background(), p)); !strings.HasSuffix(s, "cpuset=applied") {
		t.Fatalf("create: %s", s)
	}
	// An offline job using both CPUs, with a task in it; an online cgroup.
	job := filepath.Join(csRoot, offline, "job")
	kerneltest.MakeCgroup(t, offline+"/job", csRoot)
	kerneltest.MakeCgroup(t, top+"/online", csRoot)
	ab := fmt.Sprintf("%d,%d", a, b)
	for _, d := range []string{job, filepath.Join(csRoot, top, "online")} {
		kerneltest.WriteCgroupFile(t, filepath.Join(d, "cpuset.mems"), kerneltest.ReadCgroupFile(t, filepath.Join(csRoot, "cpuset.mems")))
		kerneltest.WriteCgroupFile(t, filepath.Join(d, "cpuset.cpus"), ab)
	}
	kerneltest.MakeCgroup(t, web, csRoot)
	kerneltest.WriteCgroupFile(t, filepath.Join(csRoot, web, "cpuset.mems"), kerneltest.ReadCgroupFile(t, filepath.Join(csRoot, "cpuset.mems")))
	kerneltest.WriteCgroupFile(t, filepath.Join(csRoot, web, "cpuset.cpus"), strconv.Itoa(a))
	kerneltest.StartChild(t, kerneltest.WorkloadSpin, job)

	// web takes b exclusively; offline shrinks to a.
	p.Cpusets = []qos.CpusetIntent{
		{CgroupPath: offline, CPUs: []int{a}, Reason: pooled},
		{CgroupPath: web, CPUs: []int{b}, Reason: pooled},
	}
	if s := statuses(e.Apply(context.Background(), p)); !strings.HasSuffix(s, "cpuset=applied cpuset=applied") {
		t.Fatalf("shrink: %s", s)
	}
	for d, want := range map[string]string{
		filepath.Join(csRoot, offline): strconv.Itoa(a), job: strconv.Itoa(a), filepath.Join(csRoot, web): strconv.Itoa(b),
	} {
		if got := kerneltest.ReadCgroupFile(t, filepath.Join(d, "cpuset.cpus")); got != want {
			t.Errorf("%s cpuset.cpus = %s, want %s", d, got, want)
		}
	}
	cs.writes = nil
	if s := statuses(e.Apply(context.Background(), p)); !strings.HasSuffix(s, "cpuset=unchanged cpuset=unchanged") || len(cs.writes) != 0 {
		t.Errorf("steady state: %s, writes %v", s, cs.writes)
	}
	// What a restarted agent reads back to adopt the pinning.
	got := cgroup.ReadCpusets(cgroup.Dir(csRoot), []string{web, offline, top + "/missing"})
	if want := map[string][]int{web: {b}, offline: {a}}; !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("ReadCpusets = %v, want %v", got, want)
	}
}

func cgroupCPUs(root string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(root, "cpuset.cpus"))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, part := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, ok := strings.Cut(part, "-")
		x, err := strconv.Atoi(lo)
		if err != nil {
			return nil, err
		}
		y := x
		if ok {
			if y, err = strconv.Atoi(hi); err != nil {
				return nil, err
			}
		}
		for c := x; c <= y; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

// TestRealV1CpusetRandomTransitions moves CPUs between the offline parent
// and two online cgroups in random plans whose intents come in a random
// order; v1 refuses any write that leaves a child outside its parent, so
// every plan applying cleanly and exactly checks the enforcer's ordering.
func TestRealV1CpusetRandomTransitions(t *testing.T) {
	cpuRoot, memRoot, csRoot, all := cpusetHost(t)
	rng := seededRand(t)
	top := kerneltest.UniqueCgroup(t, "sluice-test", cpuRoot, memRoot, csRoot)
	offline := top + "/offline"
	e, err := cgroup.NewV1(cgroup.Config{OfflineParent: offline},
		cgroup.V1Roots{CPU: cgroup.Dir(cpuRoot), Memory: cgroup.Dir(memRoot), Cpuset: cgroup.Dir(csRoot)})
	if err != nil {
		t.Fatal(err)
	}
	p := plan(500, 0, 512<<20)
	p.Cpusets = []qos.CpusetIntent{{CgroupPath: offline, CPUs: all[:2], Reason: pooled}}
	e.Apply(context.Background(), p)
	mems := kerneltest.ReadCgroupFile(t, filepath.Join(csRoot, "cpuset.mems"))
	for _, d := range []string{offline + "/job", top + "/online", top + "/online/web", top + "/online/db"} {
		kerneltest.MakeCgroup(t, d, csRoot)
		kerneltest.WriteCgroupFile(t, filepath.Join(csRoot, d, "cpuset.mems"), mems)
		kerneltest.WriteCgroupFile(t, filepath.Join(csRoot, d, "cpuset.cpus"), fmt.Sprintf("%d-%d", all[0], all[1]))
	}
	subsets := [][]int{{all[0]}, {all[1]}, {all[0], all[1]}}
	for i := range 100 {
		p.Cpusets = []qos.CpusetIntent{
			{CgroupPath: offline, CPUs: subsets[rng.IntN(3)], Reason: pooled},
			{CgroupPath: top + "/online/web", CPUs: subsets[rng.IntN(3)], Reason: pooled},
			{CgroupPath: top + "/online/db", CPUs: subsets[rng.IntN(3)], Reason: pooled},
		}
		rng.Shuffle(len(p.Cpusets), func(a, b int) { p.Cpusets[a], p.Cpusets[b] = p.Cpusets[b], p.Cpusets[a] })
		for _, r := range e.Apply(context.Background(), p) {
			if r.Status == qos.ResultFailed {
				t.Fatalf("step %d: %s: %s", i, r.Target, r.Err)
			}
		}
		for _, c := range p.Cpusets {
			got, err := cgroupCPUs(filepath.Join(csRoot, c.CgroupPath))
			if err != nil || !slices.Equal(got, c.CPUs) {
				t.Fatalf("step %d: %s cpus %v, want %v (%v)", i, c.CgroupPath, got, c.CPUs, err)
			}
		}
		// The unplanned job stays inside its parent.
		job, _ := cgroupCPUs(filepath.Join(csRoot, offline, "job"))
		parent, _ := cgroupCPUs(filepath.Join(csRoot, offline))
		for _, c := range job {
			if !slices.Contains(parent, c) {
				t.Fatalf("step %d: job %v outside offline %v", i, job, parent)
			}
		}
	}
}
