package sample

import (
	"bufio"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/test/kerneltest"
)

const cgroupRoot = "/sys/fs/cgroup"

// TestRealCgroupV1CPUAccuracy is the acceptance check: a busy loop capped
// at 0.5 CPU in a fresh v1 cpu+cpuacct cgroup, sampled every 250 ms for
// 5 s. The meter's average must be within 5% of the cgroup's own
// accounting (cpuacct.usage read directly) and of the task's own CPU time
// (/proc/<pid>/stat), and must respect the cap.
func TestRealCgroupV1CPUAccuracy(t *testing.T) {
	cpuRoot := kerneltest.RequireCgroupV1Controller(t, "cpu")
	acctRoot := kerneltest.RequireCgroupV1Controller(t, "cpuacct")
	layout := layoutOf(t, cgroupRoot)
	name := kerneltest.UniqueName("sluice-sample")
	// MakeCgroup creates a co-mounted cpu,cpuacct hierarchy's cgroup once.
	dirs := kerneltest.MakeCgroup(t, name, cpuRoot, acctRoot)
	cpuDir, acctDir := dirs[0], dirs[1]
	kerneltest.WriteCgroupFile(t, filepath.Join(cpuDir, "cpu.cfs_period_us"), "100000")
	kerneltest.WriteCgroupFile(t, filepath.Join(cpuDir, "cpu.cfs_quota_us"), "50000")

	child := kerneltest.StartChild(t, kerneltest.WorkloadSpin, cpuDir, acctDir)
	pid := child.Pid()

	r, err := NewCgroupReader(layout)
	if err != nil {
		t.Fatal(err)
	}
	m := NewCPUMeter()
	path := "/" + name
	observe := func() (time.Time, int64, bool) {
		total, err := r.CPU(path)
		if err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		milli, ok := m.Observe(path, total, at)
		return at, milli, ok
	}

	acct0 := uint64(kerneltest.ReadCgroupInt(t, filepath.Join(acctDir, "cpuacct.usage")))
	proc0 := procCPUTime(t, pid)
	start, _, ok := observe()
	if ok {
		t.Fatal("first observation had a rate")
	}
	// Each rate covers the interval since the previous observation; on a
	// loaded machine the intervals differ, so the window's average weights
	// each rate by its interval.
	var rates []int64
	var weighted float64
	end := start
	for end.Sub(start) < 5*time.Second {
		time.Sleep(250 * time.Millisecond)
		at, milli, ok := observe()
		if !ok {
			t.Fatalf("observation at %v had no rate", at.Sub(start))
		}
		rates = append(rates, milli)
		weighted += float64(milli) * at.Sub(end).Seconds()
		end = at
	}
	acct1 := uint64(kerneltest.ReadCgroupInt(t, filepath.Join(acctDir, "cpuacct.usage")))
	proc1 := procCPUTime(t, pid)

	wall := end.Sub(start).Seconds()
	meterAvg := weighted / wall
	acctMilli := float64(acct1-acct0) / 1e6 / wall
	procMilli := float64(proc1-proc0) / 1e6 / wall
	t.Logf("%d samples over %.2fs: meter %.1f milli-CPU, cpuacct.usage %.1f, /proc/pid/stat %.1f, cap 500",
		len(rates), wall, meterAvg, acctMilli, procMilli)
	if !within(meterAvg, acctMilli, 0.05) {
		t.Errorf("meter average %.1f not within 5%% of cpuacct.usage %.1f", meterAvg, acctMilli)
	}
	if !within(meterAvg, procMilli, 0.05) {
		t.Errorf("meter average %.1f not within 5%% of /proc/%d/stat %.1f", meterAvg, pid, procMilli)
	}
	// Upper bound only: a loaded CI machine may give the loop less than
	// its cap, never more. The lower bound proves the task was measured.
	if meterAvg > 550 || meterAvg < 50 {
		t.Errorf("meter average %.1f milli-CPU outside (50, 550] for a loop capped at 500", meterAvg)
	}

	// Once the container is gone the reader says so in a way callers can skip.
	_ = child.Cmd.Process.Kill()
	<-child.Done()
	kerneltest.RemoveTree(t, cpuDir)
	kerneltest.RemoveTree(t, acctDir)
	if _, err := r.CPU(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CPU of a removed cgroup = %v, want fs.ErrNotExist", err)
	}
}

// TestRealCgroupV1Memory checks the working set and limit of a fresh v1
// memory cgroup holding a task that touched 64 MiB of anonymous memory.
func TestRealCgroupV1Memory(t *testing.T) {
	memRoot := kerneltest.RequireCgroupV1Controller(t, "memory")
	kerneltest.RequireCgroupV1Controller(t, "cpuacct")
	layout := layoutOf(t, cgroupRoot)
	name := kerneltest.UniqueName("sluice-sample")
	dirs := kerneltest.MakeCgroup(t, name, memRoot, filepath.Join(cgroupRoot, "cpuacct"))
	memDir, acctDir := dirs[0], dirs[1]
	kerneltest.WriteCgroupFile(t, filepath.Join(memDir, "memory.limit_in_bytes"), "268435456")

	// Start the child in the cgroup from its first page: a shell moves
	// itself, then execs the test binary, whose stdin gate is already open.
	child := kerneltest.ChildCommand(kerneltest.WorkloadHogPrefix + "64")
	child.Stdin = strings.NewReader("go\n")
	child.Path = "/bin/sh"
	child.Args = []string{"sh", "-c", `echo $$ > "$1/cgroup.procs" && echo $$ > "$2/cgroup.procs" && exec "$3" -test.run='^$'`, "sh", memDir, acctDir, child.Args[0]}
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("child: %q, %v", line, err)
	}
	r, err := NewCgroupReader(layout)
	if err != nil {
		t.Fatal(err)
	}
	u, err := r.Usage("/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("usage: %+v", u)
	const mib = 1 << 20
	if u.MemoryLimitBytes != 256*mib {
		t.Errorf("MemoryLimitBytes = %d, want %d", u.MemoryLimitBytes, 256*mib)
	}
	// 64 MiB touched plus the Go runtime and binary pages; page cache of
	// the binary is file-backed and partly inactive.
	if u.MemoryUsageBytes < 64*mib || u.MemoryUsageBytes > 160*mib {
		t.Errorf("MemoryUsageBytes = %d MiB, want 64-160 MiB", u.MemoryUsageBytes/mib)
	}
	if u.CPUTotal <= 0 {
		t.Errorf("CPUTotal = %v, want > 0 (the child ran)", u.CPUTotal)
	}
	// An unlimited root limit reads as 0.
	if _, lim, err := r.Memory("/"); err != nil || lim != 0 {
		t.Errorf("root memory limit = %d, %v; want 0 (unlimited)", lim, err)
	}
}

// TestRealCgroupV2CPUStat reads usage_usec from a fresh cgroup in the v2
// hierarchy (the controller-less unified mount on hybrid hosts) and
// compares it with the busy task's own CPU time.
func TestRealCgroupV2CPUStat(t *testing.T) {
	root := kerneltest.RequireCgroupV2(t)
	name := kerneltest.UniqueName("sluice-sample")
	dir := kerneltest.MakeCgroup(t, name, root)[0]
	r, err := NewCgroupReader(layoutOf(t, root))
	if err != nil {
		t.Fatal(err)
	}
	if cpu, err := r.CPU("/" + name); err != nil || cpu != 0 {
		t.Fatalf("empty cgroup: CPU = %v, %v; want 0", cpu, err)
	}
	child := kerneltest.StartChild(t, kerneltest.WorkloadSpin, dir)
	pid := child.Pid()

	cg0, err := r.CPU("/" + name)
	if err != nil {
		t.Fatal(err)
	}
	p0 := procCPUTime(t, pid)
	time.Sleep(2 * time.Second)
	cg1, err := r.CPU("/" + name)
	if err != nil {
		t.Fatal(err)
	}
	p1 := procCPUTime(t, pid)
	t.Logf("cpu.stat usage_usec delta %v, /proc/%d/stat delta %v", cg1-cg0, pid, p1-p0)
	if cg1 <= cg0 {
		t.Fatalf("usage_usec did not grow: %v -> %v", cg0, cg1)
	}
	// /proc/<pid>/stat counts in 10 ms ticks: allow 5% plus two ticks.
	if d := (cg1 - cg0) - (p1 - p0); d.Abs() > (p1-p0)/20+20*time.Millisecond {
		t.Errorf("cpu.stat delta %v vs task CPU delta %v: differ by %v", cg1-cg0, p1-p0, d)
	}

	// Without the memory controller (hybrid hosts) memory is reported as
	// a missing controller, not as a vanished cgroup.
	if !controllerEnabled(t, root, "memory") {
		_, err := r.Usage("/" + name)
		if !errors.Is(err, ErrNoController) || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Usage without memory controller = %v, want ErrNoController", err)
		}
	}
	_ = child.Cmd.Process.Kill()
	<-child.Done()
	kerneltest.RemoveTree(t, dir)
	if _, err := r.CPU("/" + name); !errors.Is(err, ErrCgroupGone) {
		t.Errorf("CPU of a removed cgroup = %v, want ErrCgroupGone", err)
	}
}

func controllerEnabled(t *testing.T, root, controller string) bool {
	t.Helper()
	b, err := readFileString(filepath.Join(root, "cgroup.subtree_control"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range strings.Fields(b) {
		if c == controller {
			return true
		}
	}
	return false
}

// TestRealCgroupHeldFiles checks the reader's open cgroup files against the
// kernel: held files are re-read afresh, do not keep their cgroup from
// being removed, report a removed cgroup as gone, follow a cgroup created
// again under the same path, and are closed once unused.
func TestRealCgroupHeldFiles(t *testing.T) {
	acctRoot := kerneltest.RequireCgroupV1Controller(t, "cpuacct")
	memRoot := kerneltest.RequireCgroupV1Controller(t, "memory")
	layout := layoutOf(t, cgroupRoot)
	r, err := NewCgroupReader(layout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	name := kerneltest.UniqueName("sluice-held")
	path := "/" + name
	dirs := kerneltest.MakeCgroup(t, name, acctRoot, memRoot)
	child := kerneltest.StartChild(t, kerneltest.WorkloadSpin, dirs...)

	first, err := r.Usage(path)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	second, err := r.Usage(path)
	if err != nil {
		t.Fatal(err)
	}
	if second.CPUTotal <= first.CPUTotal {
		t.Fatalf("CPU %v then %v from held files of a spinning cgroup: want it to grow", first.CPUTotal, second.CPUTotal)
	}
	if n := r.CloseUnused(); n != 4 {
		t.Fatalf("%d files held after reading one v1 cgroup, want 4 (cpuacct.usage and three memory files)", n)
	}

	_ = child.Cmd.Process.Kill()
	<-child.Done()
	for _, d := range dirs {
		kerneltest.RemoveTree(t, d) // fails the test if a held file kept it
	}
	if _, err := r.Usage(path); !errors.Is(err, ErrCgroupGone) {
		t.Fatalf("Usage of the removed cgroup = %v, want ErrCgroupGone", err)
	}

	kerneltest.MakeCgroup(t, name, acctRoot, memRoot)
	again, err := r.Usage(path)
	if err != nil {
		t.Fatal(err)
	}
	if again.CPUTotal >= second.CPUTotal {
		t.Fatalf("CPU %v in the cgroup made again under the same path, want the new cgroup's (below %v)", again.CPUTotal, second.CPUTotal)
	}
	if n := r.CloseUnused(); n != 4 {
		t.Fatalf("%d files held after reading the new cgroup, want 4", n)
	}
	if n := r.CloseUnused(); n != 0 {
		t.Fatalf("%d files held after a sweep without reads, want 0", n)
	}
}

// TestRealCgroupV1Members lists a cpuacct cgroup's children and whether it
// holds a process, as the agent's fast tick plans its reads from them, and
// checks that with no process of its own its counter is exactly its
// children's sum (the kernel charges every level), which the plan relies on.
func TestRealCgroupV1Members(t *testing.T) {
	acctRoot := kerneltest.RequireCgroupV1Controller(t, "cpuacct")
	name := kerneltest.UniqueName("sluice-members")
	parent := kerneltest.MakeCgroup(t, name, acctRoot)[0]
	kerneltest.MakeCgroup(t, name+"/a", acctRoot)
	kerneltest.MakeCgroup(t, name+"/b", acctRoot)
	r, err := NewCgroupReader(layoutOf(t, cgroupRoot))
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Members("/" + name)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m.Children)
	if !slices.Equal(m.Children, []string{"a", "b"}) || m.Tasks {
		t.Errorf("Members(parent) = %+v, want children [a b] and no process", m)
	}
	child := kerneltest.StartChild(t, kerneltest.WorkloadSpin, filepath.Join(parent, "a"))
	if m, err := r.Members("/" + name + "/a"); err != nil || !m.Tasks || len(m.Children) != 0 {
		t.Errorf("Members(a) with a process = %+v, %v; want a process and no children", m, err)
	}
	if m, err := r.Members("/" + name); err != nil || m.Tasks {
		t.Errorf("Members(parent) with a process in a child = %+v, %v; want no process of its own", m, err)
	}
	time.Sleep(200 * time.Millisecond)
	// Stopped first, so the two reads below see the same totals.
	_ = child.Cmd.Process.Kill()
	<-child.Done()
	sum := time.Duration(0)
	for _, c := range []string{"a", "b"} {
		v, err := r.CPU("/" + name + "/" + c)
		if err != nil {
			t.Fatal(err)
		}
		sum += v
	}
	total, err := r.CPU("/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if sum == 0 || total != sum {
		t.Errorf("parent's cpuacct.usage %v, children's sum %v: want the same, and not zero", total, sum)
	}
	kerneltest.RemoveTree(t, parent)
	if _, err := r.Members("/" + name); !errors.Is(err, ErrCgroupGone) {
		t.Errorf("Members of a removed cgroup = %v, want ErrCgroupGone", err)
	}
}
