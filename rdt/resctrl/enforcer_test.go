package resctrl_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup/cgrouptest"
	"github.com/sluicehq/sluice/rdt"
	"github.com/sluicehq/sluice/rdt/resctrl"
	"github.com/sluicehq/sluice/rdt/resctrltest"
)

// cgroupTasks is a TaskLister over a map; a missing cgroup is ErrNotExist.
type cgroupTasks map[string][]int

func (c cgroupTasks) Threads(cg string) ([]int, error) {
	t, ok := c[cg]
	if !ok {
		return nil, fmt.Errorf("cgroup %s: %w", cg, fs.ErrNotExist)
	}
	return t, nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newEnforcer(t *testing.T, f *resctrltest.Fake, tasks cgroupTasks, c *clock) *resctrl.Enforcer {
	t.Helper()
	hw, err := resctrl.Probe(f)
	if err != nil {
		t.Fatal(err)
	}
	e, err := resctrl.New(resctrl.Config{FS: f, Hardware: hw, Tasks: tasks, Log: slog.New(slog.DiscardHandler), Now: c.now, Reconcile: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func writeLog(f *resctrltest.Fake) string {
	var b strings.Builder
	for _, w := range f.Writes() {
		fmt.Fprintf(&b, "%s <- %q", w.Name, w.Data)
		if w.Err != nil {
			fmt.Fprintf(&b, " (%v)", w.Err)
		}
		b.WriteByte('\n')
	}
	f.ResetWrites()
	return b.String()
}

// statuses labels each result by its group.
func statuses(rs []qos.IntentResult) string {
	return cgrouptest.Results(rs, func(r qos.IntentResult) string { return r.Target })
}

func TestApplyWritesOnlyDifferencesAndMovesTasksOnce(t *testing.T) {
	f := resctrltest.New(resctrltest.IntelTwoSocket())
	for _, pid := range []int{10, 11, 20} {
		f.AddTask(pid)
	}
	tasks := cgroupTasks{"/online/web": {10, 11}, "/batch/a": {20, 21}} // 21 exits before it is moved
	c := &clock{t: time.Unix(1000, 0)}
	e := newEnforcer(t, f, tasks, c)
	hw, _ := resctrl.Probe(f)
	wl := []rdt.Workload{{CgroupPath: "/online/web", Class: rdt.ClassOnline}, {CgroupPath: "/batch/a", Class: rdt.ClassOffline}}
	plan, _ := rdt.Decide(rdt.Signals{Now: c.t, Workloads: wl}, rdt.DefaultPolicy(), hw, rdt.State{})

	rs := e.Apply(context.Background(), plan)
	if got := statuses(rs); got != "sluice-offline=applied sluice-online=applied" {
		t.Errorf("results = %s", got)
	}
	want := `sluice-offline/schemata <- "L3:0=1f;1=1f\nMB:0=50;1=50\n"
sluice-offline/tasks <- "20"
sluice-offline/tasks <- "21" (write sluice-offline/tasks: no such process)
sluice-online/schemata <- "L3:0=7e0;1=7e0\n"
sluice-online/tasks <- "10"
sluice-online/tasks <- "11"
`
	if got := writeLog(f); got != want {
		t.Errorf("writes:\n%s\nwant:\n%s", got, want)
	}
	if got := f.Schemata(rdt.GroupOffline); got != "L3:0=01f;1=01f\nMB:0=50;1=50\n" {
		t.Errorf("kernel holds %q", got)
	}
	tasks["/batch/a"] = []int{20} // 21 has exited
	if g := e.GroupFor(rdt.ClassOffline, 3, rdt.DefaultPolicy()); g != rdt.GroupOffline {
		t.Errorf("GroupFor(offline) = %q", g)
	}
	pp := rdt.DefaultPolicy()
	pp.OfflinePriorityGroups = true
	if g := e.GroupFor(rdt.ClassOffline, 3, pp); g != rdt.GroupOffline {
		t.Errorf("GroupFor(offline p3) with no p3 group yet = %q, want the existing %s", g, rdt.GroupOffline)
	}
	if g := e.GroupFor(rdt.ClassSystem, 0, rdt.DefaultPolicy()); g != "" {
		t.Errorf("GroupFor(system) = %q, want the default group", g)
	}
	// The same plan again changes nothing.
	c.t = c.t.Add(time.Second)
	if got := statuses(e.Apply(context.Background(), plan)); got != "sluice-offline=unchanged sluice-online=unchanged" {
		t.Errorf("second apply = %s", got)
	}
	if got := writeLog(f); got != "" {
		t.Errorf("second apply wrote:\n%s", got)
	}

	// A task moved behind Sluice's back comes back only on the slow
	// reconcile, not on every apply.
	if err := f.WriteFile("tasks", []byte("10")); err != nil {
		t.Fatal(err)
	}
	f.ResetWrites()
	e.Apply(context.Background(), plan)
	if g, _ := f.GroupOf(10); g != "" {
		t.Errorf("task 10 moved back before the reconcile")
	}
	c.t = c.t.Add(time.Minute)
	e.Apply(context.Background(), plan)
	if got := writeLog(f); got != "sluice-online/tasks <- \"10\"\n" {
		t.Errorf("reconcile wrote:\n%s", got)
	}

	// Reclassed: /batch/a becomes online; its task moves at once.
	wl[1].Class = rdt.ClassOnline
	plan, _ = rdt.Decide(rdt.Signals{Now: c.t, Workloads: wl}, rdt.DefaultPolicy(), hw, rdt.State{})
	e.Apply(context.Background(), plan)
	if got := writeLog(f); got != "sluice-online/tasks <- \"20\"\n" {
		t.Errorf("reclass wrote:\n%s", got)
	}
}

func TestRejectedSchemataKeepsLastGoodValueAndSaysWhy(t *testing.T) {
	f := resctrltest.New(resctrltest.IntelL3())
	e := newEnforcer(t, f, cgroupTasks{}, &clock{t: time.Unix(1, 0)})
	var good, bad rdt.Schemata
	good.Set("L3", 0, 0x0f)
	bad.Set("L3", 0, 0x101)
	e.Apply(context.Background(), rdt.Plan{Groups: []rdt.GroupIntent{{Group: rdt.GroupOffline, Class: rdt.ClassOffline, Schemata: good}}})
	rs := e.Apply(context.Background(), rdt.Plan{Groups: []rdt.GroupIntent{{Group: rdt.GroupOffline, Class: rdt.ClassOffline, Schemata: bad}}})
	if len(rs) != 1 || rs[0].Status != qos.ResultFailed {
		t.Fatalf("results = %s", statuses(rs))
	}
	want := `resctrl: write sluice-offline/schemata "L3:0=101\n" (kept "L3:0=f"): write sluice-offline/schemata: invalid argument: The mask 101 has non-consecutive 1-bits`
	if rs[0].Err != want {
		t.Errorf("error = %s\nwant    %s", rs[0].Err, want)
	}
	if got := f.Schemata(rdt.GroupOffline); got != "L3:0=00f\n" {
		t.Errorf("kernel holds %q, want the last good value", got)
	}
	// Intents for groups that are not Sluice's are refused.
	if err := f.Mkdir("other-tool"); err != nil {
		t.Fatal(err)
	}
	rs = e.Apply(context.Background(), rdt.Plan{Groups: []rdt.GroupIntent{{Group: "other-tool", Class: rdt.ClassOffline, Schemata: good}}})
	if len(rs) != 1 || rs[0].Status != qos.ResultFailed || !strings.Contains(rs[0].Err, "not a Sluice group") {
		t.Errorf("another tool's group: %s", statuses(rs))
	}
	if got := f.Schemata("other-tool"); got != "L3:0=7ff\n" {
		t.Errorf("another tool's group was written: %q", got)
	}
}

func TestOutOfCLOSIDsMergesOfflinePrioritiesAndLeavesOthersAlone(t *testing.T) {
	f := resctrltest.New(resctrltest.IntelL3MB()) // 8 CLOSIDs
	// Another tool holds four groups; Sluice's online group and the
	// default group take two more: two left for three priorities.
	for _, g := range []string{"tool-a", "tool-b", "tool-c", "tool-d"} {
		if err := f.Mkdir(g); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.WriteFile("tool-a/schemata", []byte("L3:0=3\n")); err != nil {
		t.Fatal(err)
	}
	f.AddTask(1)
	f.AddTask(2)
	f.AddTask(3)
	tasks := cgroupTasks{"/b/1": {1}, "/b/2": {2}, "/b/3": {3}}
	e := newEnforcer(t, f, tasks, &clock{t: time.Unix(1, 0)})
	hw, _ := resctrl.Probe(f)
	pol := rdt.DefaultPolicy()
	pol.OfflinePriorityGroups = true
	wl := []rdt.Workload{{CgroupPath: "/b/1", Class: rdt.ClassOffline, Priority: 1}, {CgroupPath: "/b/2", Class: rdt.ClassOffline, Priority: 2}, {CgroupPath: "/b/3", Class: rdt.ClassOffline, Priority: 3}}
	plan, _ := rdt.Decide(rdt.Signals{Now: time.Unix(1, 0), Workloads: wl}, pol, hw, rdt.State{})
	rs := e.Apply(context.Background(), plan)
	got := statuses(rs)
	if !strings.Contains(got, "sluice-offline-p3=applied(mkdir sluice-offline-p3: mkdir sluice-offline-p3: no space left on device: out of CLOSIDs, offline priorities merged into sluice-offline-p1)") {
		t.Errorf("results = %s", got)
	}
	if !e.Merged() {
		t.Error("Merged() = false after ENOSPC")
	}
	// p1 and p2 were made before CLOSIDs ran out and not even one more
	// was left for sluice-offline: offline shares p1, the next plan (told
	// of the merge) moves every priority there and p2 goes.
	plan, _ = rdt.Decide(rdt.Signals{Now: time.Unix(2, 0), Workloads: wl, OfflineMerged: e.Merged()}, pol, hw, rdt.State{})
	e.Apply(context.Background(), plan)
	groups, _ := f.ReadDir("")
	if got := strings.Join(groups, ","); got != "info,mon_data,mon_groups,sluice-offline-p1,sluice-online,tool-a,tool-b,tool-c,tool-d" {
		t.Errorf("groups = %s", got)
	}
	for _, pid := range []int{1, 2, 3} {
		if g, _ := f.GroupOf(pid); g != "sluice-offline-p1" {
			t.Errorf("task %d in %q, want sluice-offline-p1", pid, g)
		}
	}
	if got := f.Schemata("tool-a"); got != "L3:0=003\nMB:0=100\n" {
		t.Errorf("another tool's group changed: %q", got)
	}
}

func TestRestartAdoptsOwnGroupsWithoutWriting(t *testing.T) {
	f := resctrltest.New(resctrltest.AMD())
	f.AddTask(7)
	tasks := cgroupTasks{"/batch/x": {7}}
	hw, _ := resctrl.Probe(f)
	wl := []rdt.Workload{{CgroupPath: "/batch/x", Class: rdt.ClassOffline}}
	plan, _ := rdt.Decide(rdt.Signals{Now: time.Unix(1, 0), Workloads: wl}, rdt.DefaultPolicy(), hw, rdt.State{})
	first := newEnforcer(t, f, tasks, &clock{t: time.Unix(1, 0)})
	first.Apply(context.Background(), plan)
	if got := f.Schemata(rdt.GroupOffline); got != "L3:0=00ff;3=00ff;8=00ff\nMB:0=1024;3=1024;8=1024\n" {
		t.Errorf("AMD offline = %q", got)
	}
	f.ResetWrites()
	again := newEnforcer(t, f, tasks, &clock{t: time.Unix(2, 0)})
	cur, err := again.Current()
	if err != nil || cur.Ways[8] != 8 || cur.MB[3] != 1024 {
		t.Errorf("Current() = %+v, %v", cur, err)
	}
	if got := statuses(again.Apply(context.Background(), plan)); got != "sluice-offline=unchanged sluice-online=unchanged" {
		t.Errorf("after restart = %s", got)
	}
	if got := writeLog(f); got != "" {
		t.Errorf("restart wrote:\n%s", got)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	f := resctrltest.New(resctrltest.IntelCDP())
	f.AddTask(5)
	e := newEnforcer(t, f, cgroupTasks{"/o": {5}}, &clock{t: time.Unix(1, 0)})
	hw, _ := resctrl.Probe(f)
	plan, _ := rdt.Decide(rdt.Signals{Now: time.Unix(1, 0), Workloads: []rdt.Workload{{CgroupPath: "/o", Class: rdt.ClassOnline}}}, rdt.DefaultPolicy(), hw, rdt.State{})
	plan.DryRun = true
	if got := statuses(e.Apply(context.Background(), plan)); got != "sluice-offline=dry-run sluice-online=dry-run" {
		t.Errorf("dry run = %s", got)
	}
	if got := writeLog(f); got != "" {
		t.Errorf("dry run wrote:\n%s", got)
	}
	groups, _ := f.ReadDir("")
	if len(groups) != 3 {
		t.Errorf("dry run made groups: %v", groups)
	}
}

func TestMonitorReadsScriptedCounters(t *testing.T) {
	f := resctrltest.New(resctrltest.IntelTwoSocket())
	if err := f.Mkdir(rdt.GroupOffline); err != nil {
		t.Fatal(err)
	}
	if err := f.Mkdir("other-tool"); err != nil {
		t.Fatal(err)
	}
	f.SetCounters(rdt.GroupOffline, 1, rdt.RawCounters{OccupancyBytes: 1 << 20, TotalBytes: 5000, HasOccupancy: true, HasTotal: true})
	f.SetCounters("", 0, rdt.RawCounters{LocalBytes: 9, HasLocal: true})
	hw, _ := resctrl.Probe(f)
	s, err := resctrl.NewMonitor(f, hw).Read(time.Unix(5, 0))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Domains[1][rdt.GroupOffline]; got.OccupancyBytes != 1<<20 || got.TotalBytes != 5000 || got.HasLocal {
		t.Errorf("offline domain 1 = %+v", got)
	}
	if got := s.Domains[0][rdt.GroupDefault]; got.LocalBytes != 9 || got.HasTotal {
		t.Errorf("default domain 0 = %+v", got)
	}
	if _, ok := s.Domains[0]["other-tool"]; ok {
		t.Error("read another tool's group")
	}
}

func TestMountWithoutResctrlIsNotSupported(t *testing.T) {
	b, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		t.Skip("no /proc/filesystems")
	}
	if strings.Contains(string(b), "resctrl") {
		t.Skip("this kernel has resctrl; the refusal cannot be tested here")
	}
	err = resctrl.Mount(t.TempDir(), "/proc")
	if !errors.Is(err, resctrl.ErrNotSupported) || !strings.Contains(err.Error(), "CONFIG_X86_CPU_RESCTRL") {
		t.Errorf("Mount = %v, want ErrNotSupported naming the kernel option", err)
	}
}
