package cgroup_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup"
	"github.com/sluicehq/sluice/qos/cgroup/cgrouptest"
)

type fakeV1 struct {
	cpu, mem, cs *cgrouptest.V1
	e            cgroup.Enforcer
}

func newFakeV1(t testing.TB) *fakeV1 {
	t.Helper()
	f := &fakeV1{
		cpu: cgrouptest.NewV1(t, "cpu", cgrouptest.Options{}),
		mem: cgrouptest.NewV1(t, "memory", cgrouptest.Options{}),
		cs:  cgrouptest.NewV1(t, "cpuset", cgrouptest.Options{CPUs: 4}),
	}
	f.e = f.newEnforcer(t)
	return f
}

// newEnforcer is a v1 enforcer over the fake hierarchies; a second one
// stands for a restarted agent.
func (f *fakeV1) newEnforcer(t testing.TB) cgroup.Enforcer {
	t.Helper()
	e, err := cgroup.NewV1(cgroup.Config{OfflineParent: "/sluice/offline", PageSize: 4096, Now: func() time.Time { return t0 }},
		cgroup.V1Roots{CPU: f.cpu, Memory: f.mem, Cpuset: f.cs})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func readFile(t *testing.T, fsys cgroup.FS, name string) string {
	t.Helper()
	b, err := fsys.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func writeLog(ws []cgrouptest.Write, filter string) string {
	var out []string
	for _, w := range ws {
		if strings.Contains(w.Path, filter) {
			out = append(out, w.String())
		}
	}
	return strings.Join(out, "\n")
}

// seededRand returns a generator seeded from the clock, or from
// SLUICE_SEED to replay a logged failure; the seed is logged.
func seededRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SLUICE_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (rerun with SLUICE_SEED=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed))
}

// checkWrites compares the writes whose path contains filter, one a line,
// with the want lines.
func checkWrites(t *testing.T, what string, ws []cgrouptest.Write, filter string, want ...string) {
	t.Helper()
	if got, w := writeLog(ws, filter), strings.Join(want, "\n"); got != w {
		t.Errorf("%s:\n%s\nwant:\n%s", what, got, w)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// v1 receives the plan's weight as cpu.shares (weight 50 -> 2 +
// 49 x 262142 / 9999 = 1286) and the plan's period with its quota.
func TestV1WritesThePlansWeightAndPeriod(t *testing.T) {
	f := newFakeV1(t)
	p := plan(1500, 1<<30, 1<<30)
	p.OfflineCPU.QuotaMicros, p.OfflineCPU.PeriodMicros = 75000, 50000
	p.OfflineCPU.Weight, p.OfflineCPU.Idle = 50, false
	if s := statuses(f.e.Apply(context.Background(), p)); s != "offline-cpu=applied offline-memory=applied" {
		t.Fatalf("results %s", s)
	}
	want := strings.Join([]string{
		`/sluice/offline/cpu.cfs_period_us <- "50000"`,
		`/sluice/offline/cpu.cfs_quota_us <- "75000"`,
		`/sluice/offline/cpu.shares <- "1286"`,
	}, "\n")
	checkWrites(t, "cpu writes", f.cpu.Writes(), "", want)
}

func TestV1WritesExactValues(t *testing.T) {
	f := newFakeV1(t)
	got := f.e.Apply(context.Background(), plan(1500, 1<<30, 1<<30+1<<28+123))
	if s := statuses(got); s != "offline-cpu=applied offline-memory=applied" {
		t.Fatalf("results %s", s)
	}
	wantCPU := strings.Join([]string{
		`/sluice/offline/cpu.cfs_quota_us <- "150000"`,
		`/sluice/offline/cpu.shares <- "2"`,
		`/sluice/offline/cpu.idle <- "1"`,
	}, "\n")
	checkWrites(t, "cpu writes", f.cpu.Writes(), "", wantCPU)
	wantMem := `/sluice/offline/memory.soft_limit_in_bytes <- "1073741824"` + "\n" + `/sluice/offline/memory.limit_in_bytes <- "1342177280"`
	checkWrites(t, "memory writes", f.mem.Writes(), "", wantMem)
	f.cpu.ResetWrites()
	f.mem.ResetWrites()
	if s := statuses(f.e.Apply(context.Background(), plan(1500, 1<<30, 1<<30+1<<28+123))); s != "offline-cpu=unchanged offline-memory=unchanged" {
		t.Errorf("second apply %s", s)
	}
	if len(f.cpu.Writes())+len(f.mem.Writes()) != 0 {
		t.Errorf("second apply wrote %v %v", f.cpu.Writes(), f.mem.Writes())
	}
}

// TestV1QuotaOrder: tightening writes the parent, and when the kernel
// refuses it because children hold larger quotas, clamps them (deepest
// first) and writes the parent again; loosening writes the parent first
// and then gives children back their own quota, up to the parent's.
func TestV1QuotaOrder(t *testing.T) {
	f := newFakeV1(t)
	ctx := context.Background()
	f.e.Apply(ctx, plan(2000, 0, 1<<30))
	must(t, f.cpu.Mkdir("/sluice/offline/job"))
	must(t, f.cpu.Mkdir("/sluice/offline/job/task"))
	must(t, f.cpu.WriteFile("/sluice/offline/job/cpu.cfs_quota_us", []byte("100000")))
	must(t, f.cpu.WriteFile("/sluice/offline/job/task/cpu.cfs_quota_us", []byte("50000")))
	f.cpu.ResetWrites()

	if s := statuses(f.e.Apply(ctx, plan(200, 0, 1<<30))); s != "offline-cpu=applied offline-memory=unchanged" {
		t.Fatalf("tighten: %s", s)
	}
	want := strings.Join([]string{
		`/sluice/offline/cpu.cfs_quota_us <- "20000": invalid argument`,
		`/sluice/offline/job/task/cpu.cfs_quota_us <- "20000"`,
		`/sluice/offline/job/cpu.cfs_quota_us <- "20000"`,
		`/sluice/offline/cpu.cfs_quota_us <- "20000"`,
	}, "\n")
	checkWrites(t, "tighten writes", f.cpu.Writes(), "quota", want)
	f.cpu.ResetWrites()
	if s := statuses(f.e.Apply(ctx, plan(700, 0, 1<<30))); s != "offline-cpu=applied offline-memory=unchanged" {
		t.Fatalf("loosen: %s", s)
	}
	want = strings.Join([]string{
		`/sluice/offline/cpu.cfs_quota_us <- "70000"`,
		`/sluice/offline/job/cpu.cfs_quota_us <- "70000"`,
		`/sluice/offline/job/task/cpu.cfs_quota_us <- "50000"`,
	}, "\n")
	checkWrites(t, "loosen writes", f.cpu.Writes(), "quota", want)
}

// readLog is a cpu hierarchy that records the files read.
type readLog struct {
	*cgrouptest.V1
	reads []string
}

func (r *readLog) ReadFile(name string) ([]byte, error) {
	r.reads = append(r.reads, name)
	return r.V1.ReadFile(name)
}

// TestV1TightenReadsNoChildWithoutQuotas: offline children without CFS
// quotas of their own (the usual tree) are neither listed nor read when
// the parent is cut: the kernel's acceptance of the parent's write says
// no child needs clamping.
func TestV1TightenReadsNoChildWithoutQuotas(t *testing.T) {
	f := newFakeV1(t)
	cpu := &readLog{V1: f.cpu}
	e, err := cgroup.NewV1(cgroup.Config{OfflineParent: "/sluice/offline", PageSize: 4096, Now: func() time.Time { return t0 }},
		cgroup.V1Roots{CPU: cpu, Memory: f.mem, Cpuset: f.cs})
	must(t, err)
	ctx := context.Background()
	e.Apply(ctx, plan(2000, 0, 1<<30))
	for i := range 20 {
		must(t, f.cpu.Mkdir("/sluice/offline/w"+strconv.Itoa(i)))
	}
	cpu.reads = nil
	if s := statuses(e.Apply(ctx, plan(300, 0, 1<<30))); s != "offline-cpu=applied offline-memory=unchanged" {
		t.Fatalf("tighten: %s", s)
	}
	if q := readFile(t, f.cpu, "/sluice/offline/cpu.cfs_quota_us"); q != "30000" {
		t.Errorf("parent quota %s, want 30000", q)
	}
	for _, r := range cpu.reads {
		if strings.HasPrefix(r, "/sluice/offline/w") {
			t.Errorf("read %s while cutting a parent whose children hold no quota (reads: %v)", r, cpu.reads)
			break
		}
	}
}

// TestV1ClampSurvivesRestart: a child clamped by one enforcer gets its own
// quota back from the next one (a restarted agent), through the note the
// first left on the child; the note goes once the quota is given back.
func TestV1ClampSurvivesRestart(t *testing.T) {
	f := newFakeV1(t)
	ctx := context.Background()
	f.e.Apply(ctx, plan(2000, 0, 1<<30))
	must(t, f.cpu.Mkdir("/sluice/offline/job"))
	must(t, f.cpu.WriteFile("/sluice/offline/job/cpu.cfs_quota_us", []byte("150000")))
	f.e.Apply(ctx, plan(300, 0, 1<<30))
	if n, ok := f.cpu.Note("/sluice/offline/job", "trusted.sluice.clamped_cfs"); !ok || n != "150000 100000" {
		t.Fatalf("note on the clamped child: %q %v, want \"150000 100000\"", n, ok)
	}

	restarted := f.newEnforcer(t)
	// Tightening further must not take the clamped value for the child's own.
	restarted.Apply(ctx, plan(200, 0, 1<<30))
	restarted.Apply(ctx, plan(1000, 0, 1<<30))
	if q := readFile(t, f.cpu, "/sluice/offline/job/cpu.cfs_quota_us"); q != "100000" {
		t.Errorf("child quota after loosening to 1000m: %s, want 100000 (its own 150000 up to the parent's)", q)
	}
	restarted.Apply(ctx, plan(1800, 0, 1<<30))
	if q := readFile(t, f.cpu, "/sluice/offline/job/cpu.cfs_quota_us"); q != "150000" {
		t.Errorf("child quota after loosening to 1800m: %s, want its own 150000", q)
	}
	if n, ok := f.cpu.Note("/sluice/offline/job", "trusted.sluice.clamped_cfs"); ok {
		t.Errorf("note %q kept after the quota was given back", n)
	}
}

// TestV1BadClampNoteIgnored: a malformed note (here left by hand) is
// ignored, and the fake refuses the names kernfs refuses on v1.
func TestV1BadClampNoteIgnored(t *testing.T) {
	f := newFakeV1(t)
	ctx := context.Background()
	f.e.Apply(ctx, plan(2000, 0, 1<<30))
	must(t, f.cpu.Mkdir("/sluice/offline/job"))
	must(t, f.cpu.WriteNote("/sluice/offline/job", "trusted.sluice.clamped_cfs", []byte("garbage")))
	if err := f.cpu.WriteNote("/sluice/offline/job", "user.sluice", []byte("x")); !errors.Is(err, syscall.EOPNOTSUPP) {
		t.Errorf("user.* note on v1: %v, want EOPNOTSUPP as kernfs says", err)
	}
	must(t, f.cpu.WriteFile("/sluice/offline/job/cpu.cfs_quota_us", []byte("50000")))
	if s := statuses(f.e.Apply(ctx, plan(1000, 0, 1<<30))); s != "offline-cpu=applied offline-memory=unchanged" {
		t.Errorf("apply with a malformed note: %s", s)
	}
	if q := readFile(t, f.cpu, "/sluice/offline/job/cpu.cfs_quota_us"); q != "50000" {
		t.Errorf("a malformed note changed the child: quota %s", q)
	}
}

func TestV1MemoryBelowUsageIsEBUSY(t *testing.T) {
	f := newFakeV1(t)
	ctx := context.Background()
	f.e.Apply(ctx, plan(500, 0, 1<<30))
	f.mem.SetUsage("/sluice/offline", 300<<20)
	got := f.e.Apply(ctx, plan(500, 100<<20, 200<<20))
	want := "cgroup /sluice/offline: write memory.limit_in_bytes 209715200: device or resource busy (usage is above the new limit and reclaim could not bring it down; offline work must shrink or be killed)"
	if got[1].Status != qos.ResultFailed || got[1].Err != want {
		t.Fatalf("memory result %+v\nwant err %s", got[1], want)
	}
	if r := f.mem.Render(); !strings.Contains(r, "memory.soft_limit_in_bytes: 104857600") || !strings.Contains(r, "memory.limit_in_bytes: 1073741824") {
		t.Errorf("want the soft limit applied and the old limit kept:\n%s", r)
	}
}

// TestV1RandomTransitions applies random CPU budgets and cpuset plans
// (intents shuffled) to fake v1 hierarchies that reject wrong orders, with
// unplanned children holding quotas and CPUs of their own.
func TestV1RandomTransitions(t *testing.T) {
	rng := seededRand(t)
	f := newFakeV1(t)
	ctx := context.Background()
	p := plan(2000, 0, 1<<30)
	p.Cpusets = []qos.CpusetIntent{{CgroupPath: "/sluice/offline", CPUs: []int{0, 1, 2, 3}, Reason: pooled}}
	f.e.Apply(ctx, p)
	quota := 1000 * (2 + rng.IntN(200))
	for _, cg := range []string{"/sluice/offline/job", "/sluice/offline/job/task", "/online", "/online/web", "/online/db"} {
		must(t, f.cs.Mkdir(cg))
		must(t, f.cs.WriteFile(cg+"/cpuset.mems", []byte("0")))
		must(t, f.cs.WriteFile(cg+"/cpuset.cpus", []byte("0-3")))
		if strings.HasPrefix(cg, "/sluice") {
			must(t, f.cpu.Mkdir(cg))
			must(t, f.cpu.WriteFile(cg+"/cpu.cfs_quota_us", []byte(strconv.Itoa(quota))))
			quota /= 2 // a child may not exceed its parent
		}
	}
	must(t, f.cs.AddProc("/sluice/offline/job/task", 7))
	sets := [][]int{{0}, {1}, {2, 3}, {0, 1}, {1, 2, 3}, {0, 1, 2, 3}}
	for i := range 200 {
		p := plan(int64(rng.IntN(4000)), 0, 1<<30)
		p.Cpusets = []qos.CpusetIntent{
			{CgroupPath: "/sluice/offline", CPUs: sets[rng.IntN(len(sets))], Reason: pooled},
			{CgroupPath: "/online/web", CPUs: sets[rng.IntN(len(sets))], Reason: pooled},
			{CgroupPath: "/online/db", CPUs: sets[rng.IntN(len(sets))], Reason: pooled},
		}
		rng.Shuffle(len(p.Cpusets), func(a, b int) { p.Cpusets[a], p.Cpusets[b] = p.Cpusets[b], p.Cpusets[a] })
		for _, r := range f.e.Apply(ctx, p) {
			if r.Status == qos.ResultFailed {
				t.Fatalf("step %d: %s %s: %s", i, r.Intent, r.Target, r.Err)
			}
		}
		cs := f.cs.Render()
		for _, c := range p.Cpusets {
			if want := c.CgroupPath + "\n"; !strings.Contains(cs, want) {
				t.Fatalf("step %d: %s missing", i, c.CgroupPath)
			}
			got := cs[strings.Index(cs, c.CgroupPath+"\n"):]
			got = got[strings.Index(got, "cpuset.cpus: ")+len("cpuset.cpus: "):]
			got = got[:strings.Index(got, "\n")]
			if want := formatList(c.CPUs); got != want {
				t.Fatalf("step %d: %s cpuset.cpus %s, want %s", i, c.CgroupPath, got, want)
			}
		}
		cpu := f.cpu.Render()
		quota := strconv.FormatInt(max(p.OfflineCPU.BudgetMilli*100, 1000), 10)
		if !strings.Contains(cpu, "/sluice/offline\n  cgroup.procs: \n  cpu.cfs_period_us: 100000\n  cpu.cfs_quota_us: "+quota+"\n") {
			t.Fatalf("step %d: quota %s not in\n%s", i, quota, cpu)
		}
		f.cpu.ResetWrites()
		f.cs.ResetWrites()
		f.e.Apply(ctx, p)
		if w := slices.Concat(f.cpu.Writes(), f.cs.Writes()); len(w) != 0 {
			t.Fatalf("step %d: repeating the plan wrote %v", i, w)
		}
	}
}

func formatList(cpus []int) string {
	var parts []string
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, strconv.Itoa(cpus[i])+"-"+strconv.Itoa(cpus[j]))
		} else {
			parts = append(parts, strconv.Itoa(cpus[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func BenchmarkApplySteadyFakeV1(b *testing.B) {
	f := newFakeV1(b)
	p := plan(1500, 1<<30, 2<<30)
	f.e.Apply(context.Background(), p)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		f.e.Apply(context.Background(), p)
	}
}

func TestV1ReleaseLiftsCapsAndCpuset(t *testing.T) {
	f := newFakeV1(t)
	ctx := context.Background()
	p := plan(300, 100<<20, 200<<20)
	p.Cpusets = []qos.CpusetIntent{{CgroupPath: "/sluice/offline", CPUs: []int{2}, Reason: pooled}}
	f.e.Apply(ctx, p)
	if s := statuses(f.e.Release(ctx)); s != "offline-cpu=applied offline-memory=applied cpuset=applied" {
		t.Fatalf("release: %s", s)
	}
	for _, c := range []struct {
		r    string
		want string
	}{
		{f.cpu.Render(), "cpu.cfs_quota_us: -1\n"},
		{f.mem.Render(), "memory.limit_in_bytes: 9223372036854771712\n  memory.soft_limit_in_bytes: 9223372036854771712\n  memory.usage_in_bytes: 0\n"},
		{f.cs.Render(), "/sluice/offline\n  cgroup.procs: \n  cpuset.cpus: 0-3\n"},
	} {
		if !strings.Contains(c.r[strings.Index(c.r, "/sluice/offline\n"):], c.want) {
			t.Errorf("want %q in\n%s", c.want, c.r)
		}
	}
}
