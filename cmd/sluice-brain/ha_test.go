package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sluicehq/sluice/agent/brainlink"
	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
	"github.com/sluicehq/sluice/brain/store"
)

// haCluster is one real etcd (in the test process) and brains as child
// processes (this test binary in SLUICE_BRAIN_CHILD mode) sharing it.
type haCluster struct {
	t      testing.TB
	cli    *clientv3.Client
	brains []*brainProc
}

type brainProc struct {
	addr, log string
	// env is the brain's own settings (etcd endpoints or its member).
	env  []string
	cmd  *exec.Cmd
	done chan struct{}
}

func (b *brainProc) url() string { return "http://" + b.addr }

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// newHACluster runs n brains on one external etcd (in the test process).
func newHACluster(t testing.TB, n int) *haCluster {
	t.Helper()
	e, err := store.Start(context.Background(), t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	var envs [][]string
	for range n {
		envs = append(envs, []string{"SLUICE_BRAIN_ETCD=" + e.ClientURL, "SLUICE_BRAIN_MAX_OPS=" + strconv.Itoa(store.EmbeddedMaxTxnOps)})
	}
	return launch(t, []string{e.ClientURL}, envs)
}

// newEmbeddedHACluster runs n brains whose embedded etcd members form
// one cluster (--initial-cluster): no etcd outside the brains.
func newEmbeddedHACluster(t testing.TB, n int) *haCluster {
	t.Helper()
	var peers, clients, members []string
	for i := range n {
		peers = append(peers, "http://"+freeAddr(t))
		clients = append(clients, "http://"+freeAddr(t))
		members = append(members, fmt.Sprintf("b%d=%s", i, peers[i]))
	}
	var envs [][]string
	for i := range n {
		envs = append(envs, []string{"SLUICE_BRAIN_DIR=" + t.TempDir(), "SLUICE_BRAIN_NAME=" + fmt.Sprintf("b%d", i),
			"SLUICE_BRAIN_INITIAL_CLUSTER=" + strings.Join(members, ","), "SLUICE_BRAIN_PEER_URL=" + peers[i],
			"SLUICE_BRAIN_ETCD_CLIENT_URL=" + clients[i]})
	}
	return launch(t, clients, envs)
}

func launch(t testing.TB, endpoints []string, envs [][]string) *haCluster {
	t.Helper()
	cli, err := store.Dial(endpoints)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	c := &haCluster{t: t, cli: cli}
	logs := t.TempDir()
	for i, env := range envs {
		c.brains = append(c.brains, &brainProc{addr: freeAddr(t), log: fmt.Sprintf("%s/brain-%d.log", logs, i), env: env})
	}
	for i := range envs {
		c.start(i)
	}
	c.leader(2 * time.Minute)
	return c
}

// start (re)starts brain i on its address.
func (c *haCluster) start(i int) {
	c.t.Helper()
	b := c.brains[i]
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SLUICE_BRAIN_CHILD=1", "SLUICE_BRAIN_LISTEN="+b.addr, "SLUICE_BRAIN_LOG="+b.log)
	cmd.Env = append(cmd.Env, b.env...)
	cmd.Stderr = os.Stderr
	// A brain must not outlive a test that died.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	b.cmd, b.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(b.done) }()
	c.t.Cleanup(func() { cmd.Process.Signal(syscall.SIGCONT); cmd.Process.Kill(); <-b.done })
}

// kill sends SIGKILL to brain i and waits for it to die.
func (c *haCluster) kill(i int) {
	c.brains[i].cmd.Process.Kill()
	<-c.brains[i].done
}

func (c *haCluster) urls() string {
	var us []string
	for _, b := range c.brains {
		us = append(us, b.url())
	}
	return strings.Join(us, ",")
}

func healthz(url string) (int, string) {
	hc := http.Client{Timeout: time.Second}
	resp, err := hc.Get(url + "/healthz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// leader waits until a brain says it leads and the others follow it.
func (c *haCluster) leader(timeout time.Duration) int {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		lead, follow := -1, 0
		for i, b := range c.brains {
			if b.cmd.ProcessState != nil {
				continue
			}
			code, body := healthz(b.url())
			switch {
			case code == http.StatusOK && body == "ok leader\n":
				lead = i
			case code == http.StatusOK:
				follow++
			}
		}
		if lead >= 0 {
			return lead
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("no brain leads after %s", timeout)
	return -1
}

// epoch is the current leader's epoch as the store's election shows it.
func (c *haCluster) epoch() int64 {
	c.t.Helper()
	resp, err := c.cli.Get(context.Background(), store.ElectionPrefix(""), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(1))
	if err != nil || len(resp.Kvs) == 0 {
		c.t.Fatalf("election key: %v %v", resp, err)
	}
	return resp.Kvs[0].CreateRevision
}

func (c *haCluster) load() *store.State {
	c.t.Helper()
	st, err := store.New(c.cli, "", 0).Load(context.Background())
	if err != nil {
		c.t.Fatal(err)
	}
	return st
}

// agents are real brainlink links against the brain list, each watching
// that its target version never goes backwards.
type agents struct {
	links  []*brainlink.Link
	mu     sync.Mutex
	errors []string
}

func startAgents(t testing.TB, urls string, n int) *agents {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := &agents{}
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for i := range n {
		link, err := brainlink.New(brainlink.Config{
			BrainURL: urls, StateDir: t.TempDir(), HostName: fmt.Sprintf("h%d", i),
			Registration: brainlink.Registration{Capacity: map[string]int64{"cpu": 64000, "memory": 256 << 30}},
		})
		if err != nil {
			t.Fatal(err)
		}
		a.links = append(a.links, link)
		wg.Add(2)
		go func() {
			defer wg.Done()
			link.Run(ctx, func() brainlink.Report { return brainlink.Report{LentCPUMilli: 32000, LentMemoryBytes: 128 << 30} })
		}()
		go func() {
			defer wg.Done()
			var last uint64
			for ctx.Err() == nil {
				v := link.Effective().Version
				if v < last {
					a.mu.Lock()
					a.errors = append(a.errors, fmt.Sprintf("h%d: target version went back from %d to %d", i, last, v))
					a.mu.Unlock()
				}
				last = v
				select {
				case <-ctx.Done():
				case <-link.Changed():
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
	}
	deadline := time.Now().Add(time.Minute)
	for _, l := range a.links {
		for !l.Status().Registered {
			if time.Now().After(deadline) {
				t.Fatal("agents did not register")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return a
}

// submitter submits jobs by name through the brain list, retrying each
// under the same name until a brain acknowledges it.
type submitter struct {
	urls     []string
	mu       sync.Mutex
	acked    map[string]bool
	tried    map[string]bool
	attempts int
}

func newSubmitter(urls string) *submitter {
	return &submitter{urls: strings.Split(urls, ","), acked: map[string]bool{}, tried: map[string]bool{}}
}

func jobFile(name string) []byte {
	return fmt.Appendf(nil, "version: 1\napps:\n  - {name: %s, cpu: 100m, memory: 64Mi, image: busybox}\nrequests:\n  - {app: %s, count: 2}\n", name, name)
}

// submit retries name until acknowledged or ctx ends; it reports success.
func (s *submitter) submit(ctx context.Context, name string, start int) bool {
	hc := &http.Client{Timeout: 10 * time.Second}
	s.mu.Lock()
	s.tried[name] = true
	s.mu.Unlock()
	for k := start; ctx.Err() == nil; k++ {
		op := brainv1connect.NewOperatorServiceClient(hc, s.urls[k%len(s.urls)])
		s.mu.Lock()
		s.attempts++
		s.mu.Unlock()
		_, err := op.SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: jobFile(name)}))
		if err == nil {
			s.mu.Lock()
			s.acked[name] = true
			s.mu.Unlock()
			return true
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false
}

// run submits names with workers in parallel and returns once all are
// acknowledged (or ctx ends).
func (s *submitter) run(ctx context.Context, names []string, workers int) {
	ch := make(chan string)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range ch {
				s.submit(ctx, n, w)
			}
		}()
	}
	for _, n := range names {
		ch <- n
	}
	close(ch)
	wg.Wait()
}

func (s *submitter) nAcked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

func jobNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// checkExactlyOnce asserts, from etcd, that every job any client tried is
// stored and each of its replicas placed once, in exactly one host's
// target (the placement's host), no host down; and that every agent holds
// its host's stored target.
func checkExactlyOnce(t *testing.T, c *haCluster, s *submitter, a *agents) *store.State {
	t.Helper()
	s.mu.Lock()
	tried := slices.Sorted(maps.Keys(s.tried))
	for _, n := range tried {
		if !s.acked[n] {
			t.Errorf("job %s was never acknowledged", n)
		}
	}
	s.mu.Unlock()
	st := c.load()
	where := map[string][]string{} // replica -> hosts whose target holds it
	for host, tg := range st.Targets {
		for _, ct := range tg.Containers {
			where[ct.ID] = append(where[ct.ID], host)
		}
	}
	for _, n := range tried {
		j, ok := st.Jobs[n]
		if !ok {
			t.Errorf("job %s: not in the store", n)
			continue
		}
		for i := range j.Count {
			p, ok := st.Placements[store.PlacementKey(n, i)]
			if !ok {
				t.Errorf("job %s replica %d: not placed", n, i)
				continue
			}
			if hs := where[p.ID()]; len(hs) != 1 || hs[0] != p.Host {
				t.Errorf("replica %s placed on %s is in the targets of %v", p.ID(), p.Host, hs)
			}
		}
	}
	if len(where) != len(st.Placements) {
		t.Errorf("targets hold %d replicas, the store has %d placements", len(where), len(st.Placements))
	}
	for name, h := range st.Hosts {
		if h.Down {
			t.Errorf("host %s marked down", name)
		}
	}
	// Agents converge on the stored targets.
	deadline := time.Now().Add(30 * time.Second)
	for i, l := range a.links {
		host := fmt.Sprintf("h%d", i)
		want := st.Targets[host]
		for {
			got := l.Effective()
			if got.Version == want.Version && len(got.Containers) == len(want.Containers) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("agent %s holds version %d (%d containers), the store %d (%d): %+v", host, got.Version, len(got.Containers), want.Version, len(want.Containers), l.Status())
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	a.mu.Lock()
	for _, e := range a.errors {
		t.Error(e)
	}
	a.mu.Unlock()
	return st
}

// samePlacements asserts that every replica placed in before is still
// placed on the same host (nothing restarted or moved).
func samePlacements(t *testing.T, before, after *store.State) {
	t.Helper()
	for key, p := range before.Placements {
		if q, ok := after.Placements[key]; !ok || q.Host != p.Host {
			t.Errorf("%s moved from %s to %q across the failover", key, p.Host, q.Host)
		}
	}
	for host, tg := range before.Targets {
		if v := after.Targets[host].Version; v < tg.Version {
			t.Errorf("host %s: target version went from %d back to %d", host, tg.Version, v)
		}
	}
}

// streamSubmissions starts three agents and n jobs submitted by 8
// clients, and returns once 30 are acknowledged; done closes when all are.
func streamSubmissions(t *testing.T, c *haCluster, prefix string, n int) (*agents, *submitter, context.Context, <-chan struct{}) {
	t.Helper()
	a := startAgents(t, c.urls(), 3)
	s := newSubmitter(c.urls())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	done := make(chan struct{})
	go func() { s.run(ctx, jobNames(prefix, n), 8); close(done) }()
	for s.nAcked() < 30 {
		time.Sleep(5 * time.Millisecond)
	}
	return a, s, ctx, done
}

func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("three brain processes: not in -short")
	}
}

// Kill -9 the leader during a stream of submissions: another brain leads
// within its lease, every job any client tried is placed exactly once,
// what was placed stays where it was, agents follow the new leader with
// versions that never go back.
func TestHAKillLeaderDuringSubmissions(t *testing.T) {
	skipShort(t)
	killLeaderDuringSubmissions(t, newHACluster(t, 3))
}

// The same with no etcd outside the brains: their embedded members form
// the cluster (--initial-cluster), and the killed leader takes its member
// down with it; the two left keep a quorum. The killed brain then comes
// back, its member rejoins, and it follows.
func TestHAEmbeddedMembersKillLeader(t *testing.T) {
	skipShort(t)
	c := newEmbeddedHACluster(t, 3)
	old := killLeaderDuringSubmissions(t, c)
	c.start(old)
	deadline := time.Now().Add(time.Minute)
	for {
		code, body := healthz(c.brains[old].url())
		if code == http.StatusOK && strings.HasPrefix(body, "ok follower") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted brain: %d %q", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	members, err := c.cli.MemberList(context.Background())
	if err != nil || len(members.Members) != 3 {
		t.Fatalf("members after the rejoin: %v %v", members, err)
	}
}

func killLeaderDuringSubmissions(t *testing.T, c *haCluster) int {
	a, s, _, done := streamSubmissions(t, c, "k", 150)
	old := c.leader(time.Second)
	oldEpoch := c.epoch()
	before := c.load()
	c.kill(old)
	t0 := time.Now()
	next := c.leader(time.Minute)
	t.Logf("brain %d killed with %d jobs acknowledged; brain %d leads after %s", old, s.nAcked(), next, time.Since(t0).Round(time.Millisecond))
	if next == old || c.epoch() <= oldEpoch {
		t.Fatalf("leader %d epoch %d after killing %d (epoch %d)", next, c.epoch(), old, oldEpoch)
	}
	<-done
	after := checkExactlyOnce(t, c, s, a)
	samePlacements(t, before, after)
	for _, l := range a.links {
		if st := l.Status(); st.Epoch != uint64(c.epoch()) {
			t.Errorf("agent status %+v: epoch is not the new leader's %d", st, c.epoch())
		}
	}
	t.Logf("%d jobs, %d submission attempts", len(s.tried), s.attempts)
	return old
}

// SIGSTOP the leader for longer than its lease, then resume it: another
// brain leads meanwhile, and the paused one never writes again. etcd's
// history says so: every write carries its leader's epoch (the writer
// stamp), and after the new leader's election none carries the old one,
// even though a submission reached the paused brain while it was stopped.
func TestHAPausedLeaderCannotWrite(t *testing.T) {
	skipShort(t)
	c := newHACluster(t, 3)
	a := startAgents(t, c.urls(), 3)
	s := newSubmitter(c.urls())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s.run(ctx, jobNames("a", 20), 4)
	old := c.leader(time.Second)
	oldEpoch := c.epoch()
	p := c.brains[old]
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	// A submission sent straight to the paused brain: its handler runs
	// only after the resume, when it no longer leads.
	direct := make(chan error, 1)
	go func() {
		op := brainv1connect.NewOperatorServiceClient(&http.Client{Timeout: time.Minute}, p.url())
		_, err := op.SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: jobFile("paused0")}))
		direct <- err
	}()
	s.mu.Lock()
	s.tried["paused0"] = true
	s.mu.Unlock()
	// The others elect a leader once the paused one's lease expires.
	var next int
	deadline := time.Now().Add(time.Minute)
	for {
		next = -1
		for i, b := range c.brains {
			if i == old {
				continue
			}
			if code, body := healthz(b.url()); code == http.StatusOK && body == "ok leader\n" {
				next = i
			}
		}
		if next >= 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if next < 0 {
		t.Fatal("no other brain leads while the leader is stopped")
	}
	newEpoch := c.epoch()
	t.Logf("brain %d stopped; brain %d leads at epoch %d after %s", old, next, newEpoch, time.Since(stopped).Round(time.Millisecond))
	s.run(ctx, jobNames("b", 20), 4)
	// Keep it stopped well past its lease, then resume.
	time.Sleep(time.Until(stopped.Add(3 * 3 * time.Second)))
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := <-direct; err != nil {
		t.Logf("submission to the paused brain: %v (retried through the list)", err)
		s.submit(ctx, "paused0", 0)
	} else {
		s.mu.Lock()
		s.acked["paused0"] = true
		s.mu.Unlock()
	}
	s.run(ctx, jobNames("c", 20), 4)
	// The resumed brain follows: it says so, and logged losing the lead.
	deadline = time.Now().Add(30 * time.Second)
	for {
		code, body := healthz(p.url())
		if code == http.StatusOK && strings.HasPrefix(body, "ok follower of "+c.brains[next].url()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("resumed brain's health: %d %q", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	logText, err := os.ReadFile(p.log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logText), "lost leadership") {
		t.Errorf("the resumed brain never logged losing the lead:\n%s", logText)
	}
	resp0, err := http.Get(p.url() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp0.Body)
	resp0.Body.Close()
	for _, want := range []string{"sluice_brain_leader 0", `sluice_brain_leadership_changes_total{event="lost"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("the resumed brain's /metrics lack %q", want)
		}
	}
	// The writer stamp's history from the revision that deleted the old
	// leader's key (its lease expired) on: only the new epoch wrote.
	lost := deletion(ctx, t, c, oldEpoch)
	resp, err := c.cli.Get(ctx, store.WriterKey(""))
	if err != nil {
		t.Fatal(err)
	}
	w := c.cli.Watch(ctx, store.WriterKey(""), clientv3.WithRev(lost), clientv3.WithProgressNotify())
	writes := 0
	for wr := range w {
		if err := wr.Err(); err != nil {
			t.Fatal(err)
		}
		for _, ev := range wr.Events {
			writes++
			if got := string(ev.Kv.Value); got != strconv.FormatInt(newEpoch, 10) {
				t.Errorf("revision %d written by epoch %s after epoch %d took over (old leader's epoch %d)", ev.Kv.ModRevision, got, newEpoch, oldEpoch)
			}
		}
		if wr.Header.Revision >= resp.Header.Revision || (len(wr.Events) > 0 && wr.Events[len(wr.Events)-1].Kv.ModRevision >= resp.Kvs[0].ModRevision) {
			break
		}
	}
	if writes == 0 {
		t.Fatal("no write since the new leader's election: the test proves nothing")
	}
	t.Logf("%d commits since the old leader's key went at revision %d, all by epoch %d", writes, lost, newEpoch)
	checkExactlyOnce(t, c, s, a)
}

// deletion finds the revision that deleted the election key created at
// epoch.
func deletion(ctx context.Context, t *testing.T, c *haCluster, epoch int64) int64 {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for wr := range c.cli.Watch(wctx, store.ElectionPrefix(""), clientv3.WithPrefix(), clientv3.WithRev(epoch), clientv3.WithPrevKV()) {
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypeDelete && ev.PrevKv != nil && ev.PrevKv.CreateRevision == epoch {
				return ev.Kv.ModRevision
			}
		}
	}
	t.Fatalf("the election key of epoch %d was never deleted", epoch)
	return 0
}

// Restart every brain at once (kill -9 all three, start all three): a
// leader is elected, nothing placed moves, nothing is lost or doubled,
// and new submissions place.
func TestHARestartAllBrains(t *testing.T) {
	skipShort(t)
	c := newHACluster(t, 3)
	a, s, ctx, done := streamSubmissions(t, c, "r", 80)
	before := c.load()
	for i := range c.brains {
		c.brains[i].cmd.Process.Kill()
	}
	for i := range c.brains {
		<-c.brains[i].done
	}
	for i := range c.brains {
		c.start(i)
	}
	t0 := time.Now()
	lead := c.leader(time.Minute)
	t.Logf("all brains restarted; brain %d leads after %s", lead, time.Since(t0).Round(time.Millisecond))
	<-done
	s.run(ctx, jobNames("s", 20), 4)
	after := checkExactlyOnce(t, c, s, a)
	samePlacements(t, before, after)
}
