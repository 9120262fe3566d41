package e2e

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	cebpf "github.com/cilium/ebpf"
	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/test/kerneltest"
)

// buildAgent compiles sluice-agent into a temporary directory.
func buildAgent(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "sluice-agent")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/sluicehq/sluice/cmd/sluice-agent").CombinedOutput()
	if err != nil {
		tb.Fatalf("build sluice-agent: %v\n%s", err, out)
	}
	return bin
}

// agentCPUCgroup makes a cpuacct cgroup for the agent and returns join,
// which moves pid (all its threads) into it, and a reader of its CPU time:
// the scheduler's exact count in nanoseconds, threads that exited
// included. (/proc/<pid>/stat counts in 10 ms clock ticks: 0.2% of a core
// over a 5 s window, the size of the differences measured.) The cgroup has
// no cpu controller, so the agent is scheduled as before. Call it before
// starting the agent (see kerneltest.MakeCgroup).
func agentCPUCgroup(tb testing.TB) (join func(pid int), usage func() time.Duration) {
	tb.Helper()
	rel := "/" + kerneltest.UniqueName("sluice-bench-agent")
	dirs := kerneltest.MakeCgroup(tb, rel, kerneltest.RequireCgroupV1Controller(tb, "cpuacct"))
	return func(pid int) {
			kerneltest.WriteCgroupFile(tb, filepath.Join(dirs[0], "cgroup.procs"), strconv.Itoa(pid))
		}, func() time.Duration {
			return cpuacctUsage(tb, rel)
		}
}

// procRSS is a process's resident set from /proc/<pid>/status, in bytes.
func procRSS(tb testing.TB, pid int) uint64 {
	tb.Helper()
	p, err := procfs.NewProc(pid)
	if err != nil {
		tb.Fatal(err)
	}
	st, err := p.NewStatus()
	if err != nil {
		tb.Fatal(err)
	}
	return st.VmRSS
}

// ctxSwitches sums the context switches of every thread of pid
// (/proc/<pid>/task/*/status, voluntary and not): on a VM, where a switch
// costs most, what the agent's CPU mostly is. Threads that exited are not
// counted; the Go runtime keeps its threads.
func ctxSwitches(tb testing.TB, pid int) int64 {
	tb.Helper()
	threads, err := procfs.AllThreads(pid)
	if err != nil {
		tb.Fatal(err)
	}
	var n int64
	for _, t := range threads {
		st, err := t.NewStatus()
		if err != nil {
			continue // exited meanwhile
		}
		n += int64(st.TotalCtxtSwitches())
	}
	return n
}

// agentProfile, when set, makes BenchmarkAgentOverhead run the agent with
// -pprof and save a CPU profile of each measured window as
// <prefix>-<variant>-<n>.pprof (read with go tool pprof -top BINARY FILE;
// the binary is kept next to the profiles as <prefix>-sluice-agent).
var agentProfile = flag.String("agentprofile", "", "file prefix for CPU profiles of the agent over each measured window of BenchmarkAgentOverhead")

// BenchmarkAgentOverhead runs the real sluice-agent binary (default ticks:
// 100 ms host, 1 s workloads) on this host with 100 host cgroups classed by
// a policy rule, each holding a sleeping process, and reports the agent's
// own CPU use as a percentage of one core (the mean over every 10 s window,
// and the worst window) and its resident memory. With eBPF on, the agent's
// CPU includes its programs' run time as the kernel measures it
// (BPF_STATS_RUN_TIME, enabled for the benchmark): the scheduler charges
// that time to whatever task was switching, not to the agent. Variants:
// dry-run with the eBPF scheduler sampler off (procfs and cgroups only) and
// on, and enforcing, without and with eBPF (the default): the 100 cgroups
// sit under an offline parent the benchmark makes, the policy enforces, so
// every tick holds the parent's CFS quota, shares, memory limits and the
// tasks' oom_score_adj. Windows are 5 s. It also reports the agent's
// context switches a second (ctxsw/s, see ctxSwitches).
// Goal: under 1% of a core (every window) and under 40 MB in every variant.
//
//	go test -run '^$' -bench AgentOverhead -benchtime 3x ./test/e2e/
//	go test -run '^$' -bench AgentOverhead -benchtime 1x ./test/e2e/ -agentprofile /tmp/agent
func BenchmarkAgentOverhead(b *testing.B) {
	b.Run("procfs", func(b *testing.B) { benchAgentOverhead(b, "procfs", false, "-no-ebpf") })
	b.Run("ebpf", func(b *testing.B) { benchAgentOverhead(b, "ebpf", false) })
	b.Run("enforcing", func(b *testing.B) { benchAgentOverhead(b, "enforcing", true, "-no-ebpf") })
	b.Run("enforcing-ebpf", func(b *testing.B) { benchAgentOverhead(b, "enforcing-ebpf", true) })
	// The same with the kernel's timer slack and the runtime's own
	// GOMAXPROCS, as the agent ran before it quieted its runtime (see
	// agent.QuietRuntime): the baseline for that choice. To interleave
	// the two, run the command several times (-count repeats each variant
	// back to back).
	b.Run("enforcing-ebpf-runtime-defaults", func(b *testing.B) {
		benchAgentOverhead(b, "enforcing-ebpf-runtime-defaults", true, "-timer-slack=0", "GOMAXPROCS="+strconv.Itoa(runtime.NumCPU()))
	})
}

// bpfProgIDs lists the ids of the BPF programs loaded now.
func bpfProgIDs(tb testing.TB) map[cebpf.ProgramID]bool {
	tb.Helper()
	ids := map[cebpf.ProgramID]bool{}
	for id := cebpf.ProgramID(0); ; {
		next, err := cebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return ids
		}
		if err != nil {
			tb.Fatalf("list BPF programs: %v", err)
		}
		ids[next], id = true, next
	}
}

// bpfRunTime sums the kernel's run time of the programs loaded since
// before (the agent's).
func bpfRunTime(tb testing.TB, before map[cebpf.ProgramID]bool) time.Duration {
	tb.Helper()
	var total time.Duration
	for id := range bpfProgIDs(tb) {
		if before[id] {
			continue
		}
		p, err := cebpf.NewProgramFromID(id)
		if err != nil {
			continue // unloaded meanwhile
		}
		if st, err := p.Stats(); err == nil {
			total += st.Runtime
		}
		p.Close()
	}
	return total
}

// benchAgentOverhead runs one variant: extra holds the agent's flags and
// NAME=value settings for its environment.
func benchAgentOverhead(b *testing.B, variant string, enforce bool, extra ...string) {
	kerneltest.RequireCgroupV1Controller(b, "cpuacct")
	const n = 100
	parent := "/" + kerneltest.UniqueName("sluice-bench")
	if enforce {
		// The enforcer may pin the offline parent in the cpuset hierarchy
		// too; whatever it creates there goes at cleanup.
		kerneltest.CleanupCgroup(b, parent, filepath.Join(cgroupRoot, "cpuset"))
	}
	for i := range n {
		hostCgroup(b, fmt.Sprintf("%s/w%03d", parent, i), "sleep", "3600")
	}
	dir := b.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	text := fmt.Sprintf("version: 1\ndryRun: true\nrules:\n  - name: bench\n    cgroup: %q\n    class: offline\n", parent+"/w*")
	if enforce {
		text = fmt.Sprintf("version: 1\ndryRun: false\nofflineParent: %q\nrules:\n  - name: bench\n    cgroup: %q\n    class: offline\n", parent, parent+"/w*")
	}
	if err := os.WriteFile(policy, []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	bin := buildAgent(b)
	stats, err := cebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Logf("BPF run-time stats unavailable (%v): the agent's programs are not counted", err)
	} else {
		b.Cleanup(func() { stats.Close() })
	}
	progsBefore := bpfProgIDs(b)
	addr := "127.0.0.1:19477"
	args := []string{"-policy", policy, "-containerd", "", "-listen", addr, "-log-level", "warn"}
	var env []string
	for _, e := range extra {
		if strings.HasPrefix(e, "-") {
			args = append(args, e)
		} else {
			env = append(env, e)
		}
	}
	if *agentProfile != "" {
		args = append(args, "-pprof")
		kerneltest.CopyExecutable(b, bin, *agentProfile+"-sluice-agent")
	}
	joinCgroup, agentCPU := agentCPUCgroup(b)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	kerneltest.StartCmd(b, cmd)
	joinCgroup(cmd.Process.Pid)

	// Wait until the agent lists all 100 workloads and, when enforcing,
	// has capped the offline parent.
	deadline := time.Now().Add(60 * time.Second)
	for {
		count := workloadCount(addr)
		capped := !enforce || readTrimmed(filepath.Join(cgroupRoot, "cpu", parent, "cpu.cfs_quota_us")) != "-1"
		if count == n && capped {
			break
		} else if time.Now().After(deadline) {
			b.Fatalf("agent lists %d workloads, want %d; offline parent capped: %v", count, n, capped)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if enforce {
		// Every offline task must have been given the offline oom_score_adj:
		// the enforcing variant measures an agent that really enforces.
		for i := range n {
			procs := readTrimmed(filepath.Join(cgroupRoot, "cpu", fmt.Sprintf("%s/w%03d", parent, i), "cgroup.procs"))
			if procs == "" {
				b.Fatalf("cgroup %s/w%03d lost its process", parent, i)
			}
			if adj := readTrimmed("/proc/" + procs + "/oom_score_adj"); adj != strconv.Itoa(qos.OfflineOOMScoreAdj) {
				b.Fatalf("pid %s in %s/w%03d: oom_score_adj %q, want %d", procs, parent, i, adj, qos.OfflineOOMScoreAdj)
			}
		}
	}
	const window = 5 * time.Second
	var cpu, wall time.Duration
	var worst float64
	var rss uint64
	var switches int64
	b.ResetTimer()
	for i := range b.N {
		bpf0 := bpfRunTime(b, progsBefore)
		s0 := ctxSwitches(b, cmd.Process.Pid)
		c0, t0 := agentCPU()+bpf0, time.Now()
		if *agentProfile != "" {
			saveProfile(b, addr, window, fmt.Sprintf("%s-%s-%d.pprof", *agentProfile, variant, i))
		} else {
			time.Sleep(window)
		}
		bpf1 := bpfRunTime(b, progsBefore)
		c1, t1 := agentCPU()+bpf1, time.Now()
		s1 := ctxSwitches(b, cmd.Process.Pid)
		pct := 100 * float64(c1-c0) / float64(t1.Sub(t0))
		b.Logf("window %d: %.2f%% of a core, of which BPF programs %.2f%%; %.0f context switches/s",
			i, pct, 100*float64(bpf1-bpf0)/float64(t1.Sub(t0)), float64(s1-s0)/t1.Sub(t0).Seconds())
		switches += s1 - s0
		cpu, wall, worst = cpu+c1-c0, wall+t1.Sub(t0), max(worst, pct)
		rss = max(rss, procRSS(b, cmd.Process.Pid))
	}
	b.ReportMetric(100*float64(cpu)/float64(wall), "%core")
	b.ReportMetric(worst, "%core-worst")
	b.ReportMetric(float64(rss)/(1<<20), "MiB-rss")
	b.ReportMetric(float64(switches)/wall.Seconds(), "ctxsw/s")
}

// saveProfile fetches a CPU profile of the agent over d into file.
func saveProfile(tb testing.TB, addr string, d time.Duration, file string) {
	tb.Helper()
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(d.Seconds())))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("profile: %s", resp.Status)
	}
	out, err := os.Create(file)
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, resp.Body); err != nil {
		tb.Fatal(err)
	}
}

// readTrimmed reads a small kernel file; "" when it cannot be read.
func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func workloadCount(addr string) int {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), `sluice_class_workloads{class="offline"} `); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}
