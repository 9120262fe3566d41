package brainlink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
)

// Config wires a Link.
type Config struct {
	// BrainURL is the brain's base URL, e.g. http://127.0.0.1:9480, or a
	// comma-separated list of several brains' URLs: the link finds the
	// leader among them (any brain forwards to it; a leader URL named by
	// an answer is preferred) and moves on when one fails.
	BrainURL string
	// StateDir keeps the node ID and the last target.
	StateDir string
	// HostName is the host's name at the brain (a DNS label).
	HostName     string
	Registration Registration
	// Staleness is how long without hearing from the brain before the
	// host overrides fall back to local policy. Default 2 minutes.
	Staleness  time.Duration
	HTTPClient *http.Client
	Logger     *slog.Logger
	// Now reads the clock; default time.Now.
	Now func() time.Time
	// Logs reads the tail of a container's output for the brain's log
	// requests: at most maxBytes, and whether older output was left out.
	// nil answers every request with an error.
	Logs func(container string, maxBytes int64) ([]byte, bool, error)
}

// Link is one agent's connection to the brain.
type Link struct {
	cfg    Config
	log    *slog.Logger
	brains *brains
	nodeID string

	mu          sync.Mutex
	target      Target
	applied     uint64
	registered  bool
	lastContact time.Time
	lastErr     string
	interval    time.Duration
	changed     chan struct{}
	// epoch is the highest leader epoch heard (persisted with the target).
	epoch uint64
	// refused counts target updates refused for a stale epoch.
	refused int
}

// New loads (or creates) the node ID and the last persisted target.
func New(cfg Config) (*Link, error) {
	if cfg.BrainURL == "" || cfg.StateDir == "" || cfg.HostName == "" {
		return nil, errors.New("brainlink: brain URL, state dir and host name are required")
	}
	if cfg.Staleness <= 0 {
		cfg.Staleness = 2 * time.Minute
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("brainlink: state dir: %w", err)
	}
	id, err := loadNodeID(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("brainlink: %w", err)
	}
	t, err := loadTarget(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("brainlink: %w", err)
	}
	bs, err := newBrains(cfg.BrainURL, func(url string) brainv1connect.AgentServiceClient {
		return brainv1connect.NewAgentServiceClient(cfg.HTTPClient, url)
	})
	if err != nil {
		return nil, fmt.Errorf("brainlink: %w", err)
	}
	l := &Link{
		cfg: cfg, log: cfg.Logger.With("component", "brainlink"), nodeID: id, brains: bs,
		target: t, interval: 10 * time.Second, changed: make(chan struct{}), epoch: t.Epoch,
	}
	if t.Version > 0 {
		// A restarted agent gives its persisted target a full staleness
		// window, as a restarted brain gives hosts a full TTL.
		l.lastContact = cfg.Now()
	}
	return l, nil
}

// NodeID is the host's node ID, the same across restarts.
func (l *Link) NodeID() string { return l.nodeID }

// Effective is the target the agent should run now: the last one received
// (or persisted), without its overrides once the brain has been silent for
// longer than the staleness limit.
func (l *Link) Effective() Target {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.target
	t.Containers = slices.Clone(t.Containers)
	if l.staleLocked() {
		t.Overrides = nil
	}
	return t
}

// Changed is closed when a new target arrives (and replaced).
func (l *Link) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

func (l *Link) staleLocked() bool {
	return l.lastContact.IsZero() || l.cfg.Now().Sub(l.lastContact) > l.cfg.Staleness
}

// Status reports the link's state.
func (l *Link) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Status{
		NodeID: l.nodeID, Registered: l.registered, LastContact: l.lastContact, Stale: l.staleLocked(),
		TargetVersion: l.target.Version, AppliedVersion: l.applied, LastError: l.lastErr,
		Brain: l.brains.current(), Epoch: l.epoch, RefusedStale: l.refused,
	}
}

// Applied tells the brain what the agent applied of version v. Versions
// the link never received are refused.
func (l *Link) Applied(ctx context.Context, v uint64, results []ItemResult) error {
	l.mu.Lock()
	if v > l.target.Version {
		l.mu.Unlock()
		return fmt.Errorf("brainlink: applied version %d is newer than the target held (%d)", v, l.target.Version)
	}
	if v > l.applied {
		l.applied = v
	}
	l.mu.Unlock()
	req := &brainv1.AckRequest{NodeId: l.nodeID, Name: l.cfg.HostName, AppliedVersion: v}
	for _, r := range results {
		req.Results = append(req.Results, &brainv1.ItemResult{Id: r.ID, Result: r.Result, Message: r.Message})
	}
	resp, err := l.brains.client().Ack(ctx, connect.NewRequest(req))
	if err != nil {
		return fmt.Errorf("brainlink: ack %d: %w", v, err)
	}
	l.brains.follow(resp.Header())
	l.contact()
	return nil
}

func (l *Link) contact() {
	l.mu.Lock()
	l.lastContact = l.cfg.Now()
	l.lastErr = ""
	l.mu.Unlock()
}

func (l *Link) fail(what string, err error) {
	l.mu.Lock()
	l.lastErr = fmt.Sprintf("%s: %v", what, err)
	l.mu.Unlock()
}

// Run registers, then heartbeats and follows the target until ctx ends,
// retrying with backoff whenever the brain cannot be reached.
func (l *Link) Run(ctx context.Context, report Reporter) error {
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		if backoff > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
		}
		if err := l.register(ctx); err != nil {
			l.fail("register", err)
			l.log.Warn("register failed", "brain", l.brains.current(), "err", err)
			l.brains.next()
			backoff = min(max(2*backoff, 500*time.Millisecond), 30*time.Second)
			// A name held by another live node does not heal by retrying
			// fast; a configuration error is reported, then retried slowly.
			continue
		}
		backoff = 0
		sctx, cancel := context.WithCancel(ctx)
		// streamDone is closed (not sent on) when the stream ends, so that
		// both the heartbeat loop and this one can wait on it.
		streamDone := make(chan struct{})
		var streamErr error
		go func() { streamErr = l.follow(sctx); close(streamDone) }()
		err := l.heartbeats(sctx, report, streamDone)
		cancel()
		<-streamDone
		if errors.Is(err, errStreamEnded) {
			err = fmt.Errorf("target stream: %w", streamErr)
		}
		if ctx.Err() != nil {
			return nil
		}
		l.fail("connection", err)
		l.log.Warn("lost the brain; reconnecting", "brain", l.brains.current(), "err", err)
		l.brains.next()
		backoff = 500 * time.Millisecond
	}
	return nil
}

func (l *Link) register(ctx context.Context) error {
	r := l.cfg.Registration
	resp, err := l.brains.client().Register(ctx, connect.NewRequest(&brainv1.RegisterRequest{
		NodeId: l.nodeID, Name: l.cfg.HostName, Capacity: &brainv1.Resources{Amounts: r.Capacity},
		Gpus: int32(r.GPUs), GpuModel: r.GPUModel, Labels: r.Labels, FailureDomain: r.FailureDomain,
		CgroupMode: r.CgroupMode, Capabilities: r.Capabilities,
	}))
	if err != nil {
		return err
	}
	if err := l.heardEpoch("register", resp.Msg.GetEpoch()); err != nil {
		return err
	}
	l.brains.follow(resp.Header())
	l.mu.Lock()
	l.registered = true
	l.setInterval(resp.Msg.GetHeartbeatIntervalMs())
	l.mu.Unlock()
	l.contact()
	return nil
}

func (l *Link) setInterval(ms int64) {
	if ms > 0 {
		l.interval = time.Duration(ms) * time.Millisecond
	}
}

var errStreamEnded = errors.New("target stream ended")

// heartbeats sends one heartbeat per interval until the stream or a
// heartbeat fails.
func (l *Link) heartbeats(ctx context.Context, report Reporter, streamDone <-chan struct{}) error {
	for {
		if err := l.heartbeat(ctx, report()); err != nil {
			return err
		}
		l.mu.Lock()
		iv := l.interval
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-streamDone:
			return errStreamEnded
		case <-time.After(iv):
		}
	}
}

func (l *Link) heartbeat(ctx context.Context, r Report) error {
	l.mu.Lock()
	applied := l.applied
	l.mu.Unlock()
	req := &brainv1.HeartbeatRequest{
		NodeId: l.nodeID, Name: l.cfg.HostName, LentCpuMilli: r.LentCPUMilli, LentMemoryBytes: r.LentMemoryBytes,
		OnlineRunqLatencyP99Us: float64(r.OnlineRunqLatencyP99.Microseconds()), CpuPressureSomeAvg10: r.CPUPressureSome10,
		MemoryPressureSomeAvg10: r.MemPressureSome10, AppliedVersion: applied, CpuWaterLevel: r.CPUWaterLevel,
	}
	for _, u := range r.Usage {
		req.Usage = append(req.Usage, &brainv1.ClassUsage{Class: u.Class, CpuMilli: u.CPUMilli, MemoryBytes: u.MemoryBytes})
	}
	for _, k := range r.Kills {
		req.Kills = append(req.Kills, &brainv1.Kill{Container: k.Container, Reason: k.Reason})
	}
	for _, c := range r.Containers {
		req.Containers = append(req.Containers, &brainv1.ContainerState{Id: c.ID, Job: c.Job, State: c.State, Restarts: int32(c.Restarts)})
	}
	// A brain that stopped answering (paused, partitioned) must not hold
	// the link: past twice the interval, try the next one.
	l.mu.Lock()
	timeout := max(2*l.interval, 5*time.Second)
	l.mu.Unlock()
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := l.brains.client().Heartbeat(hctx, connect.NewRequest(req))
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if err := l.heardEpoch("heartbeat", resp.Msg.GetEpoch()); err != nil {
		return err
	}
	l.mu.Lock()
	l.setInterval(resp.Msg.GetHeartbeatIntervalMs())
	l.mu.Unlock()
	l.contact()
	return nil
}

// follow streams the target from the version held.
func (l *Link) follow(ctx context.Context) error {
	l.mu.Lock()
	known := l.target.Version
	l.mu.Unlock()
	s, err := l.brains.client().Targets(ctx, connect.NewRequest(&brainv1.TargetsRequest{NodeId: l.nodeID, Name: l.cfg.HostName, KnownVersion: known}))
	if err != nil {
		return err
	}
	defer s.Close()
	for s.Receive() {
		u := s.Msg()
		// A deposed leader's stream is left before anything it asks.
		if err := l.heardEpoch("targets", u.GetEpoch()); err != nil {
			return err
		}
		for _, r := range u.GetLogRequests() {
			go l.answerLogs(ctx, r)
		}
		if len(u.GetLogRequests()) > 0 && !u.GetFull() && u.GetVersion() == known && u.GetBaseVersion() == known &&
			len(u.GetUpsert())+len(u.GetRemove()) == 0 {
			// Only log requests: the held target stands.
			continue
		}
		if err := l.receive(u); err != nil {
			return err
		}
		known = u.GetVersion()
	}
	if err := s.Err(); err != nil {
		return err
	}
	return errors.New("stream ended")
}

// heardEpoch notes a leader epoch from an answer; one below the highest
// seen comes from a deposed leader, and the link leaves that brain.
func (l *Link) heardEpoch(what string, e uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e != 0 && e < l.epoch {
		return fmt.Errorf("%s: %w: the brain answered for epoch %d, epoch %d was seen", what, ErrStaleEpoch, e, l.epoch)
	}
	l.epoch = max(l.epoch, e)
	return nil
}

// answerLogs reads what the brain asked for and sends it; a failure is
// logged (the brain's caller sees no answer and says so).
func (l *Link) answerLogs(ctx context.Context, r *brainv1.LogRequest) {
	req := &brainv1.PutLogsRequest{NodeId: l.nodeID, Name: l.cfg.HostName, RequestId: r.GetRequestId()}
	switch {
	case l.cfg.Logs == nil:
		req.Error = "this agent keeps no container output"
	default:
		data, truncated, err := l.cfg.Logs(r.GetContainer(), r.GetMaxBytes())
		if err != nil {
			req.Error = err.Error()
		}
		req.Data, req.Truncated = data, truncated
	}
	if _, err := l.brains.client().PutLogs(ctx, connect.NewRequest(req)); err != nil && ctx.Err() == nil {
		l.log.Warn("container logs not sent to the brain", "container", r.GetContainer(), "err", err)
	}
}

// receive applies an update to the held target, persists it, then
// exposes it. An update from a lower epoch than one seen is refused
// (reported in Status) and the stream left.
func (l *Link) receive(u *brainv1.TargetsResponse) error {
	l.mu.Lock()
	cur, seen := l.target, l.epoch
	l.mu.Unlock()
	next, err := applyUpdate(cur, seen, u)
	if errors.Is(err, ErrStaleEpoch) {
		l.mu.Lock()
		l.refused++
		l.mu.Unlock()
		l.log.Warn("refused a target from a deposed leader", "version", u.GetVersion(), "epoch", u.GetEpoch(), "seen_epoch", seen)
	}
	if err != nil {
		return err
	}
	if err := saveTarget(l.cfg.StateDir, next); err != nil {
		return err
	}
	l.mu.Lock()
	l.target = next
	l.epoch = max(l.epoch, next.Epoch)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	l.contact()
	l.log.Info("target received", "version", next.Version, "epoch", u.GetEpoch(), "full", u.GetFull(), "containers", len(next.Containers))
	return nil
}

// ErrStaleEpoch marks an answer or target from a leader older than one
// the agent has heard from: a deposed or paused brain.
var ErrStaleEpoch = errors.New("stale leader epoch")

// applyUpdate turns cur into the update's version: a full document
// replaces it, a delta must start at cur's version. An update from an
// epoch below seen is refused, and versions never go backwards, except a
// full document from a newer epoch (a leader on a store restored from a
// snapshot). Epoch 0 is a brain that predates epochs: versions alone rule.
func applyUpdate(cur Target, seen uint64, u *brainv1.TargetsResponse) (Target, error) {
	e := u.GetEpoch()
	if e != 0 && e < seen {
		return cur, fmt.Errorf("target version %d: %w: sent at epoch %d, epoch %d was seen", u.GetVersion(), ErrStaleEpoch, e, seen)
	}
	if u.GetVersion() < cur.Version && !(u.GetFull() && e > seen) {
		return cur, fmt.Errorf("target update to version %d is older than the held %d", u.GetVersion(), cur.Version)
	}
	byID := map[string]Container{}
	if !u.GetFull() {
		if u.GetBaseVersion() != cur.Version {
			return cur, fmt.Errorf("target delta on version %d, the agent holds %d", u.GetBaseVersion(), cur.Version)
		}
		for _, c := range cur.Containers {
			byID[c.ID] = c
		}
		for _, id := range u.GetRemove() {
			delete(byID, id)
		}
	}
	for _, c := range u.GetUpsert() {
		if c.GetId() == "" {
			return cur, errors.New("target update: container without an id")
		}
		byID[c.GetId()] = containerOf(c)
	}
	next := Target{Version: u.GetVersion(), Epoch: max(e, seen), Overrides: overridesOf(u.GetOverrides())}
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		next.Containers = append(next.Containers, byID[id])
	}
	return next, nil
}

func containerOf(c *brainv1.Container) Container {
	return Container{
		ID: c.GetId(), Job: c.GetJob(), App: c.GetApp(), Image: c.GetImage(), Command: c.GetCommand(), Env: c.GetEnv(),
		Resources: c.GetResources().GetAmounts(), Class: c.GetClass(), Priority: int(c.GetPriority()), Labels: c.GetLabels(),
		Restart: c.GetRestart(),
	}
}

func overridesOf(o *brainv1.QoSOverrides) *Overrides {
	if o == nil {
		return nil
	}
	return &Overrides{
		CPUWaterLevel: o.CpuWaterLevel, MemoryWaterLevel: o.MemoryWaterLevel,
		OfflineCPUCapMilli: o.OfflineCpuCapMilli, OfflineMemoryCapBytes: o.OfflineMemoryCapBytes,
	}
}
