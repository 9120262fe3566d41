package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/agent/discovery"
	"github.com/sluicehq/sluice/agent/sample"
	"github.com/sluicehq/sluice/ebpf"
	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
	"github.com/sluicehq/sluice/rdt"
	"github.com/sluicehq/sluice/rdt/resctrl"
	"github.com/sluicehq/sluice/rdt/resctrltest"
)

// cacheRig is the agent with resctrl over a fake mount (Intel L3 + MBA:
// 11 ways, MB in 10% steps), eBPF run-queue latency from a fake source,
// and two workloads whose threads are listed in a fake cgroup tree.
type cacheRig struct {
	a    *Agent
	fake *resctrltest.Fake
	rq   *fakeRunq
	clk  *clock
	reg  *prometheus.Registry
	done chan string
	// traffic is the scripted MBM total per group, advanced each step.
	traffic map[string]uint64
}

const (
	webTid   = 101
	webTid2  = 102
	batchTid = 201
)

// cacheWorkload is a discovered workload and the threads its cgroup lists.
type cacheWorkload struct {
	discovery.Workload
	tids []int
}

// webAndBatch are an online service with two threads and an offline job.
func webAndBatch(pol qos.Policy) []cacheWorkload {
	return []cacheWorkload{
		{discovery.Workload{ID: "web", Name: "web", Class: qos.ClassOnline, Priority: 5, CgroupPath: "/online/web"}, []int{webTid, webTid2}},
		{discovery.Workload{ID: "batch-a", Name: "batch-a", Class: qos.ClassOffline, Priority: 1, CgroupPath: pol.OfflineParent + "/a"}, []int{batchTid}},
	}
}

func newCacheRig(t *testing.T, pol qos.Policy) *cacheRig {
	return newCacheRigOn(t, pol, resctrltest.New(resctrltest.IntelL3MB()), webAndBatch(pol))
}

func newCacheRigOn(t *testing.T, pol qos.Policy, fake *resctrltest.Fake, workloads []cacheWorkload) *cacheRig {
	t.Helper()
	r := &cacheRig{
		fake:    fake,
		clk:     &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		reg:     prometheus.NewRegistry(),
		done:    make(chan string, 4),
		traffic: map[string]uint64{},
	}
	hw, err := resctrl.Probe(fake)
	if err != nil {
		t.Fatal(err)
	}
	// A v1 cpu hierarchy's "tasks" files, as ResctrlTasks reads them.
	cgroups := t.TempDir()
	r.rq = &fakeRunq{ids: map[string]uint64{}, next: map[uint64]ebpf.CgroupStats{}}
	usage := &fakeCgroups{u: map[string]sample.CgroupUsage{}}
	var ws []discovery.Workload
	for i, w := range workloads {
		var tids strings.Builder
		for _, tid := range w.tids {
			r.fake.AddTask(tid)
			fmt.Fprintln(&tids, tid)
		}
		dir := filepath.Join(cgroups, w.CgroupPath)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "tasks"), []byte(tids.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		r.rq.ids[w.CgroupPath] = uint64(11 + i)
		usage.add(w.CgroupPath, time.Second, 1<<30)
		ws = append(ws, w.Workload)
	}
	rc, err := NewResctrl(ResctrlConfig{
		FS: r.fake, Hardware: hw, Tasks: resctrl.CgroupTasks{Root: cgroups, File: "tasks"},
		Log: slog.New(slog.DiscardHandler), Now: r.clk.now, Policy: pol.RDT,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.a, err = New(Config{
		Host:      &fakeHost{s: qos.HostSample{CPUCapacityMilli: 8000, CPUUsedMilli: 3000, MemTotalBytes: 16 << 30, MemAvailableBytes: 8 << 30}},
		Usage:     usage,
		Workloads: &fakeWorkloads{ws: ws},
		Enforcers: []Enforcement{{Name: "resctrl", Enforcer: rc}},
		Runq:      r.rq,
		Cache:     rc,
		Policy:    pol, PolicySource: "test", Registerer: r.reg, Now: r.clk.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.a.workers[0].applied = func(name string) { r.done <- name }
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r.a.SampleWorkloads(r.clk.t)
	r.a.startWorkers(ctx)
	return r
}

// step advances the clock by a second in which online's threads waited
// runq in the run queue and each group moved the given bytes per second
// of memory traffic, runs one iteration, and waits for the resctrl
// worker when the iteration handed it a plan.
func (r *cacheRig) step(t *testing.T, runq time.Duration, offlineBps, onlineBps uint64) {
	t.Helper()
	r.clk.t = r.clk.t.Add(time.Second)
	r.traffic[rdt.GroupOffline] += offlineBps
	r.traffic[rdt.GroupOnline] += onlineBps
	for g, v := range r.traffic {
		r.fake.SetCounters(g, 0, rdt.RawCounters{TotalBytes: v, HasTotal: true, OccupancyBytes: 1 << 20, HasOccupancy: true})
	}
	r.rq.mu.Lock()
	r.rq.next = map[uint64]ebpf.CgroupStats{r.rq.ids["/online/web"]: waits(1000, runq, 100*time.Millisecond)}
	r.rq.mu.Unlock()
	r.a.SampleWorkloads(r.clk.t)
	r.a.Iterate(context.Background(), "test")
	if !r.a.appliedAt.Equal(r.clk.t) {
		return // an unchanged plan: nothing handed to the worker
	}
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the resctrl worker did not apply the plan")
	}
}

// schemataWrites are the texts written to a group's schemata file, in order.
func (r *cacheRig) schemataWrites(group string) []string {
	var out []string
	for _, w := range r.fake.Writes() {
		if w.Name == group+"/schemata" && w.Err == nil {
			out = append(out, w.Data)
		}
	}
	return out
}

// The agent end to end over a fake resctrl mount: offline starts at its
// ceilings; online's p99 rising above the rdt target while offline holds
// the memory bandwidth cuts offline's ways and MB to their floors at
// once; calm grows them back one ramp step per Ramp.Every after
// Ramp.Hold. The exact schemata text the kernel receives is asserted,
// and every thread sits in its class's group.
func TestAgentResizesOfflineCacheFromOnlineLatency(t *testing.T) {
	pol := qos.DefaultPolicy()
	pol.RDT.OnlineLatencyTarget = 5 * time.Millisecond
	r := newCacheRig(t, pol)
	calm, harmed := 500*time.Microsecond, 20*time.Millisecond

	r.step(t, calm, 1e9, 1e9)
	if got, want := r.schemataWrites(rdt.GroupOffline), []string{"L3:0=1f\nMB:0=50\n"}; !slices.Equal(got, want) {
		t.Fatalf("offline schemata written at start %q, want its ceilings %q", got, want)
	}
	if got, want := r.schemataWrites(rdt.GroupOnline), []string{"L3:0=7e0\n"}; !slices.Equal(got, want) {
		t.Fatalf("online schemata written at start %q, want %q", got, want)
	}
	for tid, want := range map[int]string{webTid: rdt.GroupOnline, webTid2: rdt.GroupOnline, batchTid: rdt.GroupOffline} {
		if g, _ := r.fake.GroupOf(tid); g != want {
			t.Errorf("thread %d in group %q, want %q", tid, g, want)
		}
	}

	// Offline streams 9 GB/s against online's 1: harm, and offline is to blame.
	r.fake.ResetWrites()
	r.step(t, harmed, 9e9, 1e9)
	if got, want := r.schemataWrites(rdt.GroupOffline), []string{"L3:0=3\nMB:0=10\n"}; !slices.Equal(got, want) {
		t.Fatalf("offline schemata written on harm %q, want its floors %q", got, want)
	}
	if got, want := r.schemataWrites(rdt.GroupOnline), []string{"L3:0=7fc\n"}; !slices.Equal(got, want) {
		t.Fatalf("online schemata written on harm %q, want %q", got, want)
	}
	// Offline is tightened before online grows into its ways.
	writes := r.fake.Writes()
	if i, j := slices.IndexFunc(writes, isSchemata(rdt.GroupOffline)), slices.IndexFunc(writes, isSchemata(rdt.GroupOnline)); i > j {
		t.Errorf("online's schemata was written before offline's shrank: %+v", writes)
	}
	snap := r.a.Snapshot()
	if g := cacheGroup(snap.Plan, rdt.GroupOffline); g.Reason.Kind != rdt.ReasonHarm {
		t.Errorf("offline reason %q, want %q", g.Reason.Kind, rdt.ReasonHarm)
	}

	// Calm: the run-queue window forgets the burst, Ramp.Hold passes, and
	// offline grows by one way and 10% MB per Ramp.Every up to its ceilings.
	r.fake.ResetWrites()
	var grewAt []time.Time
	for range 40 {
		before := len(r.schemataWrites(rdt.GroupOffline))
		r.step(t, calm, 1e9, 1e9)
		if len(r.schemataWrites(rdt.GroupOffline)) > before {
			grewAt = append(grewAt, r.clk.t)
		}
	}
	want := []string{"L3:0=7\nMB:0=20\n", "L3:0=f\nMB:0=30\n", "L3:0=1f\nMB:0=40\n", "MB:0=50\n"}
	if got := r.schemataWrites(rdt.GroupOffline); !slices.Equal(got, want) {
		t.Fatalf("offline schemata written while calm %q, want the ramp %q", got, want)
	}
	if got, want := r.schemataWrites(rdt.GroupOnline), []string{"L3:0=7f8\n", "L3:0=7f0\n", "L3:0=7e0\n"}; !slices.Equal(got, want) {
		t.Errorf("online schemata written while calm %q, want %q", got, want)
	}
	for i := 1; i < len(grewAt); i++ {
		if d := grewAt[i].Sub(grewAt[i-1]); d < pol.RDT.Ramp.Every {
			t.Errorf("growth steps %v apart, want at least Ramp.Every %v", d, pol.RDT.Ramp.Every)
		}
	}
	if got, want := r.fake.Schemata(rdt.GroupOffline), "L3:0=01f\nMB:0=50\n"; got != want {
		t.Errorf("offline group holds %q at the end (as the kernel prints it), want its ceilings %q", got, want)
	}

	// The counters reached the Observation (as rates), /state and the registry.
	snap = r.a.Snapshot()
	if !snap.Cache.Supported || snap.Cache.Sample == nil || snap.Cache.Sample.Domains[0][rdt.GroupOffline].TotalBytesPerSec != 1e9 {
		t.Errorf("/state cache %+v, want supported with offline at 1e9 B/s", snap.Cache)
	}
	if v := counterValue(t, r.reg, "sluice_rdt_mbm_total_bytes_total", "group", rdt.GroupOffline); v != float64(r.traffic[rdt.GroupOffline]) {
		t.Errorf("sluice_rdt_mbm_total_bytes_total{group=sluice-offline} = %v, want %d", v, r.traffic[rdt.GroupOffline])
	}
	if !slices.ContainsFunc(snap.Results, func(res qos.IntentResult) bool {
		return res.Intent == qos.IntentCacheGroup && res.Target == rdt.GroupOffline && res.Status != qos.ResultFailed
	}) {
		t.Errorf("/state results %+v lack the offline group's", snap.Results)
	}
}

func isSchemata(group string) func(resctrltest.Write) bool {
	return func(w resctrltest.Write) bool { return w.Name == group+"/schemata" }
}

func cacheGroup(p qos.Plan, name string) rdt.GroupIntent {
	for _, g := range p.Cache.Groups {
		if g.Group == name {
			return g
		}
	}
	return rdt.GroupIntent{}
}

// A restarted agent resumes from the allocation the kernel holds: offline
// cut to its floors by the previous run stays there (no jump back to the
// ceilings) while online is not yet calm long enough.
func TestAgentResumesCacheAllocationAfterRestart(t *testing.T) {
	pol := qos.DefaultPolicy()
	pol.RDT.OnlineLatencyTarget = 5 * time.Millisecond
	fake := resctrltest.New(resctrltest.IntelL3MB())
	if err := fake.Mkdir(rdt.GroupOffline); err != nil {
		t.Fatal(err)
	}
	if err := fake.WriteFile(rdt.GroupOffline+"/schemata", []byte("L3:0=3\nMB:0=10\n")); err != nil {
		t.Fatal(err)
	}
	rc, err := NewResctrl(ResctrlConfig{FS: fake, Hardware: resctrltest.IntelL3MB(), Tasks: resctrl.CgroupTasks{Root: t.TempDir(), File: "tasks"},
		Log: slog.New(slog.DiscardHandler), Policy: pol.RDT})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := rc.Sample(time.Now())
	if s.Current == nil || s.Current.Ways[0] != 2 || s.Current.MB[0] != 10 {
		t.Fatalf("first sample's current allocation %+v, want 2 ways, MB 10 read from the kernel", s.Current)
	}
	if s2, _ := rc.Sample(time.Now()); s2.Current != nil {
		t.Errorf("second sample carries the start allocation again: %+v", s2.Current)
	}
	obs := qos.Observation{Time: time.Now(), Cache: &s, Classes: map[qos.Class]qos.ClassUsage{
		qos.ClassOnline: {RunqLatency: &qos.LatencySummary{P99: time.Millisecond, Count: 10}},
	}}
	plan, _ := qos.Decide(obs, pol, qos.Targets{}, qos.State{})
	if got := cacheGroup(plan, rdt.GroupOffline).Schemata.String(); got != "L3:0=3\nMB:0=10\n" {
		t.Errorf("first plan after restart holds offline at %q, want the kernel's L3:0=3 MB:0=10", got)
	}
}

// A policy impossible on this hardware is rejected at start and on
// reload like any invalid policy; the last good one stays.
func TestCachePolicyCheckedAgainstHardware(t *testing.T) {
	hw := resctrltest.IntelTwoSocket() // min_cbm_bits 2
	rc, err := NewResctrl(ResctrlConfig{FS: resctrltest.New(hw), Hardware: hw, Tasks: resctrl.CgroupTasks{Root: t.TempDir(), File: "tasks"},
		Log: slog.New(slog.DiscardHandler), Policy: qos.DefaultPolicy().RDT})
	if err != nil {
		t.Fatal(err)
	}
	bad := qos.DefaultPolicy()
	bad.RDT.Offline.WaysFloor = rdt.Ways{Count: 1}
	cfg := Config{Host: &fakeHost{}, Usage: &fakeCgroups{u: map[string]sample.CgroupUsage{}}, Workloads: &fakeWorkloads{},
		Cache: rc, Policy: bad, PolicySource: "test", ForceDryRun: true}
	if _, err := New(cfg); !errors.Is(err, ErrPolicyInvalid) || !strings.Contains(err.Error(), "rdt.offline.waysFloor") {
		t.Errorf("New with offline.waysFloor 1 on min_cbm_bits 2: err %v, want ErrPolicyInvalid naming rdt.offline.waysFloor", err)
	}
	cfg.Policy = qos.DefaultPolicy()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte("version: 1\nrdt:\n  offline: {waysFloor: 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.ReloadPolicy(path); !errors.Is(err, ErrPolicyInvalid) || !strings.Contains(err.Error(), "policy.yaml:3: rdt.offline.waysFloor:") ||
		!strings.Contains(err.Error(), "min_cbm_bits 2") {
		t.Errorf("reload: err %v, want ErrPolicyInvalid naming min_cbm_bits 2 on line 3", err)
	}
	if info := a.Snapshot().Policy; info.Source != "test" || !strings.Contains(info.LastError, "rdt.offline.waysFloor") {
		t.Errorf("policy info %+v, want the start policy in force and the rejection shown", info)
	}
}

// On a host without resctrl the agent runs the rest, plans no cache
// intents and says on /state why cache isolation is off.
func TestAgentWithoutResctrl(t *testing.T) {
	r := newRig(t)
	r.a.cfg.CacheErr = "resctrl: kernel has no resctrl file system (CONFIG_X86_CPU_RESCTRL, not in /proc/filesystems): not supported"
	r.step(time.Second, 1000, 500)
	srv := httptest.NewServer(Handler(r.a, r.reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct {
		Plan  qos.Plan    `json:"plan"`
		Cache CacheStatus `json:"cache"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	if s.Cache.Supported || !strings.Contains(s.Cache.Error, "not supported") || s.Cache.Sample != nil {
		t.Errorf("/state cache %+v, want unsupported with the reason", s.Cache)
	}
	if len(s.Plan.Cache.Groups) != 0 || s.Plan.OfflineCPU.BudgetMilli == 0 {
		t.Errorf("plan %+v: want CPU lending and no cache groups", s.Plan)
	}
}

// A dry-run policy plans the cache groups, reports them as dry-run and
// writes nothing to resctrl.
func TestCacheDryRunWritesNothing(t *testing.T) {
	pol := qos.DefaultPolicy()
	pol.DryRun = true
	r := newCacheRig(t, pol)
	r.step(t, time.Millisecond, 1e9, 1e9)
	if w := r.fake.Writes(); len(w) != 0 {
		t.Errorf("dry-run wrote %+v", w)
	}
	if names, _ := r.fake.ReadDir(""); slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, rdt.GroupPrefix) }) {
		t.Errorf("dry-run made groups: %q", names)
	}
	snap := r.a.Snapshot()
	if len(snap.Plan.Cache.Groups) == 0 || !slices.ContainsFunc(snap.Results, func(res qos.IntentResult) bool {
		return res.Intent == qos.IntentCacheGroup && res.Target == rdt.GroupOffline && res.Status == qos.ResultDryRun
	}) {
		t.Errorf("dry-run plan %+v results %+v, want the offline group reported dry-run", snap.Plan.Cache, snap.Results)
	}
}

// On this host's real cgroup layout, the thread list resctrl moves from
// is the cpu hierarchy's, and it holds this test's own main thread.
func TestResctrlTasksReadsTheLayoutsThreads(t *testing.T) {
	l, err := cgroupfs.Detect("/sys/fs/cgroup")
	if err != nil {
		t.Skipf("no cgroup layout here: %v", err)
	}
	tasks, err := ResctrlTasks(l)
	if err != nil {
		t.Fatal(err)
	}
	wantFile := "tasks"
	if l.Mode() == cgroupfs.ModeV2 {
		wantFile = "cgroup.threads"
	}
	if tasks.File != wantFile || tasks.Root != l.Hierarchy(cgroupfs.CPU) {
		t.Fatalf("ResctrlTasks = %+v on a %s layout, want %s under %s", tasks, l.Mode(), wantFile, l.Hierarchy(cgroupfs.CPU))
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var path string
	for line := range strings.SplitSeq(strings.TrimSpace(string(self)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 && (l.Mode() == cgroupfs.ModeV2 && f[0] == "0" || slices.Contains(strings.Split(f[1], ","), "cpu")) {
			path = f[2]
		}
	}
	if path == "" {
		t.Skipf("no cpu cgroup in /proc/self/cgroup:\n%s", self)
	}
	tids, err := tasks.Threads(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tids, os.Getpid()) {
		t.Errorf("threads of %s %v lack this process's main thread %d", path, tids, os.Getpid())
	}
	if _, err := ResctrlTasks(cgroupfs.Layout{}); err == nil {
		t.Error("ResctrlTasks on an empty layout: no error")
	}
}

// Out of CLOSIDs (another tool's group holds one), the enforcer merges
// offline priorities into one group; the next Observation says so, and
// the agent plans one offline group from then on. The other tool's group
// is left alone.
func TestAgentMergesOfflinePrioritiesOutOfCLOSIDs(t *testing.T) {
	hw := resctrltest.IntelL3()
	hw.Caches[0].NumCLOSIDs = 4 // default, the other tool's, online, and one more
	fake := resctrltest.New(hw)
	if err := fake.Mkdir("other-tool"); err != nil {
		t.Fatal(err)
	}
	pol := qos.DefaultPolicy()
	pol.RDT.OfflinePriorityGroups = true
	ws := append(webAndBatch(pol), cacheWorkload{
		discovery.Workload{ID: "batch-b", Name: "batch-b", Class: qos.ClassOffline, Priority: 2, CgroupPath: pol.OfflineParent + "/b"}, []int{202}})
	r := newCacheRigOn(t, pol, fake, ws)

	r.step(t, time.Millisecond, 1e9, 1e9)
	r.step(t, time.Millisecond, 1e9, 1e9)
	snap := r.a.Snapshot()
	var offline []rdt.GroupIntent
	for _, g := range snap.Plan.Cache.Groups {
		if g.Class == rdt.ClassOffline {
			offline = append(offline, g)
		}
	}
	if len(offline) != 1 || !slices.Equal(offline[0].Priorities, []int{1, 2}) || !offline[0].Reason.Merged {
		t.Errorf("offline groups planned after running out of CLOSIDs %+v, want one holding priorities 1 and 2, marked merged", offline)
	}
	if snap.Cache.Sample == nil || !snap.Cache.Sample.OfflineMerged {
		t.Errorf("/state cache sample %+v, want offlineMerged", snap.Cache.Sample)
	}
	g1, _ := fake.GroupOf(batchTid)
	g2, _ := fake.GroupOf(202)
	if g1 != g2 || !strings.HasPrefix(g1, rdt.GroupOffline) {
		t.Errorf("offline threads in groups %q and %q, want one offline group", g1, g2)
	}
	if names, _ := fake.ReadDir(""); !slices.Contains(names, "other-tool") {
		t.Errorf("the other tool's group is gone: %q", names)
	}
	for _, w := range fake.Writes() {
		if strings.HasPrefix(w.Name, "other-tool/") {
			t.Errorf("wrote to the other tool's group: %+v", w)
		}
	}
}
