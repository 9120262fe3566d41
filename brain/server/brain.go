package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/auth"
	"github.com/sluicehq/sluice/brain/safety"
	"github.com/sluicehq/sluice/brain/store"
	"github.com/sluicehq/sluice/brain/trace"
)

// Config wires a Brain.
type Config struct {
	// Safety draws the lines of the hosts' colocation safety state;
	// zero: safety.DefaultThresholds.
	Safety safety.Thresholds

	Store    *store.Store
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// Now reads the clock; default time.Now.
	Now      func() time.Time
	Liveness Liveness
	// SampleFeasible bounds the hosts scored per placement (place.Profile's
	// SampleFeasible: visited in a seeded random order, scoring stops
	// after this many feasible ones); 0 scores every host. Default 128.
	SampleFeasible int
	// HistoryPerHost is how many target deltas are kept per host for
	// agents that reconnect a few versions behind; older gaps get a full
	// document. Default 16.
	HistoryPerHost int
	// Epoch is the leader's epoch (its election revision, see HA) that
	// every target update and heartbeat answer carries; 0 without election.
	Epoch uint64
	// Authenticate makes Handler authenticate every request by its
	// verified client certificate and authorise it by identity and scope
	// (serve it with ServeTLS). Without it the brain is plain text, for
	// loopback only, and every caller may do everything.
	Authenticate bool
	// Overload sets when agent work is shed; zero takes DefaultOverload.
	Overload Overload
}

// hostLive is what the brain knows about a host beyond its record: all of
// it in memory only, rebuilt from the next heartbeats.
type hostLive struct {
	fleetLive // what only the fleet view reads (fleet.go)

	lastSeen        time.Time
	lentCPUMilli    int64
	lentMemoryBytes int64
	reportedLend    bool
	usage           map[string]int64
	runqP99Us       float64
	cpuPSI, memPSI  float64
	// waterLevel is the CPU water level the host's last decision applied
	// (0: not reported).
	waterLevel float64
	running    int
	kills      int64
	applied    uint64
	results    int
	// heard: a heartbeat came since the brain started; states are its
	// containers' states by ID (replaced, never written: passes share
	// it) at applied version statesVersion.
	heard         bool
	states        map[string]string
	statesVersion uint64
	// changed is closed and replaced when the host's target changes (or
	// a log request waits); signal publishes the new channel with the
	// delta that led to the new version, so the host's stream sends it
	// without taking the brain's lock (signal).
	changed chan struct{}
	signal  atomic.Pointer[signal]
	// history holds the deltas that led to the current version, oldest first.
	history []delta
	// committed maps recent versions to their commit time, for push lag.
	committed map[uint64]time.Time
	// logReqs wait for the target stream to carry them.
	logReqs []*brainv1.LogRequest
}

// delta turns target version From into To.
type delta struct {
	From, To uint64
	Upsert   []store.Container
	Remove   []string
}

// Brain is the service. Create with New, start with Run.
type Brain struct {
	fleetState // the event stream and placement explanations (fleet.go)

	cfg     Config
	log     *slog.Logger
	m       *metrics
	now     func() time.Time
	started time.Time

	mu sync.Mutex
	// durable cache, written by the reconcile loop only.
	st *store.State
	// per host liveness, written by handlers.
	live map[string]*hostLive
	// queued changes for the next pass.
	pending []*change
	// byJob indexes the cache's placements by job, sorted by index.
	byJob map[string][]store.Placement
	// pendingReason explains why a job's replicas are not all placed.
	pendingReason map[string]string
	// rolls tracks rollouts in progress, written by the reconcile loop.
	rolls map[string]rollTrack
	// logWaits are Logs calls waiting for an agent's answer, by request.
	logWaits map[string]*logWait
	logSeq   uint64
	kick     chan struct{}
	ready    chan struct{}
	// stopped is closed when Run returns: target streams end with it, so
	// agents reconnect to whoever leads next.
	stopped chan struct{}

	// revoked refuses revoked host certificates (read by every request);
	// revocations are the records behind it, under mu.
	revoked     *auth.Revocations
	revocations map[string]store.Revocation
	access      *access
	shed        *shedder
}

// New loads the state from the store and returns a brain that has not
// started its loop. Every known host gets a full TTL from now before it can
// be marked down: a restarted brain does not re-place the fleet.
func New(ctx context.Context, cfg Config) (*Brain, error) {
	if cfg.Store == nil {
		return nil, errors.New("brain: no store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Liveness == (Liveness{}) {
		cfg.Liveness = DefaultLiveness()
	}
	if cfg.SampleFeasible == 0 {
		cfg.SampleFeasible = 128
	}
	if cfg.SampleFeasible < 0 {
		cfg.SampleFeasible = 0
	}
	if cfg.HistoryPerHost <= 0 {
		cfg.HistoryPerHost = 16
	}
	st, err := cfg.Store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("brain: %w", err)
	}
	b := &Brain{
		cfg: cfg, log: cfg.Logger.With("component", "brain"), m: newMetrics(cfg.Registry), now: cfg.Now,
		st: st, live: map[string]*hostLive{}, pendingReason: map[string]string{}, rolls: map[string]rollTrack{}, logWaits: map[string]*logWait{},
		kick: make(chan struct{}, 1), ready: make(chan struct{}), stopped: make(chan struct{}),
	}
	b.started = b.now()
	b.revocations = maps.Clone(st.Revoked)
	cutoffs := map[string]time.Time{}
	for h, r := range st.Revoked {
		cutoffs[h] = r.Cutoff
	}
	b.revoked = auth.NewRevocations(cutoffs)
	b.access = newAccess(cfg.Registry, b.revoked, cfg.Now)
	b.shed = newShedder(cfg.Registry, cfg.Overload)
	b.indexJobs()
	for name := range st.Hosts {
		b.live[name] = b.newLive()
	}
	b.updateHostGauge()
	if err := b.initFleet(); err != nil {
		return nil, fmt.Errorf("brain: %w", err)
	}
	b.log.Info("state loaded", "hosts", len(st.Hosts), "jobs", len(st.Jobs), "placements", len(st.Placements), "revision", st.Revision)
	return b, nil
}

func (b *Brain) newLive() *hostLive {
	return &hostLive{lastSeen: b.started, changed: make(chan struct{}), committed: map[uint64]time.Time{}}
}

// Run reconciles until ctx ends: on every queued change and every second
// (liveness).
func (b *Brain) Run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	defer close(b.stopped)
	close(b.ready)
	defer b.events.Close()
	backoff := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			b.failPending(ctx.Err())
			return nil
		case <-b.kick:
		case <-tick.C:
		}
		if backoff > 0 {
			select {
			case <-ctx.Done():
				b.failPending(ctx.Err())
				return nil
			case <-time.After(backoff):
			}
		}
		more, err := b.pass(ctx)
		switch {
		case err == nil:
			backoff = 0
		case errors.Is(err, store.ErrFenced):
			// Another brain leads now: stop at once, placing nothing more.
			b.failPending(err)
			return err
		case errors.Is(err, store.ErrConflict):
			backoff = 0
			b.log.Warn("store changed under the brain; reloaded", "err", err)
		default:
			backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
			b.log.Error("reconcile pass failed; retrying", "err", err, "backoff", backoff)
		}
		if more || err != nil {
			b.poke()
		}
	}
}

func (b *Brain) poke() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

func (b *Brain) failPending(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.pending {
		c.finish(fmt.Errorf("brain stopping: %w", err))
	}
	b.pending = nil
}

// ttl is the current TTL; caller holds mu.
func (b *Brain) ttl() time.Duration { return b.cfg.Liveness.TTL(len(b.st.Hosts)) }

func (b *Brain) updateHostGauge() {
	var up, down, draining int
	for _, h := range b.st.Hosts {
		switch {
		case h.Down:
			down++
		case h.Cordoned:
			draining++
		default:
			up++
		}
	}
	b.m.hosts.WithLabelValues("up").Set(float64(up))
	b.m.hosts.WithLabelValues("down").Set(float64(down))
	b.m.hosts.WithLabelValues("draining").Set(float64(draining))
}

// hostState names a host's state for people.
func hostState(h store.Host) string {
	switch {
	case h.Down:
		return "down"
	case h.Cordoned:
		return "draining"
	}
	return "up"
}

// placementsOf lists a job's placements by index; caller holds mu.
func (b *Brain) placementsOf(job string) []store.Placement { return b.byJob[job] }

// indexJobs rebuilds byJob from the cache; caller holds mu.
func (b *Brain) indexJobs() {
	b.byJob = map[string][]store.Placement{}
	for _, p := range b.st.Placements {
		b.byJob[p.Job] = append(b.byJob[p.Job], p)
	}
	for _, ps := range b.byJob {
		sort.Slice(ps, func(i, j int) bool { return ps[i].Index < ps[j].Index })
	}
}

// jobsSorted lists jobs by name; caller holds mu.
func (b *Brain) jobsSorted() []trace.Job {
	out := make([]trace.Job, 0, len(b.st.Jobs))
	for _, j := range b.st.Jobs {
		out = append(out, j)
	}
	trace.SortJobs(out)
	return out
}
