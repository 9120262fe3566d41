package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup"
	"github.com/sluicehq/sluice/test/kerneltest"
)

// colo sets up an online and an offline cgroup under a unique parent in the
// cpu, cpuacct and memory v1 hierarchies; they, and the parent's tree in
// the cpuset hierarchy (where the enforcer may pin the offline parent), go
// at cleanup. Two busy loops keep the offline budget in use until the
// test ends; pol is the default policy, enforcing, on that offline parent.
func colo(tb testing.TB) (online, offline string, pol qos.Policy) {
	tb.Helper()
	var roots []string
	for _, ctrl := range []string{"cpu", "cpuacct", "memory"} {
		roots = append(roots, filepath.Join(cgroupRoot, ctrl))
	}
	base := kerneltest.UniqueCgroup(tb, "sluice-e2e", append(roots, filepath.Join(cgroupRoot, "cpuset"))...)
	online, offline = base+"/online", base+"/offline"
	kerneltest.MakeCgroup(tb, online, roots...)
	kerneltest.MakeCgroup(tb, offline, roots...)
	offBusy := busyIn(tb, offline, 2)
	tb.Cleanup(func() { stop(offBusy) })
	pol = qos.DefaultPolicy()
	pol.DryRun = false
	pol.OfflineParent = offline
	return online, offline, pol
}

// runColoAgent runs an agent built from cfg on the online and offline
// cgroups made by colo (classed by a static list, not discovered) until the
// test ends, and returns it.
func runColoAgent(tb testing.TB, cfg agent.Config, online, offline string) *agent.Agent {
	tb.Helper()
	cfg.Workloads = staticWorkloads{
		{ID: "online", Name: "online", Class: qos.ClassOnline, CgroupPath: online},
		{ID: "offline", Name: "offline", Class: qos.ClassOffline, CgroupPath: offline},
	}
	a, err := agent.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	return a
}

// TestAgentRunqLatencySqueezesOfflineReal closes the loop on the real
// kernel: the eBPF sampler sees online tasks waiting for a CPU (three busy
// loops on this 2-CPU host, plus offline loops), the online p99 run-queue
// latency exceeds the policy's target, the decision core's squeeze engages
// (State.Runq.Cut > 0, the reason names the latency) and the offline CFS
// quota the kernel holds is the squeezed budget. That the squeeze cuts
// beyond the water level is the decision core's scenario tests' job
// (qos/testdata/scenarios); on a saturated 2-CPU host the water level alone
// already leaves offline little, so this test does not try to separate the two.
func TestAgentRunqLatencySqueezesOfflineReal(t *testing.T) {
	kerneltest.RequireBPF(t)
	kerneltest.RequireCgroupV1Controller(t, "cpuacct")
	online, offline, pol := colo(t)
	onBusy := busyIn(t, online, 3)
	t.Cleanup(func() { stop(onBusy) })

	pol.CPU.OnlineRunqLatencyP99 = 500 * time.Microsecond
	// A high water level: without the latency signal offline would keep a
	// large budget, so only the run-queue squeeze explains a cut to the floor.
	pol.CPU.HighWater = 1

	layout, host, usage := hostSamplers(t)
	rq, err := agent.LoadRunq(layout)
	if err != nil {
		t.Fatalf("load eBPF sampler: %v", err)
	}
	t.Cleanup(func() { rq.Close() })
	enf, err := cgroup.New(cgroup.Config{OfflineParent: offline}, layout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enf.Release(context.Background()) })
	a := runColoAgent(t, agent.Config{Host: host, Usage: usage, Enforcers: []agent.Enforcement{{Name: "cgroup", Enforcer: enf, Inline: true}}, Policy: pol, Runq: rq}, online, offline)

	floor := int64(float64(2000) * pol.CPU.OfflineFloor)
	if hs, err := host.Sample(); err == nil {
		floor = int64(float64(hs.CPUCapacityMilli) * pol.CPU.OfflineFloor)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		snap := a.Snapshot()
		l := snap.Classes[qos.ClassOnline].RunqLatency
		if l != nil && l.P99 > pol.CPU.OnlineRunqLatencyP99 && snap.State.Runq.Cut > 0 && snap.Plan.OfflineCPU.BudgetMilli <= floor &&
			strings.Contains(snap.Plan.OfflineCPU.Reason.String(), "above target") && snap.Results != nil {
			quota := kerneltest.ReadCgroupInt(t, filepath.Join(cgroupRoot, "cpu", offline, "cpu.cfs_quota_us"))
			period := kerneltest.ReadCgroupInt(t, filepath.Join(cgroupRoot, "cpu", offline, "cpu.cfs_period_us"))
			if got := quota * 1000 / period; got != snap.Plan.OfflineCPU.BudgetMilli {
				t.Fatalf("kernel quota %d/%d = %dm, plan %dm", quota, period, got, snap.Plan.OfflineCPU.BudgetMilli)
			}
			t.Logf("online p99 %v (target %v): %s", l.P99, pol.CPU.OnlineRunqLatencyP99, snap.Plan.OfflineCPU.Reason.String())
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no run-queue squeeze: online latency %+v, plan %+v", l, snap.Plan.OfflineCPU)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
