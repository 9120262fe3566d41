package main

import (
	"context"
	"crypto/tls"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
	"github.com/sluicehq/sluice/brain/auth"
)

// fleet is the simulated agents and what they saw.
type fleet struct {
	url    string
	tlsFor func(i int) *tls.Config
	agents []*agent

	heartbeats, heartbeatErrors atomic.Int64
	registerRetries, acks       atomic.Int64
	streamErrors                atomic.Int64
	// intervalMs is the heartbeat interval the brain last handed out.
	intervalMs atomic.Int64
	// storm is closed to make every agent heartbeat at once.
	storm chan struct{}

	mu   sync.Mutex
	seen map[string]time.Time // replica ID -> when its host acknowledged a target holding it
}

// agent speaks the agent protocol for one host over its own TLS
// connection (its own certificate: the brain checks every request names
// the certificate's host, so agents share no connection).
type agent struct {
	f    *fleet
	name string
	node string
	tls  *tls.Config

	mu       sync.Mutex
	version  uint64
	interval time.Duration
	cancel   context.CancelFunc
	done     sync.WaitGroup
	tr       *http.Transport
}

func (f *fleet) agentFor(i int, name string) *agent {
	return &agent{f: f, name: name, node: "node-" + name, tls: f.tlsFor(i)}
}

// start dials a new connection, registers (retrying while the brain is
// busy) and runs the heartbeat and target loops until stop.
func (a *agent) start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	tr := auth.Transport(a.tls.Clone())
	client := brainv1connect.NewAgentServiceClient(&http.Client{Transport: tr}, a.f.url)
	var iv time.Duration
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		resp, err := client.Register(ctx, connect.NewRequest(&brainv1.RegisterRequest{
			NodeId: a.node, Name: a.name, CgroupMode: "hybrid", FailureDomain: "rack-" + a.name[len(a.name)-2:],
			Capacity: &brainv1.Resources{Amounts: map[string]int64{"cpu": 32000, "memory": 128 << 30}},
		}))
		if err == nil {
			iv = time.Duration(resp.Msg.GetHeartbeatIntervalMs()) * time.Millisecond
			break
		}
		if ctx.Err() != nil {
			cancel()
			return err
		}
		a.f.registerRetries.Add(1)
		time.Sleep(backoff)
	}
	a.mu.Lock()
	a.interval, a.cancel, a.tr = iv, cancel, tr
	a.mu.Unlock()
	a.done.Add(2)
	go func() { defer a.done.Done(); a.heartbeats(ctx, client) }()
	go func() { defer a.done.Done(); a.follow(ctx, client) }()
	return nil
}

// stop ends the loops and closes the connection, as a killed agent would.
func (a *agent) stop() {
	a.mu.Lock()
	cancel, tr := a.cancel, a.tr
	a.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	a.done.Wait()
	tr.CloseIdleConnections()
}

func (a *agent) heartbeats(ctx context.Context, client brainv1connect.AgentServiceClient) {
	a.mu.Lock()
	iv := a.interval
	a.mu.Unlock()
	// Spread the fleet's heartbeats over the interval.
	wait := time.Duration(rand.Int64N(int64(iv) + 1))
	storm := a.f.storm
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-storm:
			storm = nil
		}
		a.mu.Lock()
		v := a.version
		a.mu.Unlock()
		resp, err := client.Heartbeat(ctx, connect.NewRequest(&brainv1.HeartbeatRequest{
			NodeId: a.node, Name: a.name, AppliedVersion: v, LentCpuMilli: 16000, LentMemoryBytes: 64 << 30,
			Usage:                  []*brainv1.ClassUsage{{Class: "online", CpuMilli: 8000, MemoryBytes: 32 << 30}},
			OnlineRunqLatencyP99Us: 150, CpuPressureSomeAvg10: 1.5,
		}))
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			a.f.heartbeatErrors.Add(1)
		default:
			a.f.heartbeats.Add(1)
			a.f.intervalMs.Store(resp.Msg.GetHeartbeatIntervalMs())
			wait = time.Duration(resp.Msg.GetHeartbeatIntervalMs()) * time.Millisecond
		}
	}
}

// follow streams the target from the version held, acknowledges every
// update and notes when each replica first arrived.
func (a *agent) follow(ctx context.Context, client brainv1connect.AgentServiceClient) {
	for ctx.Err() == nil {
		a.mu.Lock()
		known := a.version
		a.mu.Unlock()
		s, err := client.Targets(ctx, connect.NewRequest(&brainv1.TargetsRequest{NodeId: a.node, Name: a.name, KnownVersion: known}))
		if err == nil {
			for s.Receive() {
				u := s.Msg()
				a.mu.Lock()
				a.version = u.GetVersion()
				a.mu.Unlock()
				_, err := client.Ack(ctx, connect.NewRequest(&brainv1.AckRequest{NodeId: a.node, Name: a.name, AppliedVersion: u.GetVersion()}))
				if err != nil {
					continue
				}
				a.f.acks.Add(1)
				now := time.Now()
				a.f.mu.Lock()
				for _, c := range u.GetUpsert() {
					if _, ok := a.f.seen[c.GetId()]; !ok {
						a.f.seen[c.GetId()] = now
					}
				}
				a.f.mu.Unlock()
			}
			s.Close()
		}
		if ctx.Err() != nil {
			return
		}
		// The stream failed to open or ended (error or not): follow again.
		a.f.streamErrors.Add(1)
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (f *fleet) seenAt(id string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.seen[id]
	return t, ok
}
