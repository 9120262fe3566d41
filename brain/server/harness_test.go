package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
	"github.com/sluicehq/sluice/brain/store"
)

// clock is a settable clock shared by a test and its brains.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testBrain is a brain on an embedded etcd in dir, served on loopback.
type testBrain struct {
	t     testing.TB
	dir   string
	etcd  *store.Embedded
	store *store.Store
	brain *Brain
	reg   *prometheus.Registry
	url   string
	stop  func()
}

func startBrain(t testing.TB, dir string, clk *clock, live Liveness) *testBrain {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e, err := store.Start(ctx, dir, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	st := store.New(e.Client, "", store.EmbeddedMaxTxnOps)
	reg := prometheus.NewRegistry()
	cfg := Config{Store: st, Logger: log, Registry: reg, Liveness: live}
	if clk != nil {
		cfg.Now = clk.Now
	}
	b, err := New(ctx, cfg)
	if err != nil {
		cancel()
		e.Close()
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); b.Run(ctx) }()
	go func() { defer wg.Done(); Serve(ctx, l, b.Handler(reg)) }()
	tb := &testBrain{t: t, dir: dir, etcd: e, store: st, brain: b, reg: reg, url: "http://" + l.Addr().String()}
	var once sync.Once
	tb.stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			e.Close()
		})
	}
	t.Cleanup(tb.stop)
	return tb
}

func (tb *testBrain) operator() brainv1connect.OperatorServiceClient {
	return brainv1connect.NewOperatorServiceClient(http.DefaultClient, tb.url)
}

// simAgent speaks the agent protocol like a real agent would, keeping the
// target it was sent.
type simAgent struct {
	t       testing.TB
	name    string
	nodeID  string
	client  brainv1connect.AgentServiceClient
	mu      sync.Mutex
	version uint64
	fulls   int
	deltas  int
	running map[string]*brainv1.Container
	// started holds the containers that came up: a container the agent
	// (re)creates starts as pending until settle, as a real one takes
	// time to start; one of a broken image never starts.
	started   map[string]bool
	broken    map[string]bool
	onApply   func()
	overrides *brainv1.QoSOverrides
	updates   chan uint64
	cancel    context.CancelFunc
	done      chan struct{}
}

func newSimAgent(t testing.TB, url, name, nodeID string, hc *http.Client) *simAgent {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &simAgent{
		t: t, name: name, nodeID: nodeID, client: brainv1connect.NewAgentServiceClient(hc, url),
		running: map[string]*brainv1.Container{}, started: map[string]bool{}, broken: map[string]bool{},
		updates: make(chan uint64, 1024),
	}
}

func (a *simAgent) register(ctx context.Context, cpuMilli, memBytes int64, domain string) error {
	_, err := a.client.Register(ctx, connect.NewRequest(&brainv1.RegisterRequest{
		NodeId: a.nodeID, Name: a.name, FailureDomain: domain, CgroupMode: "hybrid",
		Capacity: &brainv1.Resources{Amounts: map[string]int64{"cpu": cpuMilli, "memory": memBytes}},
	}))
	return err
}

func (a *simAgent) heartbeat(ctx context.Context, lentCPU, lentMem int64) error {
	a.mu.Lock()
	v := a.version
	var states []*brainv1.ContainerState
	for id, c := range a.running {
		st := "pending"
		switch {
		case a.started[id]:
			st = "running"
		case a.broken[c.GetImage()]:
			st = "exited"
		}
		states = append(states, &brainv1.ContainerState{Id: id, Job: c.GetJob(), State: st})
	}
	a.mu.Unlock()
	_, err := a.client.Heartbeat(ctx, connect.NewRequest(&brainv1.HeartbeatRequest{
		NodeId: a.nodeID, Name: a.name, LentCpuMilli: lentCPU, LentMemoryBytes: lentMem, AppliedVersion: v,
		Containers: states,
	}))
	return err
}

// settle lets every container the agent runs come up, but those of a
// broken image.
func (a *simAgent) settle() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, c := range a.running {
		a.started[id] = !a.broken[c.GetImage()]
	}
}

// startedOf lists the containers of job that are up, with their image.
func (a *simAgent) startedOf(job string) map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]string{}
	for id, c := range a.running {
		if c.GetJob() == job && a.started[id] {
			out[id] = c.GetImage()
		}
	}
	return out
}

// follow streams targets from the version the agent holds, applies each
// update and acknowledges it, until stopped.
func (a *simAgent) follow() {
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.done = make(chan struct{})
	go func() {
		defer close(a.done)
		for ctx.Err() == nil {
			a.mu.Lock()
			known := a.version
			a.mu.Unlock()
			s, err := a.client.Targets(ctx, connect.NewRequest(&brainv1.TargetsRequest{NodeId: a.nodeID, Name: a.name, KnownVersion: known}))
			if err != nil {
				return
			}
			for s.Receive() {
				if err := a.apply(s.Msg()); err != nil {
					a.t.Errorf("agent %s: %v", a.name, err)
					return
				}
				if a.onApply != nil {
					a.onApply()
				}
				for _, r := range s.Msg().GetLogRequests() {
					_, err := a.client.PutLogs(ctx, connect.NewRequest(&brainv1.PutLogsRequest{
						NodeId: a.nodeID, Name: a.name, RequestId: r.GetRequestId(),
						Data: []byte(fmt.Sprintf("output of %s on %s\n", r.GetContainer(), a.name)),
					}))
					if err != nil && ctx.Err() == nil {
						a.t.Errorf("agent %s: put logs: %v", a.name, err)
					}
				}
				_, err := a.client.Ack(ctx, connect.NewRequest(&brainv1.AckRequest{NodeId: a.nodeID, Name: a.name, AppliedVersion: s.Msg().GetVersion()}))
				if err != nil && ctx.Err() == nil {
					a.t.Errorf("agent %s: ack: %v", a.name, err)
				}
				select {
				case a.updates <- s.Msg().GetVersion():
				default:
				}
			}
			s.Close()
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
}

func (a *simAgent) apply(u *brainv1.TargetsResponse) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	before := a.running
	if u.GetFull() {
		a.fulls++
		a.running = map[string]*brainv1.Container{}
	} else {
		a.deltas++
		if u.GetBaseVersion() != a.version {
			return errors.New("delta on a version the agent does not hold")
		}
		for _, id := range u.GetRemove() {
			delete(a.running, id)
			delete(a.started, id)
		}
	}
	for _, c := range u.GetUpsert() {
		a.running[c.GetId()] = c
		// A changed container is created anew, as converge does.
		if old, ok := before[c.GetId()]; !ok || !proto.Equal(old, c) {
			a.started[c.GetId()] = false
		}
	}
	for id := range a.started {
		if a.running[id] == nil {
			delete(a.started, id)
		}
	}
	a.version = u.GetVersion()
	a.overrides = u.GetOverrides()
	return nil
}

func (a *simAgent) stopFollowing() {
	if a.cancel != nil {
		a.cancel()
		<-a.done
	}
}

func (a *simAgent) snapshot() (uint64, map[string]bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := map[string]bool{}
	for id := range a.running {
		ids[id] = true
	}
	return a.version, ids
}

// eventually polls cond until it holds; a slow machine only makes the test
// wait longer, never pass or fail differently.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
