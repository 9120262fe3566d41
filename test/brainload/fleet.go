package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
)

// fleet is a set of protocol-level agents: they register, heartbeat at the
// interval handed out, follow their targets and acknowledge every update.
type fleet struct {
	client     brainv1connect.AgentServiceClient
	n          int
	heartbeats atomic.Int64
	errors     atomic.Int64
	mu         sync.Mutex
	acks       map[string]time.Time // replica ID -> first ack of a target holding it
	interval   []time.Duration
}

func newFleet(hc *http.Client, url string, n int) *fleet {
	return &fleet{client: brainv1connect.NewAgentServiceClient(hc, url), n: n, acks: map[string]time.Time{}, interval: make([]time.Duration, n)}
}

func name(i int) string { return fmt.Sprintf("sim-%04d", i) }

func (f *fleet) register(ctx context.Context) error {
	sem := make(chan struct{}, 64)
	errs := make(chan error, f.n)
	var wg sync.WaitGroup
	for i := range f.n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			resp, err := f.client.Register(ctx, connect.NewRequest(&brainv1.RegisterRequest{
				NodeId: "node-" + name(i), Name: name(i), FailureDomain: fmt.Sprintf("rack-%d", i%20), CgroupMode: "hybrid",
				Capacity: &brainv1.Resources{Amounts: map[string]int64{"cpu": 32000, "memory": 128 << 30}},
			}))
			if err != nil {
				errs <- fmt.Errorf("register %s: %w", name(i), err)
				return
			}
			f.interval[i] = time.Duration(resp.Msg.GetHeartbeatIntervalMs()) * time.Millisecond
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (f *fleet) start(ctx context.Context) {
	for i := range f.n {
		go f.heartbeat(ctx, i)
		go f.follow(ctx, i)
	}
}

func (f *fleet) heartbeat(ctx context.Context, i int) {
	iv := f.interval[i]
	// Spread the fleet's heartbeats over the interval.
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Duration(i) * iv / time.Duration(f.n)):
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		_, err := f.client.Heartbeat(ctx, connect.NewRequest(&brainv1.HeartbeatRequest{
			NodeId: "node-" + name(i), Name: name(i), LentCpuMilli: 16000, LentMemoryBytes: 64 << 30,
			Usage: []*brainv1.ClassUsage{{Class: "online", CpuMilli: 8000, MemoryBytes: 32 << 30}},
		}))
		if err != nil && ctx.Err() == nil {
			f.errors.Add(1)
		} else {
			f.heartbeats.Add(1)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (f *fleet) follow(ctx context.Context, i int) {
	var version uint64
	for ctx.Err() == nil {
		s, err := f.client.Targets(ctx, connect.NewRequest(&brainv1.TargetsRequest{NodeId: "node-" + name(i), Name: name(i), KnownVersion: version}))
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for s.Receive() {
			u := s.Msg()
			version = u.GetVersion()
			_, err := f.client.Ack(ctx, connect.NewRequest(&brainv1.AckRequest{NodeId: "node-" + name(i), Name: name(i), AppliedVersion: version}))
			now := time.Now()
			if err != nil {
				continue
			}
			f.mu.Lock()
			for _, c := range u.GetUpsert() {
				if _, seen := f.acks[c.GetId()]; !seen {
					f.acks[c.GetId()] = now
				}
			}
			f.mu.Unlock()
		}
		s.Close()
	}
}

func (f *fleet) acked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.acks)
}

func (f *fleet) ackAt(id string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.acks[id]
	return t, ok
}
