package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/agent/brainlink"
	"github.com/sluicehq/sluice/agent/capability"
	"github.com/sluicehq/sluice/agent/converge"
	"github.com/sluicehq/sluice/agent/discovery"
	"github.com/sluicehq/sluice/agent/target"
	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
	"github.com/sluicehq/sluice/brain/server"
	"github.com/sluicehq/sluice/brain/server/servertest"
	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/test/containerdtest"
	"github.com/sluicehq/sluice/test/kerneltest"
)

// testBrain is a real brain (embedded etcd, reconcile loop, API on
// loopback) with a short liveness TTL, so a host whose heartbeats stop is
// marked down within seconds.
type testBrain struct {
	url  string
	op   brainv1connect.OperatorServiceClient
	stop func()
}

func startBrain(t *testing.T) *testBrain {
	t.Helper()
	b := servertest.StartWith(t, server.Liveness{MinTTL: 3 * time.Second, Grace: 2 * time.Second})
	return &testBrain{url: b.URL, op: brainv1connect.NewOperatorServiceClient(http.DefaultClient, b.URL), stop: b.Stop}
}

// clock is the links' clock: the real one plus an offset the test moves
// forward to pass the staleness limit without waiting for it.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time       { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) skip(d time.Duration) { c.offset.Add(int64(d)) }

// testHost is one agent wired as sluice-agent -brain wires it: the agent's
// loop (real samplers and discovery, QoS in dry-run), the brain link
// heartbeating from the agent's snapshots, and the target worker
// converging its containers in its own containerd namespace under its own
// class parents.
type testHost struct {
	name, namespace string
	parents         map[qos.Class]string
	stateDir        string
	agent           *agent.Agent
	link            *brainlink.Link
	runner          *target.Runner

	linkCancel context.CancelFunc
	linkDone   chan struct{}
	brainURL   string
}

const staleness = time.Minute

func startHost(t *testing.T, ctx context.Context, inst *containerdtest.Instance, brainURL string, clk *clock, caps capability.Capabilities, i int) *testHost {
	t.Helper()
	h := &testHost{
		name:      fmt.Sprintf("host-%d", i),
		namespace: kerneltest.UniqueName(fmt.Sprintf("sluice-e2e-h%d", i)),
		stateDir:  t.TempDir(),
		brainURL:  brainURL,
	}
	h.parents = converge.SiblingParents(fmt.Sprintf("%s/%s/offline", inst.CgroupParent, h.name))
	inst.ImportBusybox(t, ctx, h.namespace)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("host", h.name)

	_, host, usage := hostSamplers(t)
	pol := qos.DefaultPolicy()
	pol.OfflineParent = h.parents[qos.ClassOffline]
	disc, err := discovery.New(discovery.Config{ContainerdAddress: inst.Address, CgroupRoot: filepath.Join(cgroupRoot, "cpu")}, log)
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithCancel(ctx)
	discDone := make(chan struct{})
	go func() { defer close(discDone); _ = disc.Run(dctx) }()
	t.Cleanup(func() { dcancel(); <-discDone; _ = disc.Close() })

	hs, err := host.Sample()
	if err != nil {
		t.Fatal(err)
	}
	h.link, err = brainlink.New(brainlink.Config{
		BrainURL: brainURL, StateDir: h.stateDir, HostName: h.name, Staleness: staleness, Now: clk.now, Logger: log,
		Registration: target.Registration(caps, hs.CPUCapacityMilli, int64(hs.MemTotalBytes), nil, nil, h.name),
	})
	if err != nil {
		t.Fatal(err)
	}
	conv := target.NewContainerd(inst.Client, converge.Config{
		Namespace: h.namespace, Parents: h.parents, RuntimeOptions: inst.RuntimeOptions(),
		Backoff: converge.Backoff{Min: 100 * time.Millisecond, Max: time.Second}, StopTimeout: time.Second,
	}, log)
	t.Cleanup(conv.Close)
	h.runner = target.New(target.Config{Link: h.link, Converger: conv, Interval: 300 * time.Millisecond, Log: log})
	h.agent, err = agent.New(agent.Config{Host: host, Usage: usage, Workloads: disc, Policy: pol, ForceDryRun: true, Brain: h.runner, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = h.agent.Run(actx) }()
	go func() { defer wg.Done(); _ = h.runner.Run(actx) }()
	t.Cleanup(func() { acancel(); wg.Wait() })
	h.startHeartbeats(ctx)
	t.Cleanup(h.stopHeartbeats)
	return h
}

// startHeartbeats runs the link: register, heartbeat, follow the target.
func (h *testHost) startHeartbeats(ctx context.Context) {
	lctx, cancel := context.WithCancel(ctx)
	h.linkCancel, h.linkDone = cancel, make(chan struct{})
	done := h.linkDone
	go func() { defer close(done); _ = h.link.Run(lctx, h.agent.BrainReport) }()
}

// stopHeartbeats stops the link only: the host goes silent while its
// agent and containers keep running on the last target.
func (h *testHost) stopHeartbeats() {
	if h.linkCancel != nil {
		h.linkCancel()
		<-h.linkDone
		h.linkCancel = nil
	}
}

// managedContainer is a container Sluice launched, as containerd has it.
type managedContainer struct {
	id, job, class, cgroup string
	running                bool
}

// managed lists the containers carrying Sluice's managed-by label in ns.
func managed(t *testing.T, cl *containerd.Client, ns string) []managedContainer {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), ns)
	cs, err := cl.Containers(ctx, fmt.Sprintf("labels.%q==%s", converge.LabelManagedBy, converge.ManagedBy))
	if err != nil {
		t.Fatalf("list %s: %v", ns, err)
	}
	var out []managedContainer
	for _, c := range cs {
		labels, err := c.Labels(ctx)
		if err != nil {
			continue // removed meanwhile
		}
		spec, err := c.Spec(ctx)
		if err != nil {
			continue
		}
		m := managedContainer{id: c.ID(), job: labels[converge.LabelJob], class: labels[converge.LabelClass], cgroup: spec.Linux.CgroupsPath}
		if task, err := c.Task(ctx, nil); err == nil {
			if st, err := task.Status(ctx); err == nil && st.Status == containerd.Running {
				m.running = true
			}
		}
		out = append(out, m)
	}
	return out
}

func taskRunning(t *testing.T, c *containerdtest.Container) bool {
	t.Helper()
	st, err := c.Task.Status(namespaces.WithNamespace(context.Background(), c.Namespace))
	return err == nil && st.Status == containerd.Running
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v: %s", what, timeout, detail)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

const e2eJob = `version: 1
apps:
  - name: sleeper
    class: online
    cpu: 50m
    memory: 16Mi
    max_per_host: 2
    image: ` + containerdtest.BusyboxImageName + `
    command: [sleep, "3600"]
    restart: always
requests:
  - {name: e2e-sleep, app: sleeper, count: 4, priority: 10}
`

// TestBrainAgentsRunJobs runs a real brain and three agents against the
// private containerd. A job's replicas run on the hosts the brain chose,
// under the host's online parent with Sluice's labels; a host whose
// heartbeats stop has its replicas placed elsewhere and, back, stops its
// stale copies; a deleted job leaves nothing; a container Sluice did not
// launch survives it all. A host override reaches the decision, named in
// the reason; with the brain gone the last target is kept (also by a
// restarted link, from disk) until the staleness limit, then local policy
// rules.
func TestBrainAgentsRunJobs(t *testing.T) {
	kerneltest.RequireContainerd(t)
	kerneltest.RequireCgroupV1Controller(t, "cpuacct")
	inst := containerdtest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	b := startBrain(t)
	clk := &clock{}
	caps := capability.Probe(ctx, capability.Roots{})

	var hosts []*testHost
	for i := range 3 {
		hosts = append(hosts, startHost(t, ctx, inst, b.url, clk, caps, i))
	}
	// Not Sluice's: no managed-by label, in a namespace Sluice converges.
	foreign := inst.RunContainer(t, ctx, hosts[0].namespace, "foreign")

	upHosts := func() (int, string) {
		r, err := b.op.ListHosts(ctx, connect.NewRequest(&brainv1.ListHostsRequest{}))
		if err != nil {
			return 0, err.Error()
		}
		n, states := 0, ""
		for _, h := range r.Msg.GetHosts() {
			states += h.GetName() + "=" + h.GetState() + " "
			if h.GetState() == "up" {
				n++
			}
		}
		return n, states
	}
	eventually(t, 30*time.Second, "three hosts up", func() (bool, string) { n, s := upHosts(); return n == 3, s })

	// running maps each running replica of the job to the hosts running it,
	// checking where and how each runs.
	running := func() (map[string][]string, string) {
		out := map[string][]string{}
		var detail []string
		for _, h := range hosts {
			for _, m := range managed(t, inst.Client, h.namespace) {
				if m.job != "e2e-sleep" || !m.running {
					continue
				}
				if m.class != "online" || m.cgroup != h.parents[qos.ClassOnline]+"/"+m.id {
					t.Errorf("%s on %s: class label %q cgroup %q; want online under %s", m.id, h.name, m.class, m.cgroup, h.parents[qos.ClassOnline])
				}
				out[m.id] = append(out[m.id], h.name)
				detail = append(detail, m.id+"@"+h.name)
			}
		}
		slices.Sort(detail)
		return out, strings.Join(detail, " ")
	}
	// onTarget: every host runs exactly what its target holds.
	onTarget := func() (bool, string) {
		for _, h := range hosts {
			var want, got []string
			for _, c := range h.link.Effective().Containers {
				want = append(want, c.ID)
			}
			for _, m := range managed(t, inst.Client, h.namespace) {
				if m.running {
					got = append(got, m.id)
				}
			}
			slices.Sort(got)
			if !slices.Equal(want, got) {
				return false, fmt.Sprintf("%s targets %v, runs %v", h.name, want, got)
			}
		}
		return true, ""
	}
	exactlyFour := func() (bool, string) {
		r, detail := running()
		if len(r) != 4 {
			return false, detail
		}
		for id, on := range r {
			if len(on) != 1 {
				return false, fmt.Sprintf("%s runs on %v: %s", id, on, detail)
			}
		}
		ok, why := onTarget()
		return ok, why + " / " + detail
	}

	// Submit: four replicas, at most two per host, each once.
	if _, err := b.op.SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: []byte(e2eJob), FileName: "e2e.yaml"})); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "four replicas running on their targeted hosts", exactlyFour)
	_, placed := running()
	t.Logf("placed: %s", placed)
	if !taskRunning(t, foreign) {
		t.Fatal("the container Sluice did not launch stopped")
	}

	// Silence a host that runs replicas: they are placed elsewhere.
	r, _ := running()
	var victim *testHost
	for _, h := range hosts {
		for _, on := range r {
			if on[0] == h.name {
				victim = h
			}
		}
	}
	stale := len(victim.link.Effective().Containers)
	victim.stopHeartbeats()
	eventually(t, 60*time.Second, victim.name+" marked down", func() (bool, string) { n, s := upHosts(); return n == 2, s })
	eventually(t, 60*time.Second, "replicas re-placed on the hosts still up", func() (bool, string) {
		r, detail := running()
		placedElsewhere := 0
		for _, on := range r {
			if slices.ContainsFunc(on, func(n string) bool { return n != victim.name }) {
				placedElsewhere++
			}
		}
		return placedElsewhere == 4, detail
	})
	_, replaced := running()
	t.Logf("%s silent: %s", victim.name, replaced)
	// The silent host still runs its stale copies (it has not heard).
	if n := len(victim.link.Effective().Containers); n != stale {
		t.Errorf("silent %s holds %d containers, want its last target's %d", victim.name, n, stale)
	}

	// Back: its target no longer holds them and it stops the stale copies.
	victim.startHeartbeats(ctx)
	eventually(t, 60*time.Second, "stale copies stopped, four replicas once each", exactlyFour)
	_, back := running()
	t.Logf("%s back: %s", victim.name, back)
	if !taskRunning(t, foreign) {
		t.Fatal("the container Sluice did not launch stopped")
	}

	// Delete: nothing of the job is left anywhere.
	if _, err := b.op.DeleteJob(ctx, connect.NewRequest(&brainv1.DeleteJobRequest{Name: "e2e-sleep"})); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the deleted job's containers gone", func() (bool, string) {
		var left []string
		for _, h := range hosts {
			for _, m := range managed(t, inst.Client, h.namespace) {
				left = append(left, m.id+"@"+h.name)
			}
		}
		return len(left) == 0, strings.Join(left, " ")
	})
	if !taskRunning(t, foreign) {
		t.Fatal("the container Sluice did not launch stopped")
	}

	// A host override reaches the decision and is named in its reason.
	h := hosts[1]
	level := 0.3
	if _, err := b.op.SetHostOverrides(ctx, connect.NewRequest(&brainv1.SetHostOverridesRequest{
		Name: h.name, Overrides: &brainv1.QoSOverrides{CpuWaterLevel: &level},
	})); err != nil {
		t.Fatal(err)
	}
	overridden := func() (bool, string) {
		why := h.agent.Snapshot().Plan.OfflineCPU.Reason
		l := why.Lend
		return l != nil && l.Target != nil && l.Level == level && strings.Contains(why.String(), "brain target v"), why.String()
	}
	eventually(t, 30*time.Second, "override in the plan", overridden)

	// Lost brain: the last target is kept...
	b.stop()
	if q := h.runner.Targets(); q.CPUWaterLevelPercent != 30 {
		t.Fatalf("without the brain the overrides in force are %+v; want the last target's (30%%)", q)
	}
	eventually(t, 10*time.Second, "override still in the plan with the brain gone", overridden)
	// ...also by a link restarted on the same state dir (from disk)...
	relink, err := brainlink.New(brainlink.Config{BrainURL: b.url, StateDir: h.stateDir, HostName: h.name, Staleness: staleness, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if q := target.QoS(relink.Effective()); q.CPUWaterLevelPercent != 30 || relink.NodeID() != h.link.NodeID() {
		t.Fatalf("restarted link: node %s (was %s), overrides %+v; want the persisted target's", relink.NodeID(), h.link.NodeID(), q)
	}
	// ...until the staleness limit passes: then local policy decides.
	clk.skip(2 * staleness)
	eventually(t, 10*time.Second, "local policy after the staleness limit", func() (bool, string) {
		why := h.agent.Snapshot().Plan.OfflineCPU.Reason
		l := why.Lend
		return l != nil && l.Target == nil && l.Level == qos.DefaultPolicy().CPU.HighWater && h.agent.Snapshot().Brain.Stale, why.String()
	})
	if !taskRunning(t, foreign) {
		t.Fatal("the container Sluice did not launch stopped")
	}
}
