package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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

// procCPU is a process's user+system time from /proc/<pid>/stat.
func procCPU(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields overall, in clock ticks (USER_HZ = 100 on Linux).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// procRSS is a process's resident set from /proc/<pid>/status, in bytes.
func procRSS(tb testing.TB, pid int) uint64 {
	tb.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}

// BenchmarkAgentOverhead runs the real sluice-agent binary (dry-run, default
// ticks: 100 ms host, 1 s workloads) on this host with 100 host cgroups
// classed by policy rules, each holding a process, and reports the agent's
// own CPU use as a percentage of one core and its resident memory, with
// the eBPF scheduler sampler on and off (procfs and cgroups only).
// Goal: under 1% of a core and under 40 MB.
//
//	go test -run '^$' -bench AgentOverhead -benchtime 1x ./test/e2e/
func BenchmarkAgentOverhead(b *testing.B) {
	b.Run("procfs", func(b *testing.B) { benchAgentOverhead(b, "-no-ebpf") })
	b.Run("ebpf", func(b *testing.B) { benchAgentOverhead(b) })
}

func benchAgentOverhead(b *testing.B, extra ...string) {
	kerneltest.RequireCgroupV1Controller(b, "cpuacct")
	const n = 100
	parent := "/" + kerneltest.UniqueName("sluice-bench")
	for i := range n {
		hostCgroup(b, fmt.Sprintf("%s/w%03d", parent, i), "sleep", "3600")
	}
	dir := b.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	rule := fmt.Sprintf("version: 1\ndryRun: true\nrules:\n  - name: bench\n    cgroup: %q\n    class: offline\n", parent+"/w*")
	if err := os.WriteFile(policy, []byte(rule), 0o644); err != nil {
		b.Fatal(err)
	}
	bin := buildAgent(b)
	addr := "127.0.0.1:19477"
	args := append([]string{"-policy", policy, "-containerd", "", "-listen", addr, "-log-level", "warn"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	// Wait until the agent lists all 100 workloads.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if count := workloadCount(addr); count == n {
			break
		} else if time.Now().After(deadline) {
			b.Fatalf("agent lists %d workloads, want %d", count, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	const window = 10 * time.Second
	b.ResetTimer()
	for range b.N {
		c0, t0 := procCPU(b, cmd.Process.Pid), time.Now()
		time.Sleep(window)
		c1, t1 := procCPU(b, cmd.Process.Pid), time.Now()
		b.ReportMetric(100*float64(c1-c0)/float64(t1.Sub(t0)), "%core")
		b.ReportMetric(float64(procRSS(b, cmd.Process.Pid))/(1<<20), "MiB-rss")
	}
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
