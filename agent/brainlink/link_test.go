package brainlink

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
	"github.com/sluicehq/sluice/brain/server/servertest"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runLink starts a link lending half of an 8-CPU host and waits until it
// registered; stop ends it (the test's cleanup too).
func runLink(t *testing.T, cfg Config) (link *Link, stop func()) {
	t.Helper()
	link, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- link.Run(ctx, func() Report { return Report{LentCPUMilli: 4000, LentMemoryBytes: 8 << 30} })
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	waitFor(t, "registered", func() bool { return link.Status().Registered })
	return link, stop
}

func TestLinkFollowsPersistsAndAcknowledges(t *testing.T) {
	url := servertest.Start(t)
	dir := t.TempDir()
	cfg := Config{
		BrainURL: url, StateDir: dir, HostName: "edge-1",
		Registration: Registration{Capacity: map[string]int64{"cpu": 8000, "memory": 16 << 30}, CgroupMode: "hybrid"},
	}
	link, stop := runLink(t, cfg)
	ctx := context.Background()
	op := brainv1connect.NewOperatorServiceClient(http.DefaultClient, url)
	file, err := os.ReadFile("../../brain/examples/jobs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// One host: web's max_per_host 1 leaves one web replica pending.
	if _, err := op.SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: file})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the target arrives", func() bool { return len(link.Effective().Containers) == 4 })
	tg := link.Effective()
	ids := []string{}
	for _, c := range tg.Containers {
		ids = append(ids, c.ID)
	}
	if strings.Join(ids, ",") != "crunch-nightly-0,crunch-nightly-1,crunch-nightly-2,web-0" {
		t.Fatalf("containers %v", ids)
	}
	if c := tg.Containers[3]; c.Image == "" || c.Class != "online" || c.Restart != "always" || c.Labels["sluice.io/replica"] != "web-0" {
		t.Fatalf("web-0: %+v", c)
	}
	onDisk, err := loadTarget(dir)
	if err != nil || onDisk.Version != tg.Version || len(onDisk.Containers) != 4 {
		t.Fatalf("persisted target %+v, %v", onDisk, err)
	}
	if err := link.Applied(ctx, tg.Version+1, nil); err == nil {
		t.Fatal("acknowledged a version never received")
	}
	if err := link.Applied(ctx, tg.Version, []ItemResult{{ID: "web-0", Result: "applied"}}); err != nil {
		t.Fatal(err)
	}
	hosts, err := op.ListHosts(ctx, connect.NewRequest(&brainv1.ListHostsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if h := hosts.Msg.GetHosts()[0]; h.GetName() != "edge-1" || h.GetAppliedVersion() != tg.Version || h.GetNodeId() != link.NodeID() {
		t.Fatalf("brain sees %+v, want applied %d", h, tg.Version)
	}
	// A host override reaches the link's effective target.
	level := 0.7
	if _, err := op.SetHostOverrides(ctx, connect.NewRequest(&brainv1.SetHostOverridesRequest{Name: "edge-1", Overrides: &brainv1.QoSOverrides{CpuWaterLevel: &level}})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the override arrives", func() bool {
		o := link.Effective().Overrides
		return o != nil && o.CPUWaterLevel != nil && *o.CPUWaterLevel == 0.7
	})
	// Deleting a job reaches the link as a delta.
	if _, err := op.DeleteJob(ctx, connect.NewRequest(&brainv1.DeleteJobRequest{Name: "crunch-nightly"})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delete arrives", func() bool { return len(link.Effective().Containers) == 1 })
	stop()

	// A restarted agent is the same node and starts from the persisted
	// target; the brain accepts it at once.
	again, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if again.NodeID() != link.NodeID() || again.Effective().Version != link.Effective().Version {
		t.Fatalf("restart: node %s/%s, version %d/%d", again.NodeID(), link.NodeID(), again.Effective().Version, link.Effective().Version)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go again.Run(ctx2, func() Report { return Report{} })
	waitFor(t, "re-registered", func() bool { return again.Status().Registered && again.Status().LastError == "" })
}

func TestStaleBrainDropsOverridesKeepsContainers(t *testing.T) {
	dir := t.TempDir()
	level := 0.5
	if err := saveTarget(dir, Target{Version: 7, Containers: []Container{{ID: "web-0", Image: "b"}}, Overrides: &Overrides{CPUWaterLevel: &level}}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	link, err := New(Config{BrainURL: "http://127.0.0.1:1", StateDir: dir, HostName: "h", Staleness: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if tg := link.Effective(); tg.Version != 7 || tg.Overrides == nil || *tg.Overrides.CPUWaterLevel != 0.5 {
		t.Fatalf("fresh restart lost the persisted overrides: %+v", tg)
	}
	now = now.Add(61 * time.Second)
	tg := link.Effective()
	if tg.Overrides != nil || len(tg.Containers) != 1 || !link.Status().Stale {
		t.Fatalf("after the staleness limit: %+v stale=%v", tg, link.Status().Stale)
	}
}

func TestApplyUpdate(t *testing.T) {
	cur := Target{Version: 3, Containers: []Container{{ID: "a"}, {ID: "b"}}}
	next, err := applyUpdate(cur, 0, &brainv1.TargetsResponse{Version: 4, BaseVersion: 3, Upsert: []*brainv1.Container{{Id: "c"}}, Remove: []string{"a"}})
	if err != nil || next.Version != 4 || len(next.Containers) != 2 || next.Containers[0].ID != "b" || next.Containers[1].ID != "c" {
		t.Fatalf("delta: %+v %v", next, err)
	}
	if _, err := applyUpdate(cur, 0, &brainv1.TargetsResponse{Version: 5, BaseVersion: 2}); err == nil || !strings.Contains(err.Error(), "delta on version 2, the agent holds 3") {
		t.Fatalf("gap: %v", err)
	}
	full, err := applyUpdate(cur, 0, &brainv1.TargetsResponse{Version: 9, Full: true, Upsert: []*brainv1.Container{{Id: "z"}}})
	if err != nil || len(full.Containers) != 1 || full.Containers[0].ID != "z" {
		t.Fatalf("full: %+v %v", full, err)
	}
	if _, err := applyUpdate(cur, 0, &brainv1.TargetsResponse{Version: 4, BaseVersion: 3, Upsert: []*brainv1.Container{{}}}); err == nil {
		t.Fatal("accepted a container without an id")
	}
}

// Epochs fence the agent side: an update from a lower epoch than seen is
// refused, whatever its version; versions never go backwards within an
// epoch (not even by a full document); a newer epoch's full document may
// restart versions (a store restored from a snapshot); epoch 0 (a brain
// that predates epochs) is judged by versions alone.
func TestApplyUpdateEpochs(t *testing.T) {
	cur := Target{Version: 10, Epoch: 50, Containers: []Container{{ID: "a"}}}
	cases := []struct {
		name    string
		seen    uint64
		u       *brainv1.TargetsResponse
		want    uint64 // version after, 0: refused
		wantErr string
	}{
		{"delta from the current epoch", 50, &brainv1.TargetsResponse{Version: 11, BaseVersion: 10, Epoch: 50}, 11, ""},
		{"delta from a newer epoch", 50, &brainv1.TargetsResponse{Version: 11, BaseVersion: 10, Epoch: 70}, 11, ""},
		{"deposed leader's next version", 50, &brainv1.TargetsResponse{Version: 11, BaseVersion: 10, Epoch: 40}, 0, "stale leader epoch"},
		{"deposed leader's full document", 50, &brainv1.TargetsResponse{Version: 12, Full: true, Epoch: 40}, 0, "stale leader epoch"},
		{"older full document, same epoch", 50, &brainv1.TargetsResponse{Version: 9, Full: true, Epoch: 50}, 0, "older than the held 10"},
		{"older full document, newer epoch (restored store)", 50, &brainv1.TargetsResponse{Version: 3, Full: true, Epoch: 90}, 3, ""},
		{"pre-epoch brain, newer version", 50, &brainv1.TargetsResponse{Version: 11, BaseVersion: 10}, 11, ""},
		{"pre-epoch brain, older delta", 50, &brainv1.TargetsResponse{Version: 9, BaseVersion: 8}, 0, "older than the held 10"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			next, err := applyUpdate(cur, c.seen, c.u)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %+v %v, want an error with %q", next, err, c.wantErr)
				}
				if next.Version != cur.Version {
					t.Fatalf("a refused update changed the target to version %d", next.Version)
				}
				return
			}
			if err != nil || next.Version != c.want {
				t.Fatalf("got version %d, %v; want %d", next.Version, err, c.want)
			}
			if next.Epoch < c.seen || next.Epoch < c.u.GetEpoch() {
				t.Fatalf("epoch after = %d, below the seen %d or the update's %d", next.Epoch, c.seen, c.u.GetEpoch())
			}
		})
	}
}

// The highest epoch seen is kept with the target, so a restarted agent
// still refuses a deposed leader.
func TestEpochSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	if err := saveTarget(dir, Target{Version: 4, Epoch: 77}); err != nil {
		t.Fatal(err)
	}
	link, err := New(Config{BrainURL: "http://127.0.0.1:1, http://127.0.0.1:2/", StateDir: dir, HostName: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if st := link.Status(); st.Epoch != 77 || st.Brain != "http://127.0.0.1:1" {
		t.Fatalf("status after restart: %+v", st)
	}
	err = link.receive(&brainv1.TargetsResponse{Version: 5, BaseVersion: 4, Epoch: 76})
	if err == nil || link.Status().RefusedStale != 1 || link.Effective().Version != 4 {
		t.Fatalf("stale update after restart: err %v, status %+v", err, link.Status())
	}
	if err := link.receive(&brainv1.TargetsResponse{Version: 5, BaseVersion: 4, Epoch: 80}); err != nil {
		t.Fatal(err)
	}
	onDisk, err := loadTarget(dir)
	if err != nil || onDisk.Epoch != 80 || onDisk.Version != 5 {
		t.Fatalf("persisted %+v %v", onDisk, err)
	}
	if err := link.heardEpoch("heartbeat", 79); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("heartbeat answer from a deposed leader: %v", err)
	}
	for _, bad := range []string{"", " , ", "127.0.0.1:9480", "ftp://x"} {
		if _, err := New(Config{BrainURL: bad, StateDir: t.TempDir(), HostName: "h"}); err == nil {
			t.Errorf("brain URL %q accepted", bad)
		}
	}
}

func TestNodeIDKeptAndCorruptIDRefused(t *testing.T) {
	dir := t.TempDir()
	a, err := loadNodeID(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadNodeID(dir)
	if err != nil || a != b || len(a) != 32 {
		t.Fatalf("%q %q %v", a, b, err)
	}
	os.WriteFile(filepath.Join(dir, nodeIDFile), []byte("\n"), 0o600)
	if _, err := loadNodeID(dir); err == nil || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("empty id file: %v", err)
	}
}
