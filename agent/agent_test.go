package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sluicehq/sluice/agent/discovery"
	"github.com/sluicehq/sluice/agent/sample"
	"github.com/sluicehq/sluice/qos"
)

// fakeHost returns the host sample the test sets.
type fakeHost struct{ s qos.HostSample }

func (h *fakeHost) Sample() (qos.HostSample, error) { return h.s, nil }

// fakeCgroups models cumulative counters per cgroup path; a missing path is
// a vanished cgroup, reported the way the real reader does.
type fakeCgroups struct {
	mu       sync.Mutex
	u        map[string]sample.CgroupUsage
	cpuReads map[string]int
	// lazyReads counts UsageLazy calls per path.
	lazyReads map[string]int
	// tasks marks cgroups that hold processes of their own (Members).
	tasks map[string]bool
	// memberReads counts Members calls per path.
	memberReads map[string]int
}

func (f *fakeCgroups) Usage(path string) (sample.CgroupUsage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.u[path]
	if !ok {
		return sample.CgroupUsage{}, fmt.Errorf("cgroup %s: %w", path, fs.ErrNotExist)
	}
	return u, nil
}

// UsageLazy has nothing to be lazy about (the fake's files cost
// nothing), but counts that it was asked.
func (f *fakeCgroups) UsageLazy(path string) (sample.CgroupUsage, error) {
	f.count(&f.lazyReads, path)
	return f.Usage(path)
}

func (f *fakeCgroups) CPU(path string) (time.Duration, error) {
	f.count(&f.cpuReads, path)
	u, err := f.Usage(path)
	return u.CPUTotal, err
}

func (f *fakeCgroups) CloseUnused() int { return 0 }

// Members lists, as the kernel's directory does, every cgroup one level
// below path (a cgroup is any path with counters), and says whether path
// holds processes from tasks.
func (f *fakeCgroups) Members(path string) (sample.CgroupMembers, error) {
	f.count(&f.memberReads, path)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.u[path]; !ok && path != "/" {
		return sample.CgroupMembers{}, fmt.Errorf("cgroup %s: %w", path, sample.ErrCgroupGone)
	}
	m := sample.CgroupMembers{Tasks: f.tasks[path]}
	for p := range f.u {
		if rest, ok := strings.CutPrefix(p, strings.TrimSuffix(path, "/")+"/"); ok && rest != "" && !strings.Contains(rest, "/") {
			m.Children = append(m.Children, rest)
		}
	}
	return m, nil
}

// count adds a read of path to reads.
func (f *fakeCgroups) count(reads *map[string]int, path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if *reads == nil {
		*reads = map[string]int{}
	}
	(*reads)[path]++
}

func (f *fakeCgroups) add(path string, cpu time.Duration, mem uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.u[path]
	u.CPUTotal += cpu
	u.MemoryUsageBytes, u.MemoryChargedBytes = mem, mem
	f.u[path] = u
}

type fakeWorkloads struct {
	mu    sync.Mutex
	ws    []discovery.Workload
	rules []qos.ClassRule
}

func (f *fakeWorkloads) SetRules(rules []qos.ClassRule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = rules
	return nil
}

func (f *fakeWorkloads) Status() discovery.DiscoveryStatus {
	return discovery.DiscoveryStatus{ContainerdConnected: true}
}

func (f *fakeWorkloads) Workloads() []discovery.Workload {
	return append([]discovery.Workload(nil), f.ws...)
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

type rig struct {
	a    *Agent
	host *fakeHost
	cg   *fakeCgroups
	clk  *clock
	reg  *prometheus.Registry
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{
		host: &fakeHost{s: qos.HostSample{CPUCapacityMilli: 8000, CPUUsedMilli: 3000, MemTotalBytes: 16 << 30, MemAvailableBytes: 8 << 30}},
		cg:   &fakeCgroups{u: map[string]sample.CgroupUsage{}},
		clk:  &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		reg:  prometheus.NewRegistry(),
	}
	pol := qos.DefaultPolicy()
	ws := &fakeWorkloads{ws: []discovery.Workload{
		{ID: "web", Name: "web", Class: qos.ClassOnline, Priority: 5, CgroupPath: "/online/web"},
		{ID: "batch-a", Name: "batch-a", Class: qos.ClassOffline, Priority: 1, CgroupPath: pol.OfflineParent + "/a"},
		{ID: "gone", Name: "gone", Class: qos.ClassOffline, CgroupPath: pol.OfflineParent + "/gone"},
	}}
	a, err := New(Config{
		Host: r.host, Usage: r.cg, Workloads: ws, Policy: pol, PolicySource: "embedded default",
		Registerer: r.reg, Now: r.clk.now, ForceDryRun: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.a = a
	return r
}

// step advances the fake clock by d with the given CPU use per cgroup over
// that interval, then samples containers and iterates.
func (r *rig) step(d time.Duration, webMilli, batchMilli int64) {
	r.clk.t = r.clk.t.Add(d)
	r.cg.add("/online/web", time.Duration(webMilli)*d/1000, 2<<30)
	r.cg.add(r.a.policy.OfflineParent+"/a", time.Duration(batchMilli)*d/1000, 1<<30)
	r.cg.add(r.a.policy.OfflineParent, time.Duration(batchMilli)*d/1000, 1<<30)
	r.a.SampleWorkloads(r.clk.t)
	r.a.Iterate(context.Background(), "test")
}

func TestIterateClassifiesAndAccounts(t *testing.T) {
	r := newRig(t)
	r.step(0, 0, 0)
	r.step(time.Second, 1500, 1000)
	s := r.a.Snapshot()
	if len(s.Workloads) != 2 {
		t.Fatalf("workloads = %+v, want web and batch-a (the vanished cgroup skipped)", s.Workloads)
	}
	on, off, sys := s.Classes[qos.ClassOnline], s.Classes[qos.ClassOffline], s.Classes[qos.ClassSystem]
	if on.CPUUsedMilli != 1500 || off.CPUUsedMilli != 1000 {
		t.Errorf("online %dm offline %dm, want 1500m and 1000m", on.CPUUsedMilli, off.CPUUsedMilli)
	}
	// Host 3000m - 1500m online - 1000m offline is unaccounted: system.
	if sys.CPUUsedMilli != 500 {
		t.Errorf("system %dm, want 500m", sys.CPUUsedMilli)
	}
	if !s.Plan.DryRun {
		t.Error("plan not dry-run with ForceDryRun")
	}
	if s.Plan.OfflineCPU.Reason.IsZero() || len(s.Intents) == 0 {
		t.Errorf("plan has no reasons: %+v", s.Plan)
	}
	for _, res := range s.Results {
		if res.Status != qos.ResultDryRun {
			t.Errorf("result %+v, want dry-run", res)
		}
	}
}

// A sharp rise of host CPU is answered by the next host tick, before any
// container tick: the offline parent is read every tick.
func TestFastTickCutsBudgetWithoutContainerTick(t *testing.T) {
	r := newRig(t)
	r.step(0, 0, 0)
	for range 30 { // settle: let the budget ramp up
		r.step(time.Second, 500, 500)
		r.host.s.CPUUsedMilli = 1000
	}
	before := r.a.Snapshot().Plan.OfflineCPU.BudgetMilli
	// Online burst: the host is now busy, containers not resampled yet.
	r.host.s.CPUUsedMilli = 7500
	r.clk.t = r.clk.t.Add(100 * time.Millisecond)
	r.cg.add(r.a.policy.OfflineParent, 50*time.Millisecond, 1<<30) // offline kept 500m
	r.a.Iterate(context.Background(), "host")
	after := r.a.Snapshot().Plan.OfflineCPU.BudgetMilli
	if after >= before {
		t.Fatalf("budget %dm -> %dm: an online burst on the host tick must cut it", before, after)
	}
}

func TestPolicyReloadRejectsInvalidAndKeepsLastGood(t *testing.T) {
	r := newRig(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	good := strings.Replace(string(qos.DefaultPolicyYAML), "dryRun: false", "dryRun: true", 1)
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.a.ReloadPolicy(path); err != nil {
		t.Fatalf("valid policy rejected: %v", err)
	}
	if err := os.WriteFile(path, []byte("version: 1\ncpu:\n  highWater: 130%\n  bogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := r.a.ReloadPolicy(path)
	if err == nil {
		t.Fatal("invalid policy accepted")
	}
	for _, want := range []string{"130%", "bogus"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	info := r.a.Snapshot().Policy
	if info.Source != path || info.LastError == "" {
		t.Errorf("policy info %+v: want source %s in force and the rejection recorded", info, path)
	}
	if got := counterValue(t, r.reg, "sluice_policy_reloads_total", "result", "invalid"); got != 1 {
		t.Errorf("invalid reloads counted %v, want 1", got)
	}
	if err := r.a.ReloadPolicy(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("missing file accepted")
	}
	if got := counterValue(t, r.reg, "sluice_policy_reloads_total", "result", "unreadable"); got != 1 {
		t.Errorf("unreadable reloads counted %v, want 1", got)
	}
}

func TestWatchPolicyReloadsOnRename(t *testing.T) {
	r := newRig(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, qos.DefaultPolicyYAML, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.a.WatchPolicy(ctx, path, 10*time.Millisecond) }()
	t.Cleanup(func() { cancel(); <-done })

	// Editors write a temporary file and rename it over the original. Keep
	// doing so until the watcher (which may not have started yet) sees one.
	tmp := filepath.Join(dir, ".policy.yaml.tmp")
	deadline := time.Now().Add(20 * time.Second)
	for r.a.Snapshot().Policy.Source != path {
		if time.Now().After(deadline) {
			t.Fatal("the watcher never reloaded the renamed policy file")
		}
		if err := os.WriteFile(tmp, qos.DefaultPolicyYAML, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAPIServesStateAndMetrics(t *testing.T) {
	r := newRig(t)
	r.step(0, 0, 0)
	r.step(time.Second, 1000, 500)
	srv := httptest.NewServer(Handler(r.a, r.reg))
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + "/state")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var s Snapshot
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("decode /state: %v", err)
	}
	if len(s.Workloads) != 2 || s.Plan.OfflineCPU.Reason.IsZero() || s.Policy.Source != "embedded default" {
		t.Errorf("/state = %+v", s)
	}
	// The capabilities probed at start ride along (the rig probed none).
	var top struct {
		Capabilities struct {
			Cgroup string `json:"cgroup"`
			TC     struct {
				Probed bool `json:"probed"`
			} `json:"tc"`
		} `json:"capabilities"`
	}
	if err := json.Unmarshal(body, &top); err != nil || top.Capabilities.Cgroup != "unknown" || top.Capabilities.TC.Probed {
		t.Errorf("/state capabilities = %+v, %v; want the zero value shown", top.Capabilities, err)
	}

	resp, err = http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not valid exposition format: %v", err)
	}
	for _, name := range []string{
		"sluice_host_cpu_capacity_cores", "sluice_class_cpu_used_cores", "sluice_offline_cpu_budget_cores",
		"sluice_policy_reloads_total", "sluice_decision_duration_seconds", "sluice_workload_cpu_used_cores",
	} {
		if families[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if got := families["sluice_host_cpu_capacity_cores"].GetMetric()[0].GetGauge().GetValue(); got != 8 {
		t.Errorf("capacity %v cores, want 8", got)
	}
}

func counterValue(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

// A restarted agent resumes from the caps the kernel has instead of starting
// over from current use.
func TestAdoptResumesFromKernelCaps(t *testing.T) {
	r := newRig(t)
	r.a.cfg.Adopt = &AdoptedLimits{CPUBudgetMilli: 1234, MemoryMaxBytes: 3 << 30}
	r.host.s.CPUUsedMilli = 1000
	r.step(0, 0, 0)
	r.step(r.a.policy.CPU.GrowHold/2, 300, 200)
	s := r.a.Snapshot()
	if !s.State.CPU.Set || s.Plan.OfflineCPU.BudgetMilli != 1234 {
		t.Errorf("budget %dm after adopting 1234m (state %+v): a restart must not move the cap before the hold",
			s.Plan.OfflineCPU.BudgetMilli, s.State.CPU)
	}
}

// A workload that exits disappears from /metrics.
func TestExitedWorkloadLeavesMetrics(t *testing.T) {
	r := newRig(t)
	r.step(0, 0, 0)
	r.step(time.Second, 100, 100)
	if n := seriesCount(t, r.reg, "sluice_workload_cpu_used_cores"); n != 2 {
		t.Fatalf("%d workload series, want 2", n)
	}
	r.cg.mu.Lock()
	delete(r.cg.u, r.a.policy.OfflineParent+"/a")
	r.cg.mu.Unlock()
	r.a.SampleWorkloads(r.clk.t.Add(time.Second))
	if n := seriesCount(t, r.reg, "sluice_workload_cpu_used_cores"); n != 1 {
		t.Fatalf("%d workload series after batch-a exited, want 1", n)
	}
}

func seriesCount(t *testing.T, g prometheus.Gatherer, name string) int {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return len(f.GetMetric())
		}
	}
	return 0
}

// The cpuset label reaches the decision core, which plans the cores.
func TestCpusetLabelReachesPlan(t *testing.T) {
	r := newRig(t)
	r.host.s.CPUs = []int{0, 1, 2, 3, 4, 5, 6, 7}
	ws := r.a.cfg.Workloads.(*fakeWorkloads)
	ws.ws[0].Labels = map[string]string{LabelCpuset: "exclusive:2"}
	ws.ws[1].Labels = map[string]string{LabelCpuset: "bogus"}
	r.step(0, 0, 0)
	r.step(time.Second, 500, 500)
	s := r.a.Snapshot()
	var web qos.WorkloadSample
	for _, w := range s.Workloads {
		if w.ID == "web" {
			web = w
		}
	}
	if web.CpusetMode != qos.CpusetExclusive || web.CPUsWanted != 2 {
		t.Fatalf("web cpuset %q x%d, want exclusive x2", web.CpusetMode, web.CPUsWanted)
	}
	found := false
	for _, in := range s.Plan.Cpusets {
		if in.CgroupPath == "/online/web" && len(in.CPUs) == 2 {
			found = true
		}
	}
	if !found {
		t.Errorf("plan cpusets %+v: want two exclusive CPUs for /online/web", s.Plan.Cpusets)
	}
}

// A policy handed over at run time reaches the loop and the OnPolicy hook
// (PSI triggers are re-registered through it).
func TestRunAppliesReloadedPolicy(t *testing.T) {
	r := newRig(t)
	got := make(chan qos.Policy, 1)
	r.a.cfg.OnPolicy = func(p qos.Policy) { got <- p }
	r.a.now = time.Now
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	p := qos.DefaultPolicy()
	p.Sampling.PSIWindow = 4 * time.Second
	r.a.SetPolicy(p, "reloaded.yaml")
	select {
	case q := <-got:
		if q.Sampling.PSIWindow != 4*time.Second {
			t.Errorf("hook got PSI window %v, want 4s", q.Sampling.PSIWindow)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("OnPolicy never called after SetPolicy")
	}
	if src := r.a.Snapshot().Policy.Source; src != "reloaded.yaml" {
		t.Errorf("policy source %q, want reloaded.yaml", src)
	}
}

// A missing offline parent is looked for once per container interval on
// the fast tick, not on every tick, and is read again once it exists.
func TestMissingOfflineParentIsNotReadEveryTick(t *testing.T) {
	r := newRig(t)
	parent := r.a.policy.OfflineParent
	tick := func(d time.Duration) {
		r.clk.t = r.clk.t.Add(d)
		r.a.Iterate(context.Background(), "host")
	}
	tick(0)
	for range 9 {
		tick(100 * time.Millisecond)
	}
	if n := r.cg.cpuReads[parent]; n != 1 {
		t.Fatalf("missing offline parent read %d times in 10 fast ticks within one container interval, want 1", n)
	}
	r.cg.add(parent, 0, 0)
	tick(100 * time.Millisecond) // one container interval after the miss
	tick(100 * time.Millisecond)
	r.cg.add(parent, 50*time.Millisecond, 0)
	tick(100 * time.Millisecond)
	if n := r.cg.cpuReads[parent]; n != 4 {
		t.Errorf("offline parent read %d times, want 4 (every tick once it exists)", n)
	}
	if got := r.a.Snapshot().Classes[qos.ClassOffline].CPUUsedMilli; got != 500 {
		t.Errorf("offline CPU %dm on the fast tick, want 500m from the parent's counter", got)
	}
}

// Policy sections that validate but that nothing enforces are named in the
// log at every load and on /state, so nobody takes them for caps in force.
func TestPolicyLoadsSayWhatIsNotEnforced(t *testing.T) {
	var logs strings.Builder
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, err := New(Config{
		Host: &fakeHost{}, Usage: &fakeCgroups{u: map[string]sample.CgroupUsage{}}, Workloads: &fakeWorkloads{},
		Policy: qos.DefaultPolicy(), PolicySource: "embedded default", Now: clk.now, ForceDryRun: true,
		Log: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	state := func() PolicyInfo {
		t.Helper()
		srv := httptest.NewServer(Handler(a, prometheus.NewRegistry()))
		defer srv.Close()
		resp, err := http.Get(srv.URL + "/state")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var s struct {
			Policy PolicyInfo `json:"policy"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
			t.Fatalf("decode /state: %v", err)
		}
		return s.Policy
	}
	if got := state().NotEnforced; got != nil {
		t.Errorf("/state policy.notEnforced = %q with the default policy, want none (its rdt section is enforced)", got)
	}
	if strings.Contains(logs.String(), "not enforced") {
		t.Errorf("start log %q warns about the default policy, whose sections are all enforced", logs.String())
	}

	logs.Reset()
	path := filepath.Join(t.TempDir(), "shaped.yaml")
	shaped := "version: 1\nnetwork: {devices: [eth0], goldRate: 1Mbit, silverRate: 1Mbit, headroom: 1Mbit}\n"
	if err := os.WriteFile(path, []byte(shaped), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.ReloadPolicy(path); err != nil {
		t.Fatal(err)
	}
	// Both the rdt and the network sections are enforced: none is named.
	if got := state().NotEnforced; got != nil {
		t.Errorf("/state policy.notEnforced = %q after loading %s, want none", got, path)
	}
	if want := "not enforced"; strings.Contains(logs.String(), want) {
		t.Errorf("reload log %q lacks %q", logs.String(), want)
	}

	logs.Reset()
	quiet := "version: 1\nrdt: {enabled: false}\n"
	if err := os.WriteFile(path, []byte(quiet), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.ReloadPolicy(path); err != nil {
		t.Fatal(err)
	}
	if got := state().NotEnforced; got != nil {
		t.Errorf("/state policy.notEnforced = %q for a policy asking nothing unenforced, want none", got)
	}
	if strings.Contains(logs.String(), "not enforced") {
		t.Errorf("reload log %q warns about a policy asking nothing unenforced", logs.String())
	}
}

// TestSampleWorkloadsReadsMemoryStatWhenTight: workloads are read lazily
// (an earlier memory.stat may stand in) until reclaim may be at work where
// the reader cannot see it: offline ones once their charge nears the
// offline limit in force, every one once the host runs short.
func TestSampleWorkloadsReadsMemoryStatWhenTight(t *testing.T) {
	r := newRig(t)
	r.step(0, 0, 0)
	r.step(time.Second, 1000, 1000)
	batch := r.a.policy.OfflineParent + "/a"
	lazy := func() (web, batchLazy bool) {
		r.cg.mu.Lock()
		r.cg.lazyReads = nil
		r.cg.mu.Unlock()
		r.a.SampleWorkloads(r.clk.t)
		r.cg.mu.Lock()
		defer r.cg.mu.Unlock()
		return r.cg.lazyReads["/online/web"] == 1, r.cg.lazyReads[batch] == 1
	}
	limit := r.a.prevPlan.OfflineMemory.MaxBytes
	if limit == 0 {
		t.Fatal("no offline memory limit planned")
	}
	charge := func(b uint64) {
		r.cg.mu.Lock()
		u := r.cg.u[batch]
		u.MemoryChargedBytes = b
		r.cg.u[batch] = u
		r.cg.mu.Unlock()
		r.a.SampleWorkloads(r.clk.t) // learns the offline charge
	}
	charge(limit - limit/7)
	if web, b := lazy(); !web || !b {
		t.Fatalf("offline a seventh under its limit: lazy reads web %v, batch %v; want both", web, b)
	}
	charge(limit - limit/10)
	if web, b := lazy(); !web || b {
		t.Errorf("offline within a tenth of its limit: lazy reads web %v, batch %v; want web only", web, b)
	}
	r.host.s.MemAvailableBytes = r.host.s.MemTotalBytes / 10
	r.a.Iterate(context.Background(), "test")
	if web, b := lazy(); web || b {
		t.Errorf("host short of memory: lazy reads web %v, batch %v; want none", web, b)
	}
}

// A host tick that comes with the container tick makes one pass for both;
// one that comes right after another pass is skipped: the counters it
// would read were just read.
func TestHostTickCause(t *testing.T) {
	r := newRig(t)
	r.cg.add("/online/web", 0, 0)
	r.cg.add(r.a.policy.OfflineParent+"/a", 0, 0)
	cont := make(chan time.Time, 1)
	r.a.lastIterate = time.Now()
	cont <- time.Now()
	if got := r.a.hostTickCause(cont); got != "container" || len(r.a.workloads) != 2 {
		t.Errorf("with the container tick pending: %q, %d workloads sampled; want container, 2", got, len(r.a.workloads))
	}
	if len(cont) != 0 {
		t.Error("the container tick was not taken")
	}
	if got := r.a.hostTickCause(cont); got != "" || testutil.ToFloat64(r.a.metrics.ticksSkipped) != 1 {
		t.Errorf("right after a pass: %q (skipped %v); want it skipped", got, testutil.ToFloat64(r.a.metrics.ticksSkipped))
	}
	r.a.lastIterate = time.Now().Add(-sample.MinClassWindow)
	if got := r.a.hostTickCause(cont); got != "host" {
		t.Errorf("%v after a pass: %q, want host", sample.MinClassWindow, got)
	}
}
