package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
	"github.com/sluicehq/sluice/brain/auth"
	"github.com/sluicehq/sluice/brain/store"
)

func testJob(name string) []byte {
	return []byte("version: 1\napps:\n  - {name: " + name + ", cpu: 100m, memory: 64Mi, image: busybox}\nrequests:\n  - {app: " + name + ", count: 1}\n")
}

// A brain whose fence no longer holds (its election key gone, as when its
// lease expired while it was paused) writes nothing: the submission it
// queued fails, its loop stops at once, etcd is unchanged.
func TestDeposedBrainStopsAtOnce(t *testing.T) {
	ctx := context.Background()
	e := startEtcd(t)
	sess, err := concurrency.NewSession(e.Client, concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	el := concurrency.NewElection(sess, store.ElectionPrefix(""))
	if err := el.Campaign(ctx, "http://brain-a"); err != nil {
		t.Fatal(err)
	}
	fenced := store.New(e.Client, "", store.EmbeddedMaxTxnOps).WithFence(store.Fence{Key: el.Key(), Epoch: el.Rev()})
	b, err := New(ctx, Config{Store: fenced, Epoch: uint64(el.Rev())})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- b.Run(ctx) }()
	host := connect.NewRequest(&brainv1.RegisterRequest{NodeId: "n1", Name: "h1", Capacity: &brainv1.Resources{Amounts: map[string]int64{"cpu": 4000, "memory": 8 << 30}}})
	reg, err := b.Register(ctx, host)
	if err != nil {
		t.Fatalf("register while leading: %v", err)
	}
	if reg.Msg.GetEpoch() != uint64(el.Rev()) {
		t.Fatalf("register answer epoch %d, want %d", reg.Msg.GetEpoch(), el.Rev())
	}
	// Deposed: the key goes (lease revoked, as an expiry does).
	if _, err := e.Client.Revoke(ctx, sess.Lease()); err != nil {
		t.Fatal(err)
	}
	before, err := e.Client.Get(ctx, "/sluice", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: testJob("late")}))
	if err == nil || connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "leadership lost") {
		t.Fatalf("submission to a deposed brain: %v", err)
	}
	select {
	case err := <-runErr:
		if !errors.Is(err, store.ErrFenced) {
			t.Fatalf("loop ended with %v, want ErrFenced", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a deposed brain's loop kept running")
	}
	after, err := e.Client.Get(ctx, "/sluice", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if after.Header.Revision != before.Header.Revision {
		t.Fatalf("etcd moved from revision %d to %d after the brain was deposed", before.Header.Revision, after.Header.Revision)
	}
}

func startEtcd(t *testing.T) *store.Embedded {
	t.Helper()
	e, err := store.Start(context.Background(), t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

type haNode struct {
	ha   *HA
	url  string
	stop func()
}

func startHA(t *testing.T, cli *clientv3.Client) *haNode { return startHAOn(t, cli, nil, nil) }

// startHAOn starts an HA brain in plain text, or with srv set over mutual
// TLS (authenticating every call), forwarding to the leader with fwd.
func startHAOn(t *testing.T, cli *clientv3.Client, srv, fwd *tls.Config) *haNode {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg := HAConfig{Client: cli, MaxOps: store.EmbeddedMaxTxnOps, Registry: reg, LeaseTTL: 2 * time.Second}
	url := "http://" + l.Addr().String()
	if srv != nil {
		url = "https://" + l.Addr().String()
		cfg.Brain.Authenticate, cfg.Forward = true, auth.Transport(fwd)
	}
	cfg.AdvertiseURL = url
	ha, err := NewHA(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ha.Run(ctx) }()
	go func() {
		defer wg.Done()
		if srv != nil {
			ServeTLS(ctx, l, ha.Handler(reg), srv, nil)
		} else {
			Serve(ctx, l, ha.Handler(reg))
		}
	}()
	var once sync.Once
	n := &haNode{ha: ha, url: url, stop: func() { once.Do(func() { cancel(); wg.Wait() }) }}
	t.Cleanup(n.stop)
	return n
}

func waitLeading(t *testing.T, n *haNode) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if lead, _ := n.ha.Leading(); lead {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("never led")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Two brains on one etcd: the follower forwards (unary and streams) and
// names the leader; a brain stopped on purpose resigns, so the other
// leads at once rather than after the lease; bad settings are refused.
func TestHAForwardsAndHandsOver(t *testing.T) {
	ctx := context.Background()
	e := startEtcd(t)
	cli, err := store.Dial([]string{e.ClientURL})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	a := startHA(t, cli)
	waitLeading(t, a)
	b := startHA(t, cli)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if l, _ := b.ha.Leader(); l == a.url {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the follower never learned the leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	agent := brainv1connect.NewAgentServiceClient(http.DefaultClient, b.url)
	reg, err := agent.Register(ctx, connect.NewRequest(&brainv1.RegisterRequest{NodeId: "n1", Name: "h1", Capacity: &brainv1.Resources{Amounts: map[string]int64{"cpu": 4000, "memory": 8 << 30}}}))
	if err != nil {
		t.Fatalf("register through the follower: %v", err)
	}
	if got := reg.Header().Get(LeaderHeader); got != a.url {
		t.Errorf("leader header %q, want %q", got, a.url)
	}
	_, epochA := a.ha.Leading()
	if reg.Msg.GetEpoch() != uint64(epochA) {
		t.Errorf("epoch through the follower %d, want the leader's %d", reg.Msg.GetEpoch(), epochA)
	}
	op := brainv1connect.NewOperatorServiceClient(http.DefaultClient, b.url, connect.WithGRPC())
	if _, err := op.SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: testJob("fwd")})); err != nil {
		t.Fatalf("gRPC submission through the follower: %v", err)
	}
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	stream, err := agent.Targets(sctx, connect.NewRequest(&brainv1.TargetsRequest{NodeId: "n1", Name: "h1"}))
	if err != nil {
		t.Fatal(err)
	}
	if !stream.Receive() || len(stream.Msg().GetUpsert()) != 1 || stream.Msg().GetEpoch() != uint64(epochA) {
		t.Fatalf("target stream through the follower: %v %v", stream.Msg(), stream.Err())
	}
	stop := time.Now()
	a.stop()
	// The stream ends with its leader's term.
	if stream.Receive() {
		t.Fatalf("the stream outlived its leader: %v", stream.Msg())
	}
	waitLeading(t, b)
	if took := time.Since(stop); took > 10*time.Second {
		t.Logf("handover after a resign took %s", took)
	}
	if _, epochB := b.ha.Leading(); epochB <= epochA {
		t.Fatalf("new epoch %d not above %d", epochB, epochA)
	}
	jobs, err := brainv1connect.NewOperatorServiceClient(http.DefaultClient, b.url).ListJobs(ctx, connect.NewRequest(&brainv1.ListJobsRequest{}))
	if err != nil || len(jobs.Msg.GetJobs()) != 1 || jobs.Msg.GetJobs()[0].GetReplicas()[0].GetHost() != "h1" {
		t.Fatalf("the new leader's jobs: %v %v", jobs, err)
	}
	for _, bad := range []HAConfig{{}, {Client: cli}, {Client: cli, AdvertiseURL: "http://x", LeaseTTL: 1500 * time.Millisecond}} {
		if _, err := NewHA(bad); err == nil {
			t.Errorf("NewHA(%+v) accepted", bad)
		}
	}
}
