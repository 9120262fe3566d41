package discovery

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/test/containerdtest"
	"github.com/sluicehq/sluice/test/kerneltest"
)

// hostCgroup creates /<unique>/<leaf> in the v1 cpu hierarchy and removes
// both in t.Cleanup; it returns the hierarchy root and the parent's path.
func hostCgroup(t *testing.T, leaf string) (root, parent string) {
	t.Helper()
	root = kerneltest.RequireCgroupV1Controller(t, "cpu")
	parent = "/" + kerneltest.UniqueName("sluicehost")
	kerneltest.MakeCgroup(t, parent+"/"+leaf, root)
	return root, parent
}

func find(ws []Workload, key string) (Workload, bool) {
	for _, w := range ws {
		if w.Key() == key {
			return w, true
		}
	}
	return Workload{}, false
}

func TestDiscoveryWithRealContainerd(t *testing.T) {
	testStart := time.Now()
	inst := containerdtest.Start(t)
	cgRoot, hostParent := hostCgroup(t, "batch")
	ctx := context.Background()

	inst.RunContainer(t, ctx, "sluicetest", "online1",
		containerdtest.WithLabels(map[string]string{LabelClass: "online", LabelPriority: "10"}))
	offline1 := inst.RunContainer(t, ctx, "sluicetest", "offline1",
		containerdtest.WithLabels(map[string]string{LabelClass: "offline", LabelPriority: "1"}),
		containerdtest.WithArgs("sh", "-c", "while :; do :; done"))
	inst.RunContainer(t, ctx, "sluicetest", "weird1",
		containerdtest.WithLabels(map[string]string{LabelClass: "gold", LabelPriority: "abc"}))

	// A Kubernetes pod as the CRI plugin records it: a sandbox carrying the
	// pod's labels, and an application container of a BestEffort pod.
	podCgroup := inst.CgroupParent + "/kubepods/besteffort/pod1234"
	inst.RunContainer(t, ctx, "k8s.io", "sb1",
		containerdtest.WithLabels(map[string]string{
			labelCRIKind: "sandbox", labelPodName: "web-0", labelPodNamespace: "shop", LabelPriority: "5",
		}),
		containerdtest.WithAnnotations(map[string]string{annotationContainerTy: "sandbox", annotationSandboxID: "sb1"}),
		containerdtest.WithCgroupPath(podCgroup+"/sb1"))
	inst.RunContainer(t, ctx, "k8s.io", "offline2",
		containerdtest.WithLabels(map[string]string{
			labelCRIKind: "container", labelPodName: "web-0", labelPodNamespace: "shop", labelContainerName: "app",
		}),
		containerdtest.WithAnnotations(map[string]string{annotationContainerTy: "container", annotationSandboxID: "sb1"}),
		containerdtest.WithCgroupPath(podCgroup+"/offline2"))

	logs := &syncBuffer{}
	d, err := New(Config{
		ContainerdAddress: inst.Address,
		CgroupRoot:        cgRoot,
		Rules: []qos.ClassRule{
			{Name: "host-batch", Cgroup: hostParent + "/*", Class: qos.ClassOffline, Priority: 2},
			// Matches the plain containers' cgroups: containers must win.
			{Name: "shadow", Cgroup: inst.CgroupParent + "/sluicetest-*", Class: qos.ClassSystem},
		},
		// Only events can make a container appear or vanish in time.
		ResyncInterval:      time.Hour,
		ReconnectBackoffMax: 500 * time.Millisecond,
	}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		d.Close()
		if t.Failed() {
			t.Logf("discovery log:\n%s", logs)
		}
	})

	want := map[string]struct {
		class qos.Class
		prio  int
		path  string
		name  string
	}{
		"sluicetest/online1":  {qos.ClassOnline, 10, inst.CgroupParent + "/sluicetest-online1", "online1"},
		"sluicetest/offline1": {qos.ClassOffline, 1, inst.CgroupParent + "/sluicetest-offline1", "offline1"},
		// Invalid labels: a warning, then the rules decide (here "shadow").
		"sluicetest/weird1":             {qos.ClassSystem, 0, inst.CgroupParent + "/sluicetest-weird1", "weird1"},
		"k8s.io/offline2":               {qos.ClassOffline, 5, podCgroup + "/offline2", "shop/web-0/app"},
		"rule:" + hostParent + "/batch": {qos.ClassOffline, 2, hostParent + "/batch", "host-batch"},
	}
	hasAll := func(keys ...string) func() bool {
		return func() bool {
			ws := d.Workloads()
			for _, k := range keys {
				if _, ok := find(ws, k); !ok {
					return false
				}
			}
			return true
		}
	}
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	waitFor(t, "every workload", hasAll(keys...))
	waitFor(t, "containerd connected", func() bool { return d.Status().ContainerdConnected })

	ws := d.Workloads()
	for k, w := range want {
		g, _ := find(ws, k)
		if g.Class != w.class || g.Priority != w.prio || g.CgroupPath != w.path || g.Name != w.name {
			t.Errorf("%s: got class %s prio %d path %s name %s; want %s %d %s %s", k, g.Class, g.Priority, g.CgroupPath, g.Name, w.class, w.prio, w.path, w.name)
		}
		if g.Source == SourceContainerd {
			// Sanity, not timing: the start time must be this test's, read
			// from /proc (btime has a one-second granularity).
			if g.StartedAt.Before(testStart.Add(-5*time.Second)) || g.StartedAt.After(time.Now().Add(5*time.Second)) {
				t.Errorf("%s: StartedAt %v outside the test's run (started %v)", k, g.StartedAt, testStart)
			}
			if g.Labels[LabelClass] == "" && k != "k8s.io/offline2" {
				t.Errorf("%s: labels not reported: %v", k, g.Labels)
			}
		}
	}
	for _, w := range ws {
		if w.Key() == "k8s.io/sb1" {
			t.Error("pod sandbox listed as a workload")
		}
		if w.Source == SourceRule && strings.HasPrefix(w.CgroupPath, inst.CgroupParent+"/") {
			t.Errorf("container cgroup %s also listed by rule %s", w.CgroupPath, w.Name)
		}
	}
	if n := strings.Count(logs.String(), LabelClass); n != 1 {
		t.Errorf("want exactly one warning about weird1's class label, log has %d:\n%s", n, logs)
	}

	// Hot reload reaches containers classed by rules: without "shadow",
	// weird1 (invalid labels) falls through to the default class.
	if err := d.SetRules([]qos.ClassRule{{Name: "host-batch", Cgroup: hostParent + "/*", Class: qos.ClassOffline, Priority: 2}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "weird1 reclassed as online", func() bool {
		w, ok := find(d.Workloads(), "sluicetest/weird1")
		return ok && w.Class == qos.ClassOnline
	})

	// A container started after Run appears; one that exits disappears.
	inst.RunContainer(t, ctx, "sluicetest", "late1", containerdtest.WithLabels(map[string]string{LabelClass: "offline", LabelPriority: "3"}))
	waitFor(t, "late1 to appear", hasAll("sluicetest/late1"))
	if err := d.KillTask(ctx, "sluicetest", "offline1", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-offline1.Exited:
	case <-time.After(30 * time.Second):
		t.Fatal("offline1 did not exit after KillTask")
	}
	waitFor(t, "offline1 to disappear", func() bool { return !hasAll("sluicetest/offline1")() })
	if err := d.KillTask(ctx, "sluicetest", "nosuch", syscall.SIGKILL); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("KillTask(nosuch) = %v, want not found", err)
	}

	// containerd goes away: a warning, rule workloads still listed, the
	// last containers seen kept; it comes back: reconnected and resynced.
	inst.Stop(t)
	waitFor(t, "disconnected status", func() bool { return !d.Status().ContainerdConnected })
	if st := d.Status(); st.LastError == "" {
		t.Errorf("status %+v without an error", st)
	}
	if err := d.KillTask(ctx, "sluicetest", "late1", syscall.SIGKILL); !errors.Is(err, ErrNotConnected) {
		t.Errorf("KillTask while disconnected = %v, want ErrNotConnected", err)
	}
	if !hasAll("rule:"+hostParent+"/batch", "sluicetest/late1", "k8s.io/offline2")() {
		t.Errorf("workloads while containerd is down: %v", paths(d.Workloads()))
	}
	// Let a few reconnection attempts fail before the daemon returns.
	waitFor(t, "a failed reconnection attempt", func() bool {
		return strings.HasPrefix(d.Status().LastError, "connect ")
	})
	inst.Restart(t)
	waitFor(t, "reconnected", func() bool { return d.Status().ContainerdConnected })
	waitFor(t, "workloads after reconnecting", hasAll("sluicetest/online1", "sluicetest/late1", "k8s.io/offline2", "rule:"+hostParent+"/batch"))
	if _, ok := find(d.Workloads(), "sluicetest/offline1"); ok {
		t.Error("offline1 came back after reconnecting")
	}
	// One log line per transition, not per failed attempt: outage and
	// recovery lines alternate. (A daemon that is shutting down can accept
	// a connection for a moment, so there may be more than one outage.)
	var transitions []string
	for _, line := range strings.Split(logs.String(), "\n") {
		switch {
		case strings.Contains(line, "containerd unreachable"):
			transitions = append(transitions, "down")
		case strings.Contains(line, "containerd reachable again"):
			transitions = append(transitions, "up")
		}
	}
	if len(transitions) < 2 || len(transitions)%2 != 0 {
		t.Errorf("transitions logged %v, want down/up pairs", transitions)
	}
	for i, tr := range transitions {
		if want := []string{"down", "up"}[i%2]; tr != want {
			t.Errorf("transitions logged %v: entry %d is %s, want %s", transitions, i, tr, want)
			break
		}
	}
	// The killer's path again, through the new connection.
	if err := d.KillTask(ctx, "sluicetest", "late1", syscall.SIGKILL); err != nil {
		t.Errorf("KillTask after reconnect: %v", err)
	}
	waitFor(t, "late1 to disappear", func() bool { return !hasAll("sluicetest/late1")() })
}
