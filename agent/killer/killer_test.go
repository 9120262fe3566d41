package killer_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/sluicehq/sluice/agent/killer"
	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup"
	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
	"github.com/sluicehq/sluice/qos/cgroup/cgrouptest"
)

// tasks is a stateful fake of containerd's tasks: killing a task ends it;
// a task that is not there is NotFound, as containerd reports it.
type tasks struct {
	mu      sync.Mutex
	running map[string]bool
	fail    map[string]error
	signals []string
}

func (f *tasks) KillTask(_ context.Context, ns, id string, sig syscall.Signal) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := ns + "/" + id
	if err := f.fail[key]; err != nil {
		return err
	}
	if !f.running[key] {
		return fmt.Errorf("task %s: %w", key, errdefs.ErrNotFound)
	}
	f.signals = append(f.signals, fmt.Sprintf("%s %d", key, sig))
	delete(f.running, key)
	return nil
}

func offline(id, cg string) qos.KillIntent {
	return qos.KillIntent{ID: id, Name: id, CgroupPath: cg, Class: qos.ClassOffline, Reason: qos.Reason{Rule: qos.RuleKillOverLimit}}
}

func newTree(t *testing.T) *cgrouptest.V2 {
	tree := cgrouptest.NewV2(t, cgrouptest.Options{})
	for _, cg := range []string{"/sluice", "/sluice/offline", "/sluice/offline/a", "/sluice/offline/a/b", "/sluice/offline/c", "/online"} {
		if err := tree.Mkdir(cg); err != nil {
			t.Fatal(err)
		}
	}
	for cg, pids := range map[string][]int{"/sluice/offline/a": {11, 12}, "/sluice/offline/a/b": {13}, "/sluice/offline/c": {21}, "/online": {31}} {
		for _, p := range pids {
			if err := tree.AddProc(cg, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	return tree
}

func status(rs []qos.IntentResult) string {
	return cgrouptest.Results(rs, func(r qos.IntentResult) string { return r.Target })
}

func TestKillRefusesNonOffline(t *testing.T) {
	tree := newTree(t)
	k, err := killer.New(killer.Config{Unified: tree})
	if err != nil {
		t.Fatal(err)
	}
	online := offline("web", "/online")
	online.Class = qos.ClassOnline
	unclassed := offline("x", "/online")
	unclassed.Class = ""
	got := k.Apply(context.Background(), qos.Plan{Kills: []qos.KillIntent{online, unclassed, offline("a", "/sluice/offline/a")}})
	want := `web=failed(refusing to kill web: class "online" is not offline) x=failed(refusing to kill x: class "" is not offline) a=applied`
	if s := status(got); s != want {
		t.Fatalf("results %s\nwant %s", s, want)
	}
	if _, alive := tree.OOMScoreAdj(31); !alive {
		t.Fatal("online process killed")
	}
}

func TestKillV2CgroupKillsSubtreeOnly(t *testing.T) {
	tree := newTree(t)
	k, _ := killer.New(killer.Config{Unified: tree})
	got := k.Apply(context.Background(), qos.Plan{Kills: []qos.KillIntent{offline("a", "/sluice/offline/a")}})
	if s := status(got); s != "a=applied" {
		t.Fatal(s)
	}
	if got := tree.Killed(); !slices.Equal(got, []int{11, 12, 13}) {
		t.Errorf("killed %v, want [11 12 13]", got)
	}
	for _, pid := range []int{21, 31} {
		if _, alive := tree.OOMScoreAdj(pid); !alive {
			t.Errorf("pid %d killed", pid)
		}
	}
	// Gone now: a repeated kill (or a vanished cgroup) is not a failure.
	for _, cg := range []string{"/sluice/offline/a/b", "/sluice/offline/a"} {
		if err := tree.Rmdir(cg); err != nil {
			t.Fatal(err)
		}
	}
	if s := status(k.Apply(context.Background(), qos.Plan{Kills: []qos.KillIntent{offline("a", "/sluice/offline/a")}})); s != "a=unchanged" {
		t.Errorf("second kill: %s", s)
	}
}

func TestKillDryRun(t *testing.T) {
	tree := newTree(t)
	k, _ := killer.New(killer.Config{Unified: tree})
	tree.ResetWrites()
	got := k.Apply(context.Background(), qos.Plan{DryRun: true, Kills: []qos.KillIntent{offline("a", "/sluice/offline/a")}})
	if s := status(got); s != "a=dry-run" || len(tree.Writes()) != 0 || len(tree.Killed()) != 0 {
		t.Fatalf("dry run: %s, writes %v, killed %v", s, tree.Writes(), tree.Killed())
	}
}

func TestKillContainersThroughTaskKiller(t *testing.T) {
	tree := newTree(t)
	tk := &tasks{running: map[string]bool{"batch/job1": true, "batch/job2": true},
		fail: map[string]error{"batch/job2": fmt.Errorf("rpc error: %w", errdefs.ErrUnavailable)}}
	k, _ := killer.New(killer.Config{Tasks: tk, Unified: tree})
	v1, v2, v3 := offline("job1", "/sluice/offline/c"), offline("job2", "/sluice/offline/c"), offline("job3", "/sluice/offline/c")
	v1.Namespace, v2.Namespace, v3.Namespace = "batch", "batch", "batch"
	got := k.Apply(context.Background(), qos.Plan{Kills: []qos.KillIntent{v2, v1, v3}})
	want := "job2=failed(kill container batch/job2: rpc error: unavailable) job1=applied job3=unchanged"
	if s := status(got); s != want {
		t.Fatalf("results %s\nwant %s", s, want)
	}
	if !slices.Equal(tk.signals, []string{"batch/job1 9"}) {
		t.Errorf("signals %v", tk.signals)
	}
	if len(tree.Killed()) != 0 {
		t.Errorf("containers must die through containerd, not their cgroup: killed %v", tree.Killed())
	}
}

// TestKillV1SignalsEveryTaskIncludingForks models v1 (no cgroup.kill): the
// killer signals each pid and re-reads cgroup.procs, catching a task forked
// while its siblings were being killed.
func TestKillV1SignalsEveryTaskIncludingForks(t *testing.T) {
	tree := newTree(t)
	var signalled []int
	forked := false
	signal := func(pid int, sig syscall.Signal) error {
		if sig != syscall.SIGKILL {
			t.Errorf("signal %v, want SIGKILL", sig)
		}
		signalled = append(signalled, pid)
		if !forked {
			forked = true
			if err := tree.AddProc("/sluice/offline/a/b", 14); err != nil {
				t.Error(err)
			}
		}
		tree.Exit(pid)
		return nil
	}
	k, _ := killer.New(killer.Config{V1: tree, Signal: signal})
	if s := status(k.Apply(context.Background(), qos.Plan{Kills: []qos.KillIntent{offline("a", "/sluice/offline/a")}})); s != "a=applied" {
		t.Fatal(s)
	}
	slices.Sort(signalled)
	if !slices.Equal(signalled, []int{11, 12, 13, 14}) {
		t.Errorf("signalled %v, want [11 12 13 14]", signalled)
	}
}

func TestNewNeedsAWayToKill(t *testing.T) {
	if _, err := killer.New(killer.Config{}); err == nil {
		t.Fatal("want an error")
	}
}

func TestConfigWithLayout(t *testing.T) {
	for _, tc := range []struct {
		variant         cgrouptest.HostVariant
		unified, memory string // relative to the fake root; "-" for none
	}{
		{cgrouptest.V1Split, "-", "memory"},
		{cgrouptest.V1Combined, "-", "memory"},
		{cgrouptest.Hybrid, "unified", "memory"},
		{cgrouptest.Unified, ".", "-"},
	} {
		h := cgrouptest.NewHost(t, tc.variant, cgrouptest.Options{})
		l, err := cgroupfs.Detect(h.Root)
		if err != nil {
			t.Fatal(err)
		}
		c := killer.Config{Unified: cgroup.Dir("/stale")}.WithLayout(l)
		for _, got := range []struct {
			name string
			fs   cgroup.FS
			want string
		}{{"Unified", c.Unified, tc.unified}, {"V1", c.V1, tc.memory}} {
			switch {
			case got.want == "-" && got.fs != nil:
				t.Errorf("%s: %s = %v, want none", tc.variant, got.name, got.fs)
			case got.want != "-" && got.fs != cgroup.Dir(filepath.Join(h.Root, got.want)):
				t.Errorf("%s: %s = %v, want %s", tc.variant, got.name, got.fs, got.want)
			}
		}
	}
}
