package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
	"github.com/sluicehq/sluice/brain/store"
)

// testLiveness keeps TTLs long against the fake clock; tests advance it.
var testLiveness = Liveness{MinTTL: 10 * time.Second, HeartbeatsPerSecond: 50, Grace: 5 * time.Second}

const (
	gib = int64(1) << 30
)

func exampleFile(t testing.TB) []byte {
	data, err := os.ReadFile("../examples/jobs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// fleet registers n hosts host-0..host-(n-1) of 8 CPUs and 16 GiB lending
// half to offline work, each following its target.
func fleet(t *testing.T, tb *testBrain, n int) []*simAgent {
	t.Helper()
	ctx := context.Background()
	var agents []*simAgent
	for i := range n {
		a := newSimAgent(t, tb.url, fmt.Sprintf("host-%d", i), fmt.Sprintf("node-%d", i), nil)
		if err := a.register(ctx, 8000, 16*gib, fmt.Sprintf("r%d", i%2)); err != nil {
			t.Fatal(err)
		}
		agents = append(agents, a.join(t))
	}
	return agents
}

// join heartbeats once, lending half of an 8-CPU, 16 GiB host, and
// follows the target until the test ends.
func (a *simAgent) join(t *testing.T) *simAgent {
	t.Helper()
	if err := a.heartbeat(context.Background(), 4000, 8*gib); err != nil {
		t.Fatal(err)
	}
	a.follow()
	t.Cleanup(a.stopFollowing)
	return a
}

func submit(t *testing.T, tb *testBrain, file []byte) *brainv1.SubmitJobsResponse {
	t.Helper()
	resp, err := tb.operator().SubmitJobs(context.Background(), connect.NewRequest(&brainv1.SubmitJobsRequest{File: file, FileName: "jobs.yaml"}))
	if err != nil {
		t.Fatal(err)
	}
	return resp.Msg
}

// stored reads placements straight from etcd, by replica ID -> host.
func stored(t *testing.T, tb *testBrain) (map[string]string, *store.State) {
	t.Helper()
	st, err := tb.store.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range st.Placements {
		out[p.ID()] = p.Host
	}
	return out, st
}

// agentsAgree waits until every agent runs exactly what etcd's targets say.
func agentsAgree(t *testing.T, tb *testBrain, agents []*simAgent) {
	t.Helper()
	eventually(t, "agents converge on the stored targets", func() bool {
		_, st := stored(t, tb)
		for _, a := range agents {
			v, ids := a.snapshot()
			tg := st.Targets[a.name]
			if v != tg.Version || len(ids) != len(tg.Containers) {
				return false
			}
			// ... and the brain has their acknowledgements.
			tb.brain.mu.Lock()
			acked := tb.brain.live[a.name] != nil && tb.brain.live[a.name].applied == tg.Version
			tb.brain.mu.Unlock()
			if !acked && tg.Version > 0 {
				return false
			}
			for _, c := range tg.Containers {
				if !ids[c.ID] {
					return false
				}
			}
		}
		return true
	})
}

func TestSubmitPersistsPlacementsAndVersionsTargets(t *testing.T) {
	tb := startBrain(t, t.TempDir(), newClock(), testLiveness)
	agents := fleet(t, tb, 3)
	resp := submit(t, tb, exampleFile(t))
	if len(resp.GetJobs()) != 2 {
		t.Fatalf("jobs: %v", resp.GetJobs())
	}
	placed, st := stored(t, tb)
	if len(placed) != 5 {
		t.Fatalf("stored placements %v, want 2 web + 3 crunch-nightly", placed)
	}
	if placed["web-0"] == placed["web-1"] {
		t.Fatalf("max_per_host 1 broken: %v", placed)
	}
	perHost := map[string]int{}
	for _, h := range placed {
		perHost[h]++
	}
	for host, n := range perHost {
		tg := st.Targets[host]
		if len(tg.Containers) != n || tg.Version == 0 {
			t.Fatalf("target of %s: version %d, %d containers, want %d", host, tg.Version, len(tg.Containers), n)
		}
	}
	for _, c := range st.Targets[placed["web-0"]].Containers {
		if c.ID == "web-0" && (c.Class != "online" || c.Image == "" || c.Labels["sluice.io/job"] != "web" || c.Restart != "always") {
			t.Fatalf("container web-0: %+v", c)
		}
	}
	agentsAgree(t, tb, agents)

	// Deleting web takes its replicas out of their hosts' targets as deltas.
	if _, err := tb.operator().DeleteJob(context.Background(), connect.NewRequest(&brainv1.DeleteJobRequest{Name: "web"})); err != nil {
		t.Fatal(err)
	}
	placed, _ = stored(t, tb)
	if len(placed) != 3 || placed["web-0"] != "" {
		t.Fatalf("after delete: %v", placed)
	}
	agentsAgree(t, tb, agents)
	deltas := 0
	for _, a := range agents {
		a.mu.Lock()
		deltas += a.deltas
		a.mu.Unlock()
	}
	if deltas == 0 {
		t.Fatal("no agent received a delta: every update was a full document")
	}
}

func TestRestartLosesNothingAndMarksNoHostDown(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	tb := startBrain(t, dir, clk, testLiveness)
	agents := fleet(t, tb, 3)
	submit(t, tb, exampleFile(t))
	before, st0 := stored(t, tb)
	agentsAgree(t, tb, agents)
	for _, a := range agents {
		a.stopFollowing()
	}
	tb.stop()

	// The clock moves past a TTL while the brain is away: a fresh brain
	// still gives every host a full TTL from its start.
	clk.Advance(time.Minute)
	tb2 := startBrain(t, dir, clk, testLiveness)
	after, st1 := stored(t, tb2)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("placements changed across a restart:\n%v\n%v", before, after)
	}
	for name, tg := range st0.Targets {
		if st1.Targets[name].Version != tg.Version {
			t.Fatalf("target %s version %d -> %d across a restart", name, tg.Version, st1.Targets[name].Version)
		}
	}
	// Resync by version: agents that hold the current version get nothing
	// new; one that lost its copy gets a full document.
	for _, a := range agents {
		a.client = newSimAgent(t, tb2.url, a.name, a.nodeID, nil).client
		a.mu.Lock()
		a.fulls, a.deltas = 0, 0
		a.mu.Unlock()
	}
	agents[0].mu.Lock()
	agents[0].version, agents[0].running = 0, map[string]*brainv1.Container{}
	agents[0].mu.Unlock()
	for _, a := range agents {
		if err := a.heartbeat(context.Background(), 4000, 8*gib); err != nil {
			t.Fatal(err)
		}
		a.follow()
	}
	agentsAgree(t, tb2, agents)
	if agents[0].fulls != 1 || agents[1].fulls+agents[1].deltas != 0 {
		t.Fatalf("resync: agent 0 got %d full documents (want 1), agent 1 got %d updates (want 0)", agents[0].fulls, agents[1].fulls+agents[1].deltas)
	}
	// A pass after restart marks nobody down.
	tb2.brain.poke()
	time.Sleep(1500 * time.Millisecond)
	hosts, err := tb2.operator().ListHosts(context.Background(), connect.NewRequest(&brainv1.ListHostsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts.Msg.GetHosts() {
		if h.GetState() != "up" {
			t.Fatalf("host %s is %s after a restart", h.GetName(), h.GetState())
		}
	}
	after2, _ := stored(t, tb2)
	if fmt.Sprint(before) != fmt.Sprint(after2) {
		t.Fatalf("placements changed after the restart's first passes:\n%v\n%v", before, after2)
	}
}

func TestSilentHostIsReplacedAndComesBackClean(t *testing.T) {
	clk := newClock()
	tb := startBrain(t, t.TempDir(), clk, testLiveness)
	agents := fleet(t, tb, 3)
	// Online only, one per host: two replicas on three hosts.
	file := []byte("version: 1\napps:\n  - {name: api, cpu: 1, memory: 1Gi, image: busybox, max_per_host: 1}\nrequests:\n  - {app: api, count: 2}\n")
	submit(t, tb, file)
	// Acknowledgements are signs of life too: let them land before time moves.
	agentsAgree(t, tb, agents)
	placed, _ := stored(t, tb)
	victimHost := placed["api-0"]
	var victim *simAgent
	var others []*simAgent
	for _, a := range agents {
		if a.name == victimHost {
			victim = a
		} else {
			others = append(others, a)
		}
	}
	ttl := testLiveness.TTL(3)
	// Everyone but the victim keeps heartbeating while time passes.
	for step := time.Duration(0); step <= ttl; step += time.Second {
		clk.Advance(time.Second)
		for _, a := range others {
			if err := a.heartbeat(context.Background(), 4000, 8*gib); err != nil {
				t.Fatal(err)
			}
		}
	}
	eventually(t, "the silent host is marked down and api-0 placed elsewhere", func() bool {
		p, st := stored(t, tb)
		return st.Hosts[victimHost].Down && p["api-0"] != "" && p["api-0"] != victimHost && len(p) == 2
	})
	_, st := stored(t, tb)
	if n := len(st.Targets[victimHost].Containers); n != 0 {
		t.Fatalf("down host's target still holds %d containers", n)
	}
	// It comes back: up again, and its target does not hold the old copy.
	if err := victim.heartbeat(context.Background(), 4000, 8*gib); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the host is up again", func() bool {
		_, st := stored(t, tb)
		return !st.Hosts[victimHost].Down
	})
	agentsAgree(t, tb, agents)
	if _, ids := victim.snapshot(); ids["api-0"] {
		t.Fatal("the returning host still runs its stale api-0")
	}
	p, _ := stored(t, tb)
	if len(p) != 2 {
		t.Fatalf("job runs %d replicas, want 2: %v", len(p), p)
	}
}

func TestDrainMovesReplicasAndUncordonAdmits(t *testing.T) {
	tb := startBrain(t, t.TempDir(), newClock(), testLiveness)
	agents := fleet(t, tb, 2)
	submit(t, tb, []byte("version: 1\napps:\n  - {name: api, cpu: 1, memory: 1Gi, image: busybox}\nrequests:\n  - {app: api, count: 3}\n"))
	op := tb.operator()
	if _, err := op.DrainHost(context.Background(), connect.NewRequest(&brainv1.DrainHostRequest{Name: "host-0"})); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every replica leaves the drained host", func() bool {
		p, _ := stored(t, tb)
		for _, h := range p {
			if h != "host-1" {
				return false
			}
		}
		return len(p) == 3
	})
	agentsAgree(t, tb, agents)
	h, err := op.UncordonHost(context.Background(), connect.NewRequest(&brainv1.UncordonHostRequest{Name: "host-0"}))
	if err != nil || h.Msg.GetHost().GetState() != "up" {
		t.Fatalf("uncordon: %v %v", h, err)
	}
}

func TestBadInputIsRefusedWithReasons(t *testing.T) {
	tb := startBrain(t, t.TempDir(), newClock(), testLiveness)
	agents := fleet(t, tb, 1)
	ctx := context.Background()
	op := tb.operator()
	code := func(err error) connect.Code { return connect.CodeOf(err) }

	_, err := op.SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: []byte("version: 1\napps:\n  - {name: a, cpu: 1, memory: 1Gi, class: gold, image: b}\nrequests:\n  - {app: a, count: 1}\n"), FileName: "bad.yaml"}))
	if code(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), `bad.yaml:3: apps[0].class: "gold"`) {
		t.Fatalf("malformed job file: %v", err)
	}
	_, err = op.SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: make([]byte, MaxMessageBytes+1)}))
	if code(err) != connect.CodeResourceExhausted && code(err) != connect.CodeInvalidArgument {
		t.Fatalf("oversized message: %v", err)
	}
	stranger := newSimAgent(t, tb.url, "nobody", "node-x", nil)
	if err := stranger.heartbeat(ctx, 0, 0); code(err) != connect.CodeNotFound || !strings.Contains(err.Error(), "register first") {
		t.Fatalf("unknown host heartbeat: %v", err)
	}
	thief := newSimAgent(t, tb.url, "host-0", "node-other", nil)
	if err := thief.register(ctx, 8000, 16*gib, ""); code(err) != connect.CodeAlreadyExists || !strings.Contains(err.Error(), "held by live node node-0") {
		t.Fatalf("claiming a live host's name: %v", err)
	}
	if err := thief.heartbeat(ctx, 0, 0); code(err) != connect.CodePermissionDenied {
		t.Fatalf("heartbeat with another node's name: %v", err)
	}
	a := agents[0]
	_, err = a.client.Ack(ctx, connect.NewRequest(&brainv1.AckRequest{NodeId: a.nodeID, Name: a.name, AppliedVersion: 99}))
	if code(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "from the future") {
		t.Fatalf("version from the future: %v", err)
	}
	s, err := a.client.Targets(ctx, connect.NewRequest(&brainv1.TargetsRequest{NodeId: a.nodeID, Name: a.name, KnownVersion: 99}))
	if err == nil {
		for s.Receive() {
		}
		err = s.Err()
	}
	if code(err) != connect.CodeInvalidArgument {
		t.Fatalf("targets from a future version: %v", err)
	}
	if err := newSimAgent(t, tb.url, "Bad Name", "n", nil).register(ctx, 1, 1, ""); code(err) != connect.CodeInvalidArgument {
		t.Fatalf("bad host name: %v", err)
	}
	if err := newSimAgent(t, tb.url, "h2", "n2", nil).register(ctx, 0, 1, ""); code(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "capacity.cpu") {
		t.Fatalf("zero capacity: %v", err)
	}
	_, err = op.GetJob(ctx, connect.NewRequest(&brainv1.GetJobRequest{Name: "nope"}))
	if code(err) != connect.CodeNotFound {
		t.Fatalf("unknown job: %v", err)
	}
	// Nothing was committed by any of it.
	p, st := stored(t, tb)
	if len(p) != 0 || len(st.Jobs) != 0 || len(st.Hosts) != 1 {
		t.Fatalf("bad input changed the store: %v %v %v", p, st.Jobs, st.Hosts)
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:9480", "[::1]:1", "localhost:80"} {
		if err := CheckLoopback(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"0.0.0.0:9480", ":9480", "10.0.0.1:1", "example.com:1"} {
		if err := CheckLoopback(bad); err == nil || !strings.Contains(err.Error(), "loopback") && !errors.Is(err, err) {
			t.Errorf("%s accepted: %v", bad, err)
		}
	}
}

func TestUnreachableEtcdIsAClearErrorAndLosesNothingCommitted(t *testing.T) {
	dir := t.TempDir()
	tb := startBrain(t, dir, newClock(), testLiveness)
	fleet(t, tb, 1)
	submit(t, tb, []byte("version: 1\napps:\n  - {name: kept, cpu: 1, memory: 1Gi, image: busybox}\nrequests:\n  - {app: kept, count: 1}\n"))
	tb.etcd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := tb.operator().SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{
		File: []byte("version: 1\napps:\n  - {name: lost, cpu: 1, memory: 1Gi, image: busybox}\nrequests:\n  - {app: lost, count: 1}\n")}))
	if connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "commit") {
		t.Fatalf("submit with etcd gone: %v", err)
	}
	resp, err := http.Get(tb.url + "/healthz")
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/healthz with etcd gone: %v %v", resp, err)
	}
	resp.Body.Close()
	tb.stop()
	tb2 := startBrain(t, dir, newClock(), testLiveness)
	p, st := stored(t, tb2)
	if p["kept-0"] == "" || len(st.Jobs) != 1 {
		t.Fatalf("after the outage: placements %v, jobs %v", p, st.Jobs)
	}
}

func TestLivenessGrowsWithFleet(t *testing.T) {
	l := DefaultLiveness()
	if l.TTL(10) != 20*time.Second || l.Interval(10) != 10*time.Second/3 {
		t.Fatalf("small fleet: ttl %v interval %v", l.TTL(10), l.Interval(10))
	}
	// 5,000 hosts at 50 heartbeats/s: 100 s, plus grace.
	if l.TTL(5000) != 110*time.Second || l.Interval(5000) <= l.Interval(10) {
		t.Fatalf("large fleet: ttl %v interval %v", l.TTL(5000), l.Interval(5000))
	}
	l.FixedInterval = time.Second
	if l.Interval(5000) != time.Second || l.TTL(5000) != 110*time.Second {
		t.Fatalf("fixed interval: %v %v", l.Interval(5000), l.TTL(5000))
	}
}

func TestResubmitScalesAndUpdates(t *testing.T) {
	tb := startBrain(t, t.TempDir(), newClock(), testLiveness)
	agents := fleet(t, tb, 2)
	job := "version: 1\napps:\n  - {name: api, cpu: 1, memory: 1Gi, image: %s}\nrequests:\n  - {app: api, count: %d}\n"
	submit(t, tb, []byte(fmt.Sprintf(job, "busybox:1", 3)))
	submit(t, tb, []byte(fmt.Sprintf(job, "busybox:2", 1)))
	p, st := stored(t, tb)
	if len(p) != 1 || p["api-0"] == "" {
		t.Fatalf("scaled to 1: %v", p)
	}
	for _, tg := range st.Targets {
		for _, c := range tg.Containers {
			if c.Image != "busybox:2" {
				t.Fatalf("container %s still runs %s", c.ID, c.Image)
			}
		}
	}
	agentsAgree(t, tb, agents)
}

func TestPreemptionRemovesVictimsFromTargets(t *testing.T) {
	tb := startBrain(t, t.TempDir(), newClock(), testLiveness)
	agents := fleet(t, tb, 1) // 8 CPUs
	submit(t, tb, []byte("version: 1\napps:\n  - {name: low, cpu: 3, memory: 1Gi, image: b}\nrequests:\n  - {app: low, count: 2, priority: 1}\n"))
	submit(t, tb, []byte("version: 1\napps:\n  - {name: high, cpu: 4, memory: 1Gi, image: b}\nrequests:\n  - {app: high, count: 1, priority: 100, preempt: true}\n"))
	p, st := stored(t, tb)
	if p["high-0"] != "host-0" || len(p) != 2 {
		t.Fatalf("placements after preemption: %v", p)
	}
	if n := len(st.Targets["host-0"].Containers); n != 2 {
		t.Fatalf("target holds %d containers, want high-0 and one low", n)
	}
	agentsAgree(t, tb, agents)
	j, err := tb.operator().GetJob(context.Background(), connect.NewRequest(&brainv1.GetJobRequest{Name: "low"}))
	if err != nil {
		t.Fatal(err)
	}
	if j.Msg.GetJob().GetPendingReason() == "" {
		t.Fatalf("the preempted job does not say why a replica is pending: %+v", j.Msg.GetJob())
	}
}

// Heartbeats are liveness in memory: a hundred of them write nothing.
func TestHeartbeatsWriteNothing(t *testing.T) {
	tb := startBrain(t, t.TempDir(), newClock(), testLiveness)
	agents := fleet(t, tb, 2)
	agentsAgree(t, tb, agents)
	_, before := stored(t, tb)
	for range 50 {
		for _, a := range agents {
			if err := a.heartbeat(context.Background(), 3000, 4*gib); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, after := stored(t, tb)
	if after.Revision != before.Revision {
		t.Fatalf("100 heartbeats moved etcd from revision %d to %d", before.Revision, after.Revision)
	}
	hosts, err := tb.operator().ListHosts(context.Background(), connect.NewRequest(&brainv1.ListHostsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if lent := hosts.Msg.GetHosts()[0].GetLent().GetAmounts(); lent["cpu"] != 3000 {
		t.Fatalf("the last heartbeat's lent cpu is not what the brain shows: %v", lent)
	}
	// The rest of a heartbeat's report shows too, still without a write.
	_, err = agents[0].client.Heartbeat(context.Background(), connect.NewRequest(&brainv1.HeartbeatRequest{
		NodeId: agents[0].nodeID, Name: agents[0].name, OnlineRunqLatencyP99Us: 250, CpuPressureSomeAvg10: 1.5, CpuWaterLevel: 0.9,
		Usage:      []*brainv1.ClassUsage{{Class: "online", CpuMilli: 1200, MemoryBytes: gib}, {Class: "offline", CpuMilli: 800}},
		Kills:      []*brainv1.Kill{{Container: "x", Reason: "memory over the offline limit"}},
		Containers: []*brainv1.ContainerState{{Id: "a", State: "running"}, {Id: "b", State: "exited"}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	hosts, _ = tb.operator().ListHosts(context.Background(), connect.NewRequest(&brainv1.ListHostsRequest{}))
	h := hosts.Msg.GetHosts()[0]
	if h.GetReportedUsage().GetAmounts()["cpu"] != 2000 || h.GetOnlineRunqLatencyP99Us() != 250 || h.GetKills() != 1 || h.GetContainersRunning() != 1 {
		t.Fatalf("report not shown: %v", h)
	}
	if fh := tb.brain.Fleet().Hosts[0]; fh.AppliedWaterLevel != 0.9 {
		t.Fatalf("the fleet view's applied water level %v, want the heartbeat's 0.9", fh.AppliedWaterLevel)
	}
	if _, final := stored(t, tb); final.Revision != before.Revision {
		t.Fatalf("a heartbeat's report wrote to etcd")
	}
}

// Nodes racing for one new name: exactly one wins, the others hear who.
func TestRacingRegistrationsOneWins(t *testing.T) {
	tb := startBrain(t, t.TempDir(), newClock(), testLiveness)
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- newSimAgent(t, tb.url, "contested", fmt.Sprintf("node-%d", i), nil).register(context.Background(), 1000, gib, "")
		}()
	}
	wins := 0
	for range n {
		err := <-errs
		switch {
		case err == nil:
			wins++
		case connect.CodeOf(err) != connect.CodeAlreadyExists:
			t.Errorf("loser got %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d registrations won the name, want 1", wins)
	}
}

func TestHostOverridesReachTheAgent(t *testing.T) {
	tb := startBrain(t, t.TempDir(), newClock(), testLiveness)
	agents := fleet(t, tb, 1)
	op := tb.operator()
	level, capMilli := 0.6, int64(2000)
	resp, err := op.SetHostOverrides(context.Background(), connect.NewRequest(&brainv1.SetHostOverridesRequest{
		Name: "host-0", Overrides: &brainv1.QoSOverrides{CpuWaterLevel: &level, OfflineCpuCapMilli: &capMilli}}))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Msg.GetHost().GetOverrides().GetCpuWaterLevel() != 0.6 {
		t.Fatalf("host shows %v", resp.Msg.GetHost().GetOverrides())
	}
	agentsAgree(t, tb, agents)
	a := agents[0]
	a.mu.Lock()
	got := a.overrides
	a.mu.Unlock()
	if got.GetCpuWaterLevel() != 0.6 || got.GetOfflineCpuCapMilli() != 2000 || got.MemoryWaterLevel != nil {
		t.Fatalf("agent got overrides %v", got)
	}
	_, st := stored(t, tb)
	if o := st.Targets["host-0"].Overrides; o == nil || *o.CPUWaterLevel != 0.6 {
		t.Fatalf("stored target overrides %+v", o)
	}
	bad := 1.5
	_, err = op.SetHostOverrides(context.Background(), connect.NewRequest(&brainv1.SetHostOverridesRequest{
		Name: "host-0", Overrides: &brainv1.QoSOverrides{MemoryWaterLevel: &bad}}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "overrides.memory_water_level: 1.5 is outside (0, 1]") {
		t.Fatalf("bad override: %v", err)
	}
	// Clearing them is a new version without overrides.
	if _, err := op.SetHostOverrides(context.Background(), connect.NewRequest(&brainv1.SetHostOverridesRequest{Name: "host-0"})); err != nil {
		t.Fatal(err)
	}
	agentsAgree(t, tb, agents)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.overrides != nil {
		t.Fatalf("cleared overrides still reach the agent: %v", a.overrides)
	}
}

// gRPC clients (HTTP/2 without TLS) reach the same API.
func TestGRPCClientsWork(t *testing.T) {
	tb := startBrain(t, t.TempDir(), newClock(), testLiveness)
	fleet(t, tb, 1)
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	op := brainv1connect.NewOperatorServiceClient(hc, tb.url, connect.WithGRPC())
	resp, err := op.ListHosts(context.Background(), connect.NewRequest(&brainv1.ListHostsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Msg.GetHosts()) != 1 || resp.Msg.GetHosts()[0].GetName() != "host-0" {
		t.Fatalf("hosts over gRPC: %v", resp.Msg.GetHosts())
	}
}

// Two brains writing to one etcd (what leader election will prevent, and
// what the revision guards must survive): every replica ends placed once,
// and every target holds exactly the placements on its host.
func TestTwoWritersNeverPlaceAReplicaTwice(t *testing.T) {
	tb := startBrain(t, t.TempDir(), newClock(), testLiveness)
	fleet(t, tb, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	other, err := New(ctx, Config{Store: tb.store, Liveness: testLiveness, Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { other.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	errs := make(chan error, 40)
	for i := range 20 {
		for k, b := range []*Brain{tb.brain, other} {
			go func() {
				file := fmt.Sprintf("version: 1\napps:\n  - {name: w%d, cpu: 100m, memory: 64Mi, image: b}\nrequests:\n  - {app: w%d, count: 3}\n", i, i)
				if k == 1 {
					// The same jobs from the second writer, with another count.
					file = strings.Replace(file, "count: 3", "count: 2", 1)
				}
				_, err := b.SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: []byte(file)}))
				errs <- err
			}()
		}
	}
	for range 40 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Let both loops settle, then check what etcd holds.
	eventually(t, "every job's replicas placed once per its stored count", func() bool {
		tb.brain.poke()
		other.poke()
		p, st := stored(t, tb)
		want := 0
		for _, j := range st.Jobs {
			want += j.Count
		}
		return len(p) == want && len(st.Jobs) == 20
	})
	if mfs, err := tb.reg.Gather(); err == nil {
		for _, mf := range mfs {
			if mf.GetName() == "sluice_brain_etcd_txn_seconds" {
				for _, m := range mf.GetMetric() {
					t.Logf("first writer's transactions %s: %d", m.GetLabel()[0].GetValue(), m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	_, st := stored(t, tb)
	byHost := map[string]map[string]bool{}
	for _, p := range st.Placements {
		if j := st.Jobs[p.Job]; p.Index >= j.Count {
			t.Fatalf("placement %s beyond its job's count %d", p.ID(), j.Count)
		}
		if byHost[p.Host] == nil {
			byHost[p.Host] = map[string]bool{}
		}
		byHost[p.Host][p.ID()] = true
	}
	for host, tg := range st.Targets {
		seen := map[string]bool{}
		for _, c := range tg.Containers {
			if seen[c.ID] || !byHost[host][c.ID] {
				t.Fatalf("target %s holds %s twice or without a placement", host, c.ID)
			}
			seen[c.ID] = true
		}
		if len(seen) != len(byHost[host]) {
			t.Fatalf("target %s holds %d containers, %d placed there", host, len(seen), len(byHost[host]))
		}
	}
}
