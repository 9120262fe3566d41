package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/agent/discovery"
	"github.com/sluicehq/sluice/agent/sample"
	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
	"github.com/sluicehq/sluice/test/containerdtest"
	"github.com/sluicehq/sluice/test/kerneltest"
)

const cgroupRoot = "/sys/fs/cgroup"

// hostCgroup makes a cgroup at rel in the cpu, cpuacct and memory v1
// hierarchies and puts a process running args in it; both go at cleanup.
func hostCgroup(t testing.TB, rel string, args ...string) {
	t.Helper()
	var roots []string
	for _, ctrl := range []string{"cpu", "cpuacct", "memory"} {
		roots = append(roots, kerneltest.RequireCgroupV1Controller(t, ctrl))
	}
	dirs := kerneltest.MakeCgroup(t, rel, roots...)
	cmd := exec.Command(args[0], args[1:]...)
	kerneltest.StartCmd(t, cmd)
	for _, d := range dirs {
		kerneltest.WriteCgroupFile(t, filepath.Join(d, "cgroup.procs"), strconv.Itoa(cmd.Process.Pid))
	}
}

func cpuacctUsage(t testing.TB, rel string) time.Duration {
	t.Helper()
	return time.Duration(kerneltest.ReadCgroupInt(t, filepath.Join(cgroupRoot, "cpuacct", rel, "cpuacct.usage")))
}

// hostSamplers wires this host's samplers as sluice-agent does: the
// detected cgroup layout, the procfs host sampler and the cgroup reader.
func hostSamplers(tb testing.TB) (cgroupfs.Layout, *sample.Host, *sample.CgroupReader) {
	tb.Helper()
	layout, err := cgroupfs.Detect(cgroupRoot)
	if err != nil {
		tb.Fatal(err)
	}
	host, err := sample.NewHost("/proc", nil)
	if err != nil {
		tb.Fatal(err)
	}
	usage, err := sample.NewCgroupReader(layout)
	if err != nil {
		tb.Fatal(err)
	}
	return layout, host, usage
}

// TestAgentClassifiesAndMeasuresContainerd is the foundation's acceptance
// check: a private containerd runs one online and two offline containers
// (one of them a Kubernetes-style container in the k8s.io namespace), and a
// host cgroup is classed by a policy rule. The agent, wired as sluice-agent
// wires it, must class all four correctly, and its per-container CPU figures
// must match the kernel's own accounting (cpuacct.usage) within 5% over a
// 5 s window.
func TestAgentClassifiesAndMeasuresContainerd(t *testing.T) {
	kerneltest.RequireCgroupV1Controller(t, "cpuacct")
	inst := containerdtest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	busy := containerdtest.WithArgs("sh", "-c", "while :; do :; done")
	web := inst.RunContainer(t, ctx, "default", "web", busy,
		containerdtest.WithLabels(map[string]string{discovery.LabelClass: "online", "sluice.io/priority": "9"}))
	batchHi := inst.RunContainer(t, ctx, "default", "batch-hi", busy,
		containerdtest.WithLabels(map[string]string{discovery.LabelClass: "offline", "sluice.io/priority": "5"}))
	batchLo := inst.RunContainer(t, ctx, "k8s.io", "batch-lo",
		containerdtest.WithLabels(map[string]string{discovery.LabelClass: "offline", "sluice.io/priority": "1"}))

	hostRel := "/" + kerneltest.UniqueName("sluice-e2e") + "/hostd"
	hostCgroup(t, hostRel, "sleep", "3600")

	pol := qos.DefaultPolicy()
	pol.Rules = []qos.ClassRule{{Name: "hostd", Cgroup: "/sluice-e2e-*/hostd", Class: qos.ClassSystem, Priority: 3}}

	_, host, usage := hostSamplers(t)
	disc, err := discovery.New(discovery.Config{
		ContainerdAddress: inst.Address,
		CgroupRoot:        filepath.Join(cgroupRoot, "cpu"),
		Rules:             pol.Rules,
		ResyncInterval:    time.Second,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	discDone := make(chan error, 1)
	go func() { discDone <- disc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-discDone; _ = disc.Close() })

	a, err := agent.New(agent.Config{Host: host, Usage: usage, Workloads: disc, Policy: pol, ForceDryRun: true})
	if err != nil {
		t.Fatal(err)
	}

	want := map[string]struct {
		class    qos.Class
		priority int
		cgroup   string
	}{
		"web":      {qos.ClassOnline, 9, web.CgroupPath},
		"batch-hi": {qos.ClassOffline, 5, batchHi.CgroupPath},
		"batch-lo": {qos.ClassOffline, 1, batchLo.CgroupPath},
		hostRel:    {qos.ClassSystem, 3, hostRel},
	}
	// Discovery lists asynchronously: wait (bounded) until it sees all four.
	deadline := time.Now().Add(30 * time.Second)
	for {
		found := 0
		for _, w := range disc.Workloads() {
			if _, ok := want[w.ID]; ok {
				found++
			}
		}
		if found == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("discovery lists %+v; want all of %v", disc.Workloads(), want)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The measured window: the agent samples, the test reads the kernel's
	// counters right after; 5 s later the same again.
	sampleBoth := func() (time.Time, map[string]time.Duration) {
		a.SampleWorkloads(time.Now())
		at := time.Now()
		k := map[string]time.Duration{}
		for id, w := range want {
			k[id] = cpuacctUsage(t, w.cgroup)
		}
		return at, k
	}
	t0, k0 := sampleBoth()
	time.Sleep(5 * time.Second)
	t1, k1 := sampleBoth()
	a.Iterate(ctx, "test")
	snap := a.Snapshot()

	got := map[string]qos.WorkloadSample{}
	for _, c := range snap.Workloads {
		got[c.ID] = c
	}
	for id, w := range want {
		c, ok := got[id]
		if !ok {
			t.Errorf("%s missing from the agent's workloads %+v", id, snap.Workloads)
			continue
		}
		if c.Class != w.class || c.Priority != w.priority || c.CgroupPath != w.cgroup {
			t.Errorf("%s: class %s priority %d cgroup %s; want %s %d %s", id, c.Class, c.Priority, c.CgroupPath, w.class, w.priority, w.cgroup)
		}
		kernelMilli := float64(k1[id]-k0[id]) * 1000 / float64(t1.Sub(t0))
		diff := float64(c.CPUUsedMilli) - kernelMilli
		t.Logf("%s: agent %dm, kernel %.1fm", id, c.CPUUsedMilli, kernelMilli)
		// Busy containers are held to 5%; idle ones (a few milli-CPUs) to
		// 5% of one CPU's thousandth granularity, i.e. 5m.
		if tol := max(0.05*kernelMilli, 5); diff > tol || diff < -tol {
			t.Errorf("%s: agent says %dm, the kernel's cpuacct.usage %.1fm over the same 5 s: off by more than 5%%", id, c.CPUUsedMilli, kernelMilli)
		}
	}
	// Busy loops get what the (possibly loaded) host leaves them, but never
	// nothing: a zero here means the agent read the wrong cgroup.
	if got["web"].CPUUsedMilli < 10 || got["batch-hi"].CPUUsedMilli < 10 {
		t.Errorf("busy containers measured idle: web %dm batch-hi %dm", got["web"].CPUUsedMilli, got["batch-hi"].CPUUsedMilli)
	}
	if on := snap.Classes[qos.ClassOnline]; on.Count != 1 {
		t.Errorf("online class %+v, want one workload", on)
	}
	if off := snap.Classes[qos.ClassOffline]; off.Count != 2 {
		t.Errorf("offline class %+v, want two workloads", off)
	}
	if snap.Plan.OfflineCPU.Reason.IsZero() {
		t.Error("the plan carries no reason")
	}
}
