package converge_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"

	"github.com/sluicehq/sluice/agent/converge"
	"github.com/sluicehq/sluice/agent/discovery"
	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/test/containerdtest"
	"github.com/sluicehq/sluice/test/kerneltest"
)

const ns = "sluice"

type fixture struct {
	inst    *containerdtest.Instance
	tar     string
	parents map[qos.Class]string
	// logTo receives the converger's log; stderr unless a test sets it.
	logTo io.Writer
}

func setup(t *testing.T) *fixture {
	t.Helper()
	kerneltest.RequireContainerd(t)
	inst := containerdtest.Start(t)
	return &fixture{
		inst: inst,
		tar:  inst.BusyboxTar(t),
		parents: map[qos.Class]string{
			qos.ClassOnline:  inst.CgroupParent + "/online",
			qos.ClassOffline: inst.CgroupParent + "/offline",
		},
		logTo: os.Stderr,
	}
}

// converger returns a converger on the fixture's containerd, closed in
// t.Cleanup.
func (f *fixture) converger(t *testing.T, change func(*converge.Config)) *converge.Converger {
	t.Helper()
	cfg := converge.Config{
		Client:         f.inst.Client,
		Namespace:      ns,
		Parents:        f.parents,
		RuntimeOptions: f.inst.RuntimeOptions(),
		Backoff:        converge.Backoff{Min: 50 * time.Millisecond, Max: 200 * time.Millisecond},
		StopTimeout:    500 * time.Millisecond,
		Interval:       100 * time.Millisecond,
	}
	if change != nil {
		change(&cfg)
	}
	// go test shows the log only for a failing package or with -v.
	c, err := converge.New(cfg, slog.New(slog.NewTextHandler(f.logTo, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func (f *fixture) spec(id string, class qos.Class, restart converge.RestartPolicy, cmd ...string) converge.Spec {
	if len(cmd) == 0 {
		cmd = []string{"sleep", "3600"}
	}
	return converge.Spec{
		ID: id, Job: strings.Split(id, "-")[0], Replica: 0,
		Image: containerdtest.BusyboxImageName, ImageTar: f.tar,
		Command: cmd, Env: []string{"SLUICE_TEST=1"},
		Class: class, Priority: 4, Restart: restart,
		Labels: map[string]string{"team": "test"},
	}
}

// applyUntil applies specs until every result is unchanged (the pass found
// nothing to do) or the liveness bound passes.
func applyUntilSettled(t *testing.T, c *converge.Converger, specs []converge.Spec) []qos.IntentResult {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		res := c.Apply(context.Background(), specs)
		settled := true
		for _, r := range res {
			if r.Status != qos.ResultUnchanged {
				settled = false
			}
			if r.Status == qos.ResultFailed {
				t.Fatalf("failed result %+v", r)
			}
		}
		if settled {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled: %+v", res)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	kerneltest.WaitFor(t, what, 60*time.Second, cond) // liveness bound, not a speed check
}

func nctx() context.Context { return namespaces.WithNamespace(context.Background(), ns) }

// taskOf returns the status and pid of container id's task in namespace.
func taskOf(t *testing.T, cl *containerd.Client, namespace, id string) (containerd.ProcessStatus, uint32) {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), namespace)
	c, err := cl.LoadContainer(ctx, id)
	if err != nil {
		t.Fatalf("load %s/%s: %v", namespace, id, err)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		t.Fatalf("task %s/%s: %v", namespace, id, err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		t.Fatalf("task status %s/%s: %v", namespace, id, err)
	}
	return st.Status, task.Pid()
}

// load reads the labels and OCI spec of container id of the namespace.
func load(t *testing.T, cl *containerd.Client, id string) (map[string]string, *oci.Spec) {
	t.Helper()
	c, err := cl.LoadContainer(nctx(), id)
	if err != nil {
		t.Fatalf("load %s: %v", id, err)
	}
	info, err := c.Info(nctx())
	if err != nil {
		t.Fatalf("info %s: %v", id, err)
	}
	spec, err := c.Spec(nctx())
	if err != nil {
		t.Fatalf("spec %s: %v", id, err)
	}
	return info.Labels, spec
}

func gone(t *testing.T, cl *containerd.Client, id string) bool {
	t.Helper()
	_, err := cl.LoadContainer(nctx(), id)
	if err != nil && !errdefs.IsNotFound(err) {
		t.Fatalf("load %s: %v", id, err)
	}
	return errdefs.IsNotFound(err)
}

func state(c *converge.Converger, id string) converge.ContainerState {
	for _, s := range c.States() {
		if s.ID == id {
			return s
		}
	}
	return converge.ContainerState{}
}

// inCgroup reports whether pid is in cgroup rel of the v1 cpu hierarchy.
func inCgroup(t *testing.T, rel string, pid uint32) bool {
	t.Helper()
	root := kerneltest.RequireCgroupV1Controller(t, "cpu")
	raw, err := os.ReadFile(filepath.Join(root, rel, "cgroup.procs"))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return slices.Contains(strings.Fields(string(raw)), strconv.Itoa(int(pid)))
}

func TestContainerdConvergeLaunchesStopsAndLeavesForeignAlone(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	// Foreign containers, in Sluice's namespace and in another, without
	// the managed-by label: they must survive everything below.
	foreign := f.inst.RunContainer(t, ctx, ns, "foreign", containerdtest.WithLabels(map[string]string{converge.LabelClass: "offline"}))
	other := f.inst.RunContainer(t, ctx, "elsewhere", "web-0")
	c := f.converger(t, nil)

	web := f.spec("web-0", qos.ClassOnline, converge.RestartAlways)
	web.CPUMilli, web.MemoryBytes = 500, 64<<20
	batch := f.spec("batch-0", qos.ClassOffline, converge.RestartOnFailure)
	// The foreign container brought the image into the namespace already.
	first := c.Apply(ctx, []converge.Spec{web, batch})
	for _, r := range first {
		if r.Intent != converge.IntentLaunch || r.Status != qos.ResultApplied {
			t.Errorf("first pass %+v, want applied launch", r)
		}
	}
	applyUntilSettled(t, c, []converge.Spec{web, batch})

	for _, s := range []converge.Spec{web, batch} {
		labels, spec := load(t, f.inst.Client, s.ID)
		for k, v := range map[string]string{converge.LabelClass: string(s.Class), converge.LabelPriority: "4", converge.LabelManagedBy: "sluice", converge.LabelJob: s.Job, converge.LabelReplica: "0", "team": "test"} {
			if labels[k] != v {
				t.Errorf("%s: label %s = %q, want %q", s.ID, k, labels[k], v)
			}
		}
		wantCg := f.parents[s.Class] + "/" + s.ID
		if spec.Linux.CgroupsPath != wantCg {
			t.Errorf("%s: cgroupsPath %q, want %q", s.ID, spec.Linux.CgroupsPath, wantCg)
		}
		if !slices.Contains(spec.Process.Env, "SLUICE_TEST=1") || !slices.Equal(spec.Process.Args, []string{"sleep", "3600"}) {
			t.Errorf("%s: process %v %v", s.ID, spec.Process.Args, spec.Process.Env)
		}
		status, pid := taskOf(t, f.inst.Client, ns, s.ID)
		if status != containerd.Running {
			t.Errorf("%s: task %s", s.ID, status)
		}
		if !inCgroup(t, wantCg, pid) {
			t.Errorf("%s: pid %d not in cpu cgroup %s", s.ID, pid, wantCg)
		}
		if st := state(c, s.ID); st.Phase != converge.PhaseRunning || st.Pid != pid || st.CgroupPath != wantCg {
			t.Errorf("%s: state %+v", s.ID, st)
		}
		// Discovery classes it as the spec says, in the same cgroup.
		cl, err := discovery.ClassifyContainer(discovery.ContainerRecord{Namespace: ns, ID: s.ID, Labels: labels, CgroupsPath: spec.Linux.CgroupsPath}, nil, nil)
		if err != nil || cl.Class != s.Class || cl.Priority != s.Priority || cl.CgroupPath != wantCg {
			t.Errorf("%s: discovery classes it %+v, %v", s.ID, cl, err)
		}
	}

	// web-0's own caps reached the kernel.
	for ctrl, want := range map[string]string{"cpu/cpu.cfs_quota_us": "50000", "cpu/cpu.cfs_period_us": "100000", "memory/memory.limit_in_bytes": strconv.Itoa(64 << 20)} {
		c, file, _ := strings.Cut(ctrl, "/")
		root := kerneltest.RequireCgroupV1Controller(t, c)
		raw, err := os.ReadFile(filepath.Join(root, f.parents[qos.ClassOnline], "web-0", file))
		if err != nil || strings.TrimSpace(string(raw)) != want {
			t.Errorf("web-0 %s = %q, %v; want %s", file, raw, err, want)
		}
	}

	// A foreign container's id targeted: refused, left running.
	fspec := f.spec("foreign", qos.ClassOffline, converge.RestartAlways)
	res := c.Apply(ctx, []converge.Spec{web, batch, fspec})
	if r := res[2]; r.Status != qos.ResultFailed || !strings.Contains(r.Err, "not launched by sluice") {
		t.Errorf("targeting a foreign container: %+v", r)
	}

	// Un-target batch: stopped and removed; web untouched.
	_, webPid := taskOf(t, f.inst.Client, ns, "web-0")
	res = c.Apply(ctx, []converge.Spec{web})
	want := []qos.IntentResult{
		{Intent: converge.IntentContainer, Target: "web-0", Status: qos.ResultUnchanged},
		{Intent: converge.IntentStop, Target: "batch-0", Status: qos.ResultApplied},
	}
	if !sameResults(res, want) {
		t.Errorf("un-target batch: %+v, want %+v", res, want)
	}
	if !gone(t, f.inst.Client, "batch-0") {
		t.Error("batch-0 still there")
	}
	if _, pid := taskOf(t, f.inst.Client, ns, "web-0"); pid != webPid {
		t.Errorf("web-0 restarted: pid %d -> %d", webPid, pid)
	}
	// Nothing targeted at all: web goes too, the foreign ones stay.
	res = c.Apply(ctx, nil)
	if len(res) != 1 || res[0].Target != "web-0" || res[0].Status != qos.ResultApplied {
		t.Errorf("empty target: %+v", res)
	}
	if !gone(t, f.inst.Client, "web-0") {
		t.Error("web-0 still there")
	}
	for _, fc := range []*containerdtest.Container{foreign, other} {
		if st, pid := taskOf(t, f.inst.Client, fc.Namespace, fc.ID); st != containerd.Running || pid != fc.Task.Pid() {
			t.Errorf("foreign %s/%s: %s pid %d (was %d)", fc.Namespace, fc.ID, st, pid, fc.Task.Pid())
		}
	}
}

func sameResults(got, want []qos.IntentResult) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].Intent != want[i].Intent || got[i].Target != want[i].Target || got[i].Status != want[i].Status {
			return false
		}
	}
	return true
}

func TestContainerdConvergeRestartsPerPolicy(t *testing.T) {
	f := setup(t)
	// No interval passes: only the target, the image import, task exit
	// events and backoff deadlines wake the worker.
	c := f.converger(t, func(c *converge.Config) { c.Interval = time.Hour })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	specs := []converge.Spec{
		f.spec("crash-0", qos.ClassOffline, converge.RestartAlways, "sh", "-c", "exit 3"),
		f.spec("done-0", qos.ClassOffline, converge.RestartOnFailure, "sh", "-c", "exit 0"),
		f.spec("fail-0", qos.ClassOffline, converge.RestartNever, "sh", "-c", "exit 5"),
		f.spec("svc-0", qos.ClassOnline, converge.RestartAlways),
	}
	c.SetTarget(specs)
	waitFor(t, "crash-0 restarted three times", func() bool { return state(c, "crash-0").Restarts >= 3 })
	waitFor(t, "svc-0 running", func() bool { return state(c, "svc-0").Phase == converge.PhaseRunning })
	waitFor(t, "done-0 and fail-0 exited", func() bool {
		return state(c, "done-0").Phase == converge.PhaseExited && state(c, "fail-0").Phase == converge.PhaseExited
	})
	// Several more passes: the ones whose policy says no stay exited.
	for range 5 {
		c.Apply(context.Background(), specs)
	}
	for id, code := range map[string]uint32{"done-0": 0, "fail-0": 5} {
		if st := state(c, id); st.Phase != converge.PhaseExited || st.Restarts != 0 || st.ExitCode != code {
			t.Errorf("%s: %+v, want exited with %d and no restart", id, st, code)
		}
	}
	labels, _ := load(t, f.inst.Client, "crash-0")
	if n, _ := strconv.Atoi(labels[converge.LabelRestarts]); n < 3 {
		t.Errorf("restart label %q, want >= 3", labels[converge.LabelRestarts])
	}
	// Every run was short: one crash streak, as long as the restarts.
	if labels[converge.LabelCrashStreak] != labels[converge.LabelRestarts] {
		t.Errorf("crash streak %q, restarts %q", labels[converge.LabelCrashStreak], labels[converge.LabelRestarts])
	}

	// Only the service left: nothing else is due, so only the task exit
	// event can wake the worker when the service is killed from outside;
	// it comes back as a new process.
	c.SetTarget(specs[3:])
	waitFor(t, "the others stopped", func() bool {
		return gone(t, f.inst.Client, "crash-0") && gone(t, f.inst.Client, "done-0") && gone(t, f.inst.Client, "fail-0")
	})
	_, pid := taskOf(t, f.inst.Client, ns, "svc-0")
	if err := syscall.Kill(int(pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "svc-0 restarted", func() bool {
		st := state(c, "svc-0")
		return st.Phase == converge.PhaseRunning && st.Restarts == 1 && st.Pid != pid
	})
	if st, _ := taskOf(t, f.inst.Client, ns, "svc-0"); st != containerd.Running {
		t.Errorf("svc-0 task %s after restart", st)
	}
}

func TestContainerdConvergeDryRunChangesNothing(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	real := f.converger(t, nil)
	old := f.spec("old-0", qos.ClassOffline, converge.RestartAlways)
	applyUntilSettled(t, real, []converge.Spec{old})
	_, oldPid := taskOf(t, f.inst.Client, ns, "old-0")
	foreign := f.inst.RunContainer(t, ctx, ns, "foreign")

	dry := f.converger(t, func(c *converge.Config) { c.DryRun = true })
	before := snapshot(t, f.inst.Client)
	fresh := f.spec("new-0", qos.ClassOnline, converge.RestartAlways)
	fresh.Image = "docker.io/sluicetest/not-here:1" // would be imported: must not be
	res := dry.Apply(ctx, []converge.Spec{fresh})
	want := []qos.IntentResult{
		{Intent: converge.IntentLaunch, Target: "new-0", Status: qos.ResultDryRun},
		{Intent: converge.IntentStop, Target: "old-0", Status: qos.ResultDryRun},
	}
	if !sameResults(res, want) {
		t.Errorf("dry run: %+v, want %+v", res, want)
	}
	// A changed spec would replace, never does.
	changed := old
	changed.Env = []string{"SLUICE_TEST=2"}
	res = dry.Apply(ctx, []converge.Spec{changed})
	if !sameResults(res, []qos.IntentResult{{Intent: converge.IntentReplace, Target: "old-0", Status: qos.ResultDryRun}}) {
		t.Errorf("dry run of a changed spec: %+v", res)
	}
	dry.Close() // waits for any background fetch it should not have started
	if after := snapshot(t, f.inst.Client); after != before {
		t.Errorf("dry run changed containerd:\nbefore %s\nafter  %s", before, after)
	}
	if _, pid := taskOf(t, f.inst.Client, ns, "old-0"); pid != oldPid {
		t.Errorf("old-0 pid %d, was %d", pid, oldPid)
	}
	if st, _ := taskOf(t, f.inst.Client, ns, foreign.ID); st != containerd.Running {
		t.Errorf("foreign %s", st)
	}
}

// snapshot renders the namespace's containers (id, labels digest, task
// pid and status) and images as text.
func snapshot(t *testing.T, cl *containerd.Client) string {
	t.Helper()
	cs, err := cl.Containers(nctx())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, c := range cs {
		info, err := c.Info(nctx())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s %v", c.ID(), info.Labels[converge.LabelSpec], info.UpdatedAt.UnixNano())
		if task, err := c.Task(nctx(), nil); err == nil {
			st, _ := task.Status(nctx())
			fmt.Fprintf(&b, " %d %s", task.Pid(), st.Status)
		}
		b.WriteString("; ")
	}
	imgs, err := cl.ListImages(nctx())
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range imgs {
		b.WriteString(i.Name() + "; ")
	}
	return b.String()
}

func TestContainerdConvergeAdoptsAfterRestart(t *testing.T) {
	f := setup(t)
	specs := []converge.Spec{
		f.spec("web-0", qos.ClassOnline, converge.RestartAlways),
		f.spec("batch-0", qos.ClassOffline, converge.RestartAlways),
	}
	first := f.converger(t, nil)
	for _, r := range first.Apply(context.Background(), specs) {
		// The image is imported in the background: the pass must not wait.
		if r.Intent != converge.IntentLaunch || r.Status != converge.StatusPending {
			t.Errorf("first pass %+v, want pending launch", r)
		}
	}
	applyUntilSettled(t, first, specs)
	pids := map[string]uint32{}
	for _, s := range specs {
		_, pids[s.ID] = taskOf(t, f.inst.Client, ns, s.ID)
	}
	first.Close()

	second := f.converger(t, nil)
	res := second.Apply(context.Background(), specs)
	for _, r := range res {
		if r.Intent != converge.IntentContainer || r.Status != qos.ResultUnchanged {
			t.Errorf("new converger's first pass: %+v, want unchanged", r)
		}
	}
	for _, s := range specs {
		if _, pid := taskOf(t, f.inst.Client, ns, s.ID); pid != pids[s.ID] {
			t.Errorf("%s restarted by the new converger: pid %d -> %d", s.ID, pids[s.ID], pid)
		}
		if st := state(second, s.ID); st.Phase != converge.PhaseRunning || st.Pid != pids[s.ID] {
			t.Errorf("%s: adopted state %+v", s.ID, st)
		}
	}

	// A changed spec replaces the container: a new process, the new env.
	changed := slices.Clone(specs)
	changed[0].Env = []string{"SLUICE_TEST=2"}
	res = applyUntilSettledAfter(t, second, changed)
	if res[0].Intent != converge.IntentReplace || res[0].Status != qos.ResultApplied {
		t.Errorf("replace: %+v", res)
	}
	if _, pid := taskOf(t, f.inst.Client, ns, "web-0"); pid == pids["web-0"] {
		t.Error("web-0 not replaced")
	}
	if _, spec := load(t, f.inst.Client, "web-0"); !slices.Contains(spec.Process.Env, "SLUICE_TEST=2") {
		t.Errorf("replaced web-0 env %v", spec.Process.Env)
	}
	if _, pid := taskOf(t, f.inst.Client, ns, "batch-0"); pid != pids["batch-0"] {
		t.Error("batch-0 restarted by web-0's replacement")
	}
}

// applyUntilSettledAfter applies once and returns that pass's results
// after the passes that follow settle.
func applyUntilSettledAfter(t *testing.T, c *converge.Converger, specs []converge.Spec) []qos.IntentResult {
	t.Helper()
	res := c.Apply(context.Background(), specs)
	applyUntilSettled(t, c, specs)
	return res
}

func TestContainerdConvergeKubeletManagedLaunchesNothing(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	managed, err := converge.KubeletManaged(ctx, f.inst.Client)
	if err != nil || managed {
		t.Fatalf("fresh containerd: KubeletManaged = %v, %v", managed, err)
	}
	f.inst.RunContainer(t, ctx, "k8s.io", "pod1")
	managed, err = converge.KubeletManaged(ctx, f.inst.Client)
	if err != nil || !managed {
		t.Fatalf("with a k8s.io container: KubeletManaged = %v, %v", managed, err)
	}
	if _, err := converge.New(converge.Config{Client: f.inst.Client, Namespace: "k8s.io"}, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("a converger in kubelet's namespace was allowed")
	}
	c := f.converger(t, func(c *converge.Config) { c.KubeletManaged = managed })
	res := c.Apply(ctx, []converge.Spec{f.spec("web-0", qos.ClassOnline, converge.RestartAlways)})
	if len(res) != 1 || res[0].Status != qos.ResultUnsupported || !strings.Contains(res[0].Err, "kubelet") {
		t.Errorf("results %+v", res)
	}
	c.Close()
	if !gone(t, f.inst.Client, "web-0") {
		t.Error("web-0 launched on a kubelet-managed host")
	}
}

func TestContainerdConvergeBadInputKeepsGoing(t *testing.T) {
	f := setup(t)
	// Read only between Apply calls, from the goroutine that logs.
	var logs bytes.Buffer
	f.logTo = &logs
	// A long backoff keeps the failed pull reported until the test looks.
	c := f.converger(t, func(c *converge.Config) { c.Backoff = converge.Backoff{Min: time.Minute, Max: time.Minute} })
	good := f.spec("good-0", qos.ClassOnline, converge.RestartAlways)
	applyUntilSettled(t, c, []converge.Spec{good})
	_, pid := taskOf(t, f.inst.Client, ns, "good-0")

	invalid := good
	invalid.Class = "gold" // the running good-0 must stay as it is
	noParent := f.spec("sys-0", qos.ClassSystem, converge.RestartAlways)
	unpullable := f.spec("pull-0", qos.ClassOnline, converge.RestartAlways)
	unpullable.ImageTar = ""
	unpullable.Image = "127.0.0.1:1/nothing:latest" // loopback port nobody listens on
	specs := []converge.Spec{invalid, noParent, unpullable, good}
	var res []qos.IntentResult
	waitFor(t, "the pull to fail", func() bool {
		res = c.Apply(context.Background(), specs)
		return res[2].Status == qos.ResultFailed
	})
	if r := res[0]; r.Status != qos.ResultFailed || !strings.Contains(r.Err, "class:") {
		t.Errorf("invalid spec: %+v", r)
	}
	if r := res[1]; r.Status != qos.ResultFailed || !strings.Contains(r.Err, "no parent cgroup for class system") {
		t.Errorf("class without parent: %+v", r)
	}
	if r := res[2]; !strings.Contains(r.Err, "pull 127.0.0.1:1/nothing:latest") {
		t.Errorf("unpullable image: %+v", r)
	}
	if r := res[3]; r.Status != qos.ResultFailed || !strings.Contains(r.Err, "targeted twice") {
		t.Errorf("duplicate id: %+v", r)
	}
	if len(res) != 4 {
		t.Errorf("results %+v: an invalid spec's container must not be stopped", res)
	}
	if st, p := taskOf(t, f.inst.Client, ns, "good-0"); st != containerd.Running || p != pid {
		t.Errorf("good-0 %s pid %d (was %d)", st, p, pid)
	}
	if st := state(c, "pull-0"); st.LastError == "" || st.Phase != converge.PhaseAbsent {
		t.Errorf("pull-0 state %+v", st)
	}
	if st := state(c, "good-0"); st.Phase != converge.PhaseRunning || st.Pid != pid {
		t.Errorf("good-0 state %+v: its invalid spec must not hide that it runs", st)
	}
	// The same failures pass after pass are logged once each.
	for range 3 {
		c.Apply(context.Background(), specs)
	}
	for _, what := range []string{"targeted twice", "no parent cgroup", "invalid spec", "pull 127.0.0.1:1"} {
		if n := strings.Count(logs.String(), what); n != 1 {
			t.Errorf("%q logged %d times, want once:\n%s", what, n, logs.String())
		}
	}
}

func TestContainerdConvergeRidesOutContainerdRestart(t *testing.T) {
	f := setup(t)
	// A client of the test's own: the harness closes its client on Stop,
	// an agent's client lives through the daemon's restart.
	cl, err := containerd.New(f.inst.Address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	c := f.converger(t, func(c *converge.Config) { c.Client = cl })
	specs := []converge.Spec{f.spec("web-0", qos.ClassOnline, converge.RestartAlways)}
	applyUntilSettled(t, c, specs)
	_, pid := taskOf(t, f.inst.Client, ns, "web-0")

	f.inst.Stop(t)
	res := c.Apply(context.Background(), specs)
	if len(res) != 1 || res[0].Status != qos.ResultFailed || !strings.Contains(res[0].Err, "namespace sluice: list containers") {
		t.Errorf("containerd down: %+v", res)
	}
	if st := state(c, "web-0"); st.Phase != converge.PhaseRunning || st.Pid != pid {
		t.Errorf("containerd down: state %+v, want the last one kept", st)
	}

	f.inst.Restart(t)
	waitFor(t, "the converger to see web-0 again", func() bool {
		res := c.Apply(context.Background(), specs)
		return res[0].Status == qos.ResultUnchanged
	})
	if st, p := taskOf(t, f.inst.Client, ns, "web-0"); st != containerd.Running || p != pid {
		t.Errorf("web-0 after containerd's restart: %s pid %d, was %d", st, p, pid)
	}
}

func TestContainerdConvergePullsFromRegistry(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	ref := containerdtest.StartRegistry(t) + "/sluicetest/busybox:latest"
	// Push busybox from another namespace to the registry; the converger's
	// namespace does not have it.
	img := f.inst.ImportBusybox(t, ctx, "push")
	if err := f.inst.Client.Push(namespaces.WithNamespace(ctx, "push"), ref, img.Target()); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	c := f.converger(t, nil)
	s := f.spec("pulled-0", qos.ClassOnline, converge.RestartAlways)
	s.Image, s.ImageTar = ref, ""
	res := c.Apply(ctx, []converge.Spec{s})
	if res[0].Intent != converge.IntentLaunch || res[0].Status != converge.StatusPending {
		t.Errorf("first pass %+v, want pending launch while pulling", res)
	}
	applyUntilSettled(t, c, []converge.Spec{s})
	if st, _ := taskOf(t, f.inst.Client, ns, "pulled-0"); st != containerd.Running {
		t.Errorf("pulled-0 %s", st)
	}
	if _, err := f.inst.Client.GetImage(nctx(), ref); err != nil {
		t.Errorf("pulled image not in namespace %s: %v", ns, err)
	}
}

// BenchmarkContainerdConvergeSteadyPass measures a pass that finds all of
// its containers as targeted (the pass Run makes every Interval): two
// listing calls and the comparison.
func BenchmarkContainerdConvergeSteadyPass(b *testing.B) {
	for _, n := range []int{1, 20} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			kerneltest.RequireContainerd(b)
			inst := containerdtest.Start(b)
			inst.ImportBusybox(b, context.Background(), ns)
			c, err := converge.New(converge.Config{
				Client:         inst.Client,
				Namespace:      ns,
				Parents:        map[qos.Class]string{qos.ClassOffline: inst.CgroupParent + "/offline"},
				RuntimeOptions: inst.RuntimeOptions(),
			}, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(c.Close)
			specs := make([]converge.Spec, n)
			for i := range specs {
				specs[i] = converge.Spec{
					ID: fmt.Sprintf("bench-%d", i), Job: "bench", Replica: i,
					Image: containerdtest.BusyboxImageName, Command: []string{"sleep", "3600"},
					Class: qos.ClassOffline, Restart: converge.RestartAlways,
				}
			}
			for _, r := range c.Apply(context.Background(), specs) {
				if r.Status != qos.ResultApplied {
					b.Fatalf("launch: %+v", r)
				}
			}
			for b.Loop() {
				for _, r := range c.Apply(context.Background(), specs) {
					if r.Status != qos.ResultUnchanged {
						b.Fatalf("steady pass: %+v", r)
					}
				}
			}
		})
	}
}

// TestContainerdConvergeSeenByDiscovery runs the agent's discovery beside
// the converger: what it launches is listed with its spec's class,
// priority and cgroup, and what it stops leaves the list.
func TestContainerdConvergeSeenByDiscovery(t *testing.T) {
	f := setup(t)
	d, err := discovery.New(discovery.Config{ContainerdAddress: f.inst.Address}, slog.New(slog.NewTextHandler(f.logTo, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; d.Close() })

	c := f.converger(t, nil)
	web := f.spec("web-0", qos.ClassOnline, converge.RestartAlways)
	batch := f.spec("batch-0", qos.ClassOffline, converge.RestartAlways)
	batch.Priority = 1
	applyUntilSettled(t, c, []converge.Spec{web, batch})
	listed := func(key string) (discovery.Workload, bool) {
		for _, w := range d.Workloads() {
			if w.Key() == key {
				return w, true
			}
		}
		return discovery.Workload{}, false
	}
	waitFor(t, "discovery to list both", func() bool {
		_, a := listed(ns + "/web-0")
		_, b := listed(ns + "/batch-0")
		return a && b
	})
	for _, s := range []converge.Spec{web, batch} {
		w, _ := listed(ns + "/" + s.ID)
		if w.Class != s.Class || w.Priority != s.Priority || w.CgroupPath != f.parents[s.Class]+"/"+s.ID {
			t.Errorf("%s: discovery lists %+v", s.ID, w)
		}
	}
	applyUntilSettledAfter(t, c, []converge.Spec{web})
	waitFor(t, "batch-0 to leave discovery's list", func() bool {
		_, ok := listed(ns + "/batch-0")
		return !ok
	})
	if _, ok := listed(ns + "/web-0"); !ok {
		t.Error("web-0 left discovery's list")
	}
}
