package ebpf

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	cebpf "github.com/cilium/ebpf"

	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
	"github.com/sluicehq/sluice/test/kerneltest"
)

// spinners is how many busy loops the accounting tests run: more than the
// CPUs of the 2-CPU CI machines, so tasks wait on run queues even without
// a CPU limit.
const spinners = 3

// Busy loops run until their cgroup used this much CPU (and each waited
// at least minTaskDelay), so the comparisons are over hundreds of
// scheduling periods however loaded the machine is. On a heavily
// overloaded machine (load 20 plus stress-ng on 2 CPUs) the programs were
// seen to miss 1-5 of a few hundred waits that schedstat counted; a long
// observation keeps one such wait a small part of the total.
const (
	minCgroupCPU = 1500 * time.Millisecond
	minTaskDelay = time.Second
)

// runUntil polls done until it holds; the bound only stops a test whose
// processes cannot run at all.
func runUntil(t *testing.T, what string, done func() bool) {
	t.Helper()
	kerneltest.WaitFor(t, what, 2*time.Minute, done)
}

// makeCgroup creates a uniquely named cgroup directly under hierarchy dir
// and removes it when the test ends (after the test's processes, whose
// cleanups were registered later and so run first).
func makeCgroup(t *testing.T, dir string) string {
	t.Helper()
	return kerneltest.MakeCgroup(t, kerneltest.UniqueName("sluice-ebpf-test"), dir)[0]
}

// spinIn moves a stopped busy loop into the cgroup dir, lets it run until
// the cgroup has used 50 ms of CPU and stops it again; it returns the
// loop's pid (as startStoppedSpinners does) for the test to run it again.
func spinIn(t *testing.T, dir string) []int {
	t.Helper()
	pids := startStoppedSpinners(t, 1)
	kerneltest.WriteCgroupFile(t, filepath.Join(dir, "cgroup.procs"), strconv.Itoa(pids[0]))
	contAll(t, pids)
	runUntil(t, "the busy loop to run", func() bool { return cpuStatUsage(t, dir) >= 50*time.Millisecond })
	stopAll(t, pids)
	return pids
}

// cgroupWithID is makeCgroup that also returns the cgroup's id.
func cgroupWithID(t *testing.T, root string) (dir string, id uint64) {
	t.Helper()
	dir = makeCgroup(t, root)
	id, err := CgroupID(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, id
}

// readWindow reads the sampler, failing the test on an error.
func readWindow(t *testing.T, s *Sampler) map[uint64]CgroupStats {
	t.Helper()
	w, err := s.Read()
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// cpuStatUsage reads usage_usec from a v2 cpu.stat.
func cpuStatUsage(t *testing.T, dir string) time.Duration {
	t.Helper()
	return time.Duration(kerneltest.ReadCgroupKey(t, filepath.Join(dir, "cpu.stat"), "usage_usec")) * time.Microsecond
}

// schedInfo is /proc/<pid>/schedstat: time on CPU, time waiting on a run
// queue (run_delay) and the number of times the task was switched in.
type schedInfo struct {
	onCPU, runDelay time.Duration
	slices          uint64
}

func schedstat(t *testing.T, pid int) schedInfo {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		t.Fatalf("schedstat of %d: %q", pid, b)
	}
	on, err1 := strconv.ParseUint(f[0], 10, 64)
	delay, err2 := strconv.ParseUint(f[1], 10, 64)
	slices, err3 := strconv.ParseUint(f[2], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatalf("schedstat of %d: %v", pid, err)
	}
	return schedInfo{time.Duration(on), time.Duration(delay), slices}
}

// procState is the state letter in /proc/<pid>/stat.
func procState(t *testing.T, pid int) byte {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		t.Fatalf("stat of %d: %q", pid, b)
	}
	return b[i+2]
}

// voluntarySwitches is voluntary_ctxt_switches in /proc/<pid>/status.
func voluntarySwitches(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatalf("status of %d: %q: %v", pid, line, err)
			}
			return n
		}
	}
	t.Fatalf("status of %d: no voluntary_ctxt_switches", pid)
	return 0
}

// stopAll sends SIGSTOP to busy loops and waits until every thread of
// theirs is stopped and off its CPU: a stopped task is off the run queues,
// so its counters no longer move, and the programs count a task's last run
// and the wait before it at that switch-out. The state letter turns T
// before the task switches out; the voluntary switch count grows at the
// switch-out itself, just before the tracepoint (a busy loop switches
// voluntarily only to stop).
func stopAll(t *testing.T, pids []int) {
	t.Helper()
	nvcsw := map[int]uint64{}
	var tids []int
	for _, pid := range pids {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				t.Fatalf("/proc/%d/task/%s: %v", pid, e.Name(), err)
			}
			tids = append(tids, tid)
			nvcsw[tid] = voluntarySwitches(t, tid)
		}
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	for _, tid := range tids {
		runUntil(t, fmt.Sprintf("thread %d to stop", tid), func() bool {
			return procState(t, tid) == 'T' && voluntarySwitches(t, tid) > nvcsw[tid]
		})
	}
}

// startStoppedSpinners starts busy loops, stopped, so that they can be moved
// into cgroups and their baselines read before they run there.
func startStoppedSpinners(t *testing.T, n int) []int {
	t.Helper()
	var pids []int
	for range n {
		cmd := exec.Command("/bin/sh", "-c", "while :; do :; done")
		kerneltest.StartCmd(t, cmd)
		pids = append(pids, cmd.Process.Pid)
	}
	stopAll(t, pids)
	return pids
}

func contAll(t *testing.T, pids []int) {
	t.Helper()
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
}

func loadForTest(t *testing.T, opts Options) *Sampler {
	t.Helper()
	s, err := Load(opts)
	if errors.Is(err, ErrNotSupported) {
		kerneltest.Missing(t, kerneltest.FeatureBPF, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close sampler: %v", err)
		}
	})
	return s
}

// within reports whether got is within frac of want.
func within(got, want time.Duration, frac float64) bool {
	d := float64(got - want)
	if d < 0 {
		d = -d
	}
	return d <= frac*float64(want)
}

func attachModes() []AttachMode { return []AttachMode{AttachTPBTF, AttachRawTP} }

// TestBPFCgroupV1CPUAccounting runs busy loops in a v1 cpu cgroup capped at
// half a CPU and checks the programs against the kernel's own accounting:
// per-task run-queue delay against /proc/<pid>/schedstat run_delay, and the
// cgroup's on-CPU time against cpuacct.usage, each within 5%.
func TestBPFCgroupV1CPUAccounting(t *testing.T) {
	kerneltest.RequireBPF(t)
	cpuRoot := kerneltest.RequireCgroupV1Controller(t, "cpu")
	acctRoot := kerneltest.RequireCgroupV1Controller(t, "cpuacct")
	for _, attach := range attachModes() {
		t.Run(attach.String(), func(t *testing.T) {
			cpuDir := makeCgroup(t, cpuRoot)
			acctDir := makeCgroup(t, acctRoot)
			kerneltest.WriteCgroupFile(t, filepath.Join(cpuDir, "cpu.cfs_period_us"), "100000")
			kerneltest.WriteCgroupFile(t, filepath.Join(cpuDir, "cpu.cfs_quota_us"), "50000")
			id, err := CgroupIDFor(KeyCgroupV1CPU, hostLayout(t), filepath.Base(cpuDir))
			if err != nil {
				t.Fatal(err)
			}
			s := loadForTest(t, Options{Attach: attach, KeyMode: KeyCgroupV1CPU, trackTasksInCgroup: id})
			if got := s.Attach(); got != attach {
				t.Fatalf("Attach() = %v, want %v", got, attach)
			}

			pids := startStoppedSpinners(t, spinners)
			before := map[int]schedInfo{}
			for _, pid := range pids {
				kerneltest.WriteCgroupFile(t, filepath.Join(cpuDir, "cgroup.procs"), strconv.Itoa(pid))
				kerneltest.WriteCgroupFile(t, filepath.Join(acctDir, "cgroup.procs"), strconv.Itoa(pid))
				before[pid] = schedstat(t, pid)
			}
			readWindow(t, s) // start a window here
			contAll(t, pids)
			runUntil(t, "the busy loops to run and wait", func() bool {
				if time.Duration(kerneltest.ReadCgroupInt(t, filepath.Join(acctDir, "cpuacct.usage"))) < minCgroupCPU {
					return false
				}
				for _, pid := range pids {
					if schedstat(t, pid).runDelay-before[pid].runDelay < minTaskDelay {
						return false
					}
				}
				return true
			})
			stopAll(t, pids)

			window := readWindow(t, s)
			got := window[id]
			acct := time.Duration(kerneltest.ReadCgroupInt(t, filepath.Join(acctDir, "cpuacct.usage")))
			t.Logf("cgroup %d: eBPF on-CPU %v, cpuacct.usage %v; waits %d, delay %v, preemptions %d, %+v",
				id, got.OnCPU, acct, got.RunqCount(), got.RunqDelayTotal, got.Preemptions, Summarize(&got.RunqHist))
			if !within(got.OnCPU, acct, 0.05) {
				t.Errorf("eBPF on-CPU %v vs cpuacct.usage %v: more than 5%% apart", got.OnCPU, acct)
			}

			var sumTask time.Duration
			for _, pid := range pids {
				now := schedstat(t, pid)
				want := taskWaits{Total: now.runDelay - before[pid].runDelay, Count: now.slices - before[pid].slices}
				got, err := s.taskRunqDelay(pid)
				if err != nil {
					t.Fatal(err)
				}
				sumTask += got.Total
				t.Logf("pid %d: eBPF %d waits, %v; schedstat %d timeslices, run_delay %v (on CPU %v)",
					pid, got.Count, got.Total, want.Count, want.Total, now.onCPU-before[pid].onCPU)
				if !within(got.Total, want.Total, 0.05) {
					t.Errorf("pid %d: eBPF run-queue delay %v vs schedstat run_delay %v: more than 5%% apart", pid, got.Total, want.Total)
				}
				// The programs count the kernel's own waits (pcount),
				// so every one of them, and no other.
				if got.Count != want.Count {
					t.Errorf("pid %d: eBPF counted %d waits, schedstat %d timeslices; want the same", pid, got.Count, want.Count)
				}
			}
			if n, err := s.recursionMisses(); err != nil || n != 0 {
				t.Errorf("recursionMisses() = %d, %v; want 0", n, err)
			}
			// The spinners are the cgroup's only tasks: the per-cgroup
			// total is the sum of theirs.
			if got.RunqDelayTotal != sumTask {
				t.Errorf("cgroup run-queue delay %v != sum over its tasks %v", got.RunqDelayTotal, sumTask)
			}
			checkHistAgainstTotal(t, got)
			if got.Preemptions == 0 {
				t.Errorf("no preemptions counted for %d busy loops under a 0.5 CPU quota", spinners)
			}
			d, err := s.drops()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("drops %+v", d)
			if d.Cgroups != 0 || d.TaskSlots != 0 || d.Tasks != 0 {
				t.Errorf("Drops() = %+v; want no map full", d)
			}
		})
	}
}

// TestBPFCgroupV2Accounting keys by cgroup v2 id and checks on-CPU time
// against the v2 cgroup's cpu.stat usage_usec, and the run-queue total
// against the tasks' schedstat run_delay.
func TestBPFCgroupV2Accounting(t *testing.T) {
	kerneltest.RequireBPF(t)
	v2Root := kerneltest.RequireCgroupV2(t)
	for _, attach := range attachModes() {
		t.Run(attach.String(), func(t *testing.T) {
			dir, id := cgroupWithID(t, v2Root)
			if l := hostLayout(t); l.Unified() == v2Root {
				viaRel, err := CgroupIDFor(KeyCgroupV2, l, filepath.Base(dir))
				if err != nil || viaRel != id {
					t.Fatalf("CgroupIDFor(v2, %s) = %d, %v; want %d", filepath.Base(dir), viaRel, err, id)
				}
			}
			s := loadForTest(t, Options{Attach: attach, KeyMode: KeyCgroupV2, trackTasksInCgroup: id})

			pids := startStoppedSpinners(t, spinners)
			var delayBefore time.Duration
			for _, pid := range pids {
				kerneltest.WriteCgroupFile(t, filepath.Join(dir, "cgroup.procs"), strconv.Itoa(pid))
				delayBefore += schedstat(t, pid).runDelay
			}
			usageBefore := cpuStatUsage(t, dir)
			readWindow(t, s)
			sumDelay := func() time.Duration {
				var delay time.Duration
				for _, pid := range pids {
					delay += schedstat(t, pid).runDelay
				}
				return delay - delayBefore
			}
			contAll(t, pids)
			runUntil(t, "the busy loops to run and wait", func() bool {
				return cpuStatUsage(t, dir)-usageBefore >= minCgroupCPU && sumDelay() >= minTaskDelay
			})
			stopAll(t, pids)

			window := readWindow(t, s)
			got := window[id]
			usage := cpuStatUsage(t, dir) - usageBefore
			delay := sumDelay()
			t.Logf("cgroup %d: eBPF on-CPU %v, cpu.stat usage %v; eBPF delay %v, schedstat run_delay %v, %+v",
				id, got.OnCPU, usage, got.RunqDelayTotal, delay, Summarize(&got.RunqHist))
			if !within(got.OnCPU, usage, 0.05) {
				t.Errorf("eBPF on-CPU %v vs cpu.stat usage_usec %v: more than 5%% apart", got.OnCPU, usage)
			}
			checkHistAgainstTotal(t, got)
			if !within(got.RunqDelayTotal, delay, 0.05) {
				t.Errorf("eBPF run-queue delay %v vs schedstat run_delay %v: more than 5%% apart", got.RunqDelayTotal, delay)
			}
		})
	}
}

// checkHistAgainstTotal checks the programs' log2 slotting against their
// exact delay sum: every wait in slot i lies in [2^i, 2^(i+1)) ns.
func checkHistAgainstTotal(t *testing.T, st CgroupStats) {
	t.Helper()
	var lo, hi float64
	for i, n := range st.RunqHist {
		l, h := SlotBounds(i)
		if i == HistSlots-1 && n > 0 {
			h = float64(st.RunqDelayTotal) // open-ended slot
		}
		lo += l * float64(n)
		hi += h * float64(n)
	}
	if total := float64(st.RunqDelayTotal); total < lo || total > hi {
		t.Errorf("run-queue delay total %v outside [%v, %v] implied by the histogram %v",
			st.RunqDelayTotal, time.Duration(lo), time.Duration(hi), st.RunqHist)
	}
}

func TestProbe(t *testing.T) {
	kerneltest.RequireBPF(t)
	c, err := Probe()
	if err != nil {
		t.Fatalf("Probe on a host that passed RequireBPF: %v", err)
	}
	if !c.Usable() || !c.KernelBTF || !c.SchedInfo {
		t.Errorf("Probe = %+v, want usable with kernel BTF", c)
	}
	// What Probe says of tp_btf must be what loading the sampler's tp_btf
	// flavour finds.
	s, err := loadDetached(Options{KeyMode: KeyCgroupV2}, AttachTPBTF)
	if err == nil {
		s.Close()
	}
	if loads := err == nil; loads != c.Tracing {
		t.Errorf("Probe says tp_btf usable = %v, loading the tp_btf flavour: %v", c.Tracing, err)
	}
}

func TestBPFForget(t *testing.T) {
	kerneltest.RequireBPF(t)
	v2Root := kerneltest.RequireCgroupV2(t)
	dir, id := cgroupWithID(t, v2Root)
	s := loadForTest(t, Options{KeyMode: KeyCgroupV2})
	pids := spinIn(t, dir)
	w := readWindow(t, s)
	if w[id].OnCPU == 0 {
		t.Fatalf("cgroup %d: no on-CPU time after running a busy loop in it (window %v)", id, w[id])
	}
	var slot uint32
	if err := s.maps.CgroupSlots.Lookup(id, &slot); err != nil {
		t.Fatalf("cgroup %d: slot: %v", id, err)
	}
	if err := s.Forget(id); err != nil {
		t.Fatal(err)
	}
	// No CPU's copy of the slot may stay the cgroup's: a CPU whose last
	// cgroup it was would go on charging the slot given back.
	var perCPU []runqCgroupStats
	if err := s.maps.Stats.Lookup(slot, &perCPU); err != nil {
		t.Fatal(err)
	}
	for cpu, v := range perCPU {
		if v.CgroupId == id {
			t.Errorf("CPU %d's copy of slot %d still owned by forgotten cgroup %d", cpu, slot, id)
		}
	}
	if err := s.Forget(id); err != nil {
		t.Fatalf("second Forget: %v", err)
	}
	w = readWindow(t, s)
	if st, ok := w[id]; ok {
		t.Errorf("cgroup %d still read after Forget: %+v", id, st)
	}

	// A forgotten cgroup whose tasks run again is counted again, from
	// zero: the CPUs that charged it last must not keep charging the
	// slot it gave back.
	usageBefore := cpuStatUsage(t, dir)
	contAll(t, pids)
	runUntil(t, "the busy loop to run again", func() bool { return cpuStatUsage(t, dir)-usageBefore >= 200*time.Millisecond })
	stopAll(t, pids)
	w = readWindow(t, s)
	usage := cpuStatUsage(t, dir) - usageBefore
	if !within(w[id].OnCPU, usage, 0.05) {
		t.Errorf("cgroup %d after Forget: eBPF on-CPU %v vs cpu.stat usage since %v: more than 5%% apart", id, w[id].OnCPU, usage)
	}
}

// TestBPFCountsNewTasksFromFork runs a shell in a v2 cgroup that starts
// short-lived children, most of which switch out once or twice in their
// life: tasks started after Load must be counted from their fork, not from
// their first switch-out, for the cgroup's on-CPU time to match cpu.stat.
func TestBPFCountsNewTasksFromFork(t *testing.T) {
	kerneltest.RequireBPF(t)
	v2Root := kerneltest.RequireCgroupV2(t)
	dir, id := cgroupWithID(t, v2Root)
	s := loadForTest(t, Options{KeyMode: KeyCgroupV2})
	cmd := exec.Command("/bin/sh", "-c", "kill -STOP $$; i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done")
	kerneltest.StartCmd(t, cmd)
	runUntil(t, "the shell to stop itself", func() bool { return procState(t, cmd.Process.Pid) == 'T' })
	kerneltest.WriteCgroupFile(t, filepath.Join(dir, "cgroup.procs"), strconv.Itoa(cmd.Process.Pid))
	usageBefore := cpuStatUsage(t, dir)
	readWindow(t, s)
	contAll(t, []int{cmd.Process.Pid})
	if err := cmd.Wait(); err != nil {
		t.Fatalf("shell: %v", err)
	}
	w := readWindow(t, s)
	usage := cpuStatUsage(t, dir) - usageBefore
	t.Logf("cgroup %d: eBPF on-CPU %v, cpu.stat usage %v; %d waits", id, w[id].OnCPU, usage, w[id].RunqCount())
	if !within(w[id].OnCPU, usage, 0.05) {
		t.Errorf("eBPF on-CPU %v vs cpu.stat usage_usec %v: more than 5%% apart", w[id].OnCPU, usage)
	}
}

// TestBPFCgroupsBounded loads with room for one cgroup: the first cgroup
// to switch a task out takes it, the others (this test's own and the busy
// loop's at least) are counted as dropped.
func TestBPFCgroupsBounded(t *testing.T) {
	kerneltest.RequireBPF(t)
	v2Root := kerneltest.RequireCgroupV2(t)
	dir := makeCgroup(t, v2Root)
	s := loadForTest(t, Options{KeyMode: KeyCgroupV2, MaxCgroups: 1})
	spinIn(t, dir)
	w := readWindow(t, s)
	if len(w) != 1 {
		t.Errorf("Read() has %d cgroups, want the one that fits", len(w))
	}
	d, err := s.drops()
	if err != nil {
		t.Fatal(err)
	}
	if d.Cgroups == 0 {
		t.Errorf("Drops().Cgroups = 0 with room for one cgroup and at least two switching")
	}
}

func TestCgroupIDErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := CgroupID(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing dir: %v, want ErrNotExist naming the path", err)
	}
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := CgroupID(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file: %v, want not a directory", err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	if id, err := CgroupID(dir); err != nil || id != st.Ino {
		t.Errorf("CgroupID(%s) = %d, %v; want inode %d", dir, id, err, st.Ino)
	}
}

func TestLoadRejectsBadOptions(t *testing.T) {
	_, err := Load(Options{KeyMode: 7, Attach: 9})
	if err == nil || errors.Is(err, ErrNotSupported) ||
		!strings.Contains(err.Error(), "key mode") || !strings.Contains(err.Error(), "attach") {
		t.Errorf("Load(bad options) = %v, want an error naming key mode and attach", err)
	}
}

// hostLayout is the machine's cgroup layout, detected as the agent does.
func hostLayout(t *testing.T) cgroupfs.Layout {
	t.Helper()
	l, err := cgroupfs.Detect(kerneltest.CgroupV1Root)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestBPFReadBatchedAndPerSlot: the batched read of the stats array and
// the per-cgroup lookups give the same counters while the slots in use sit
// low; a slot far above the rest makes the batched read step aside.
func TestBPFReadBatchedAndPerSlot(t *testing.T) {
	kerneltest.RequireBPF(t)
	s := loadForTest(t, Options{KeyMode: KeyCgroupV2})
	perCPU := make([]runqCgroupStats, len(s.perCPU))
	want := map[uint64]CgroupStats{}
	put := func(id uint64, slot uint32) {
		t.Helper()
		if err := s.maps.CgroupSlots.Update(id, slot, cebpf.UpdateNoExist); err != nil {
			t.Fatal(err)
		}
		var w CgroupStats
		for i := range perCPU {
			perCPU[i] = runqCgroupStats{CgroupId: id, OncpuNs: id%1000 + uint64(i)}
			perCPU[i].RunqHist[3] = uint64(i + 1)
			w.OnCPU += time.Duration(perCPU[i].OncpuNs)
			w.RunqHist[3] += perCPU[i].RunqHist[3]
		}
		if err := s.maps.Stats.Update(slot, perCPU, cebpf.UpdateAny); err != nil {
			t.Fatal(err)
		}
		want[id] = w
	}
	// read returns the batched read's error and both reads' counters.
	read := func() (batched, perSlot map[uint64]CgroupStats, batchErr error) {
		t.Helper()
		s.mu.Lock()
		defer s.mu.Unlock()
		slots, err := s.slots()
		if err != nil {
			t.Fatal(err)
		}
		batched = map[uint64]CgroupStats{}
		batchErr = s.statsBatch(slots, batched)
		s.noBatch = true
		perSlot, err = s.totals()
		s.noBatch = false
		if err != nil {
			t.Fatal(err)
		}
		return batched, perSlot, batchErr
	}
	// Synthetic ids beyond any real cgroup's, in free slots taken as the
	// programs take them: packed low.
	for i := range 20 {
		var slot uint32
		if err := s.maps.FreeSlots.LookupAndDelete(nil, &slot); err != nil {
			t.Fatal(err)
		}
		put(uint64(1<<40+100+i), slot)
	}
	batched, perSlot, err := read()
	if err != nil {
		t.Fatalf("batched read of slots packed low: %v", err)
	}
	for id, w := range want {
		if b, p := batched[id], perSlot[id]; b != p || b.OnCPU != w.OnCPU || b.RunqHist != w.RunqHist {
			t.Errorf("cgroup %d: batched %+v, per slot %+v; want on-CPU %v", id, b, p, w.OnCPU)
		}
	}
	// One slot far above the rest (no program reaches it here).
	top := s.maps.Stats.MaxEntries() - 1
	put(1<<40+99, top)
	if _, perSlot, err = read(); !errors.Is(err, errSparse) {
		t.Errorf("batched read with slot %d in use: %v, want errSparse", top, err)
	}
	if p := perSlot[1<<40+99]; p.OnCPU != want[1<<40+99].OnCPU {
		t.Errorf("sparse slot read per slot: %+v, want on-CPU %v", p, want[1<<40+99].OnCPU)
	}
}

// TestBPFReadReusesSlots: with SlotReads 3 a cgroup that takes a slot
// after a refresh is read from the next refresh on, with everything it
// counted meanwhile; a forgotten one is not read again.
func TestBPFReadReusesSlots(t *testing.T) {
	kerneltest.RequireBPF(t)
	s := loadForTest(t, Options{KeyMode: KeyCgroupV2, SlotReads: 3})
	perCPU := make([]runqCgroupStats, len(s.perCPU))
	const id = 1<<40 + 7
	if _, err := s.Read(); err != nil { // the refresh: id has no slot yet
		t.Fatal(err)
	}
	var slot uint32
	if err := s.maps.FreeSlots.LookupAndDelete(nil, &slot); err != nil {
		t.Fatal(err)
	}
	if err := s.maps.CgroupSlots.Update(uint64(id), slot, cebpf.UpdateNoExist); err != nil {
		t.Fatal(err)
	}
	for i := range perCPU {
		perCPU[i] = runqCgroupStats{CgroupId: id, OncpuNs: 1000}
	}
	if err := s.maps.Stats.Update(slot, perCPU, cebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 3; i++ {
		w, err := s.Read()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := w[id]; ok {
			t.Fatalf("read %d: the new cgroup read before the slots' refresh", i)
		}
	}
	w, err := s.Read()
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Duration(1000 * len(perCPU)); w[id].OnCPU != want {
		t.Fatalf("read 4 (refresh): new cgroup on-CPU %v, want %v", w[id].OnCPU, want)
	}
	if err := s.Forget(id); err != nil {
		t.Fatal(err)
	}
	if w, err = s.Read(); err != nil {
		t.Fatal(err)
	} else if st, ok := w[id]; ok {
		t.Errorf("forgotten cgroup read from the reused slots: %+v", st)
	}
}

// TestBPFWatch: with a watch list Read reports only the cgroups on it, a
// cgroup watched anew from the Read after the one that finds it (so what
// it ran before it was watched is never reported), and Watch(nil) reports
// every cgroup again.
func TestBPFWatch(t *testing.T) {
	kerneltest.RequireBPF(t)
	v2Root := kerneltest.RequireCgroupV2(t)
	a, idA := cgroupWithID(t, v2Root)
	b, idB := cgroupWithID(t, v2Root)
	s := loadForTest(t, Options{KeyMode: KeyCgroupV2})
	spinIn(t, a)
	spinIn(t, b)
	s.Watch([]uint64{idA})
	if w := readWindow(t, s); len(w) != 0 {
		t.Fatalf("first Read after Watch: %v; want nothing (the unwatched %d left out, the new %d only recorded)", w, idB, idA)
	}
	spinIn(t, a)
	spinIn(t, b)
	w := readWindow(t, s)
	if _, ok := w[idB]; ok {
		t.Errorf("unwatched cgroup %d read: %+v", idB, w[idB])
	}
	total := cpuStatUsage(t, a)
	if got := w[idA].OnCPU; got == 0 || got > total-40*time.Millisecond {
		t.Errorf("watched cgroup %d: %v on CPU in the window, want the second busy loop's only (cgroup total %v, the first ran 50ms+)", idA, got, total)
	}
	s.Watch(nil)
	spinIn(t, b)
	if w := readWindow(t, s); w[idB].OnCPU == 0 {
		t.Errorf("after Watch(nil) cgroup %d not read: %v", idB, w)
	}
}

// TestBPFEvictsUnwatched fills a small counter map with cgroups the caller
// does not watch (as a host that starts and removes other cgroups does):
// once they hold more than half of it, a Read gives their slots back, so a
// cgroup watched afterwards is still counted. Without that it would find
// the map full and never be counted.
func TestBPFEvictsUnwatched(t *testing.T) {
	kerneltest.RequireBPF(t)
	v2Root := kerneltest.RequireCgroupV2(t)
	const maxCgroups = 8
	s := loadForTest(t, Options{KeyMode: KeyCgroupV2, MaxCgroups: maxCgroups})
	a, idA := cgroupWithID(t, v2Root)
	s.Watch([]uint64{idA})
	spinIn(t, a)
	var others []uint64
	for range maxCgroups {
		dir, id := cgroupWithID(t, v2Root)
		spinIn(t, dir)
		others = append(others, id)
	}
	if d, err := s.drops(); err != nil || d.Cgroups == 0 {
		t.Fatalf("drops = %+v, %v: want the map full, cgroups not counted, before any Read", d, err)
	}
	readWindow(t, s)
	slots, err := s.slots()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range others {
		if _, ok := slots[id]; ok {
			t.Errorf("unwatched cgroup %d still holds a slot after a Read with the map full", id)
		}
	}
	if _, ok := slots[idA]; !ok {
		t.Errorf("watched cgroup %d lost its slot", idA)
	}

	c, idC := cgroupWithID(t, v2Root)
	s.Watch([]uint64{idA, idC})
	spinIn(t, c)
	readWindow(t, s) // records where c's counters stand
	spinIn(t, c)
	if w := readWindow(t, s); w[idC].OnCPU == 0 {
		t.Errorf("cgroup %d watched after the map had filled is not counted: %v", idC, w)
	}
}
