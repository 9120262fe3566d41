package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/sluicehq/sluice/brain/store"
)

// DefaultLeaseTTL is the leader's etcd session lease. A killed leader's
// key expires between 2/3 of it and all of it after the kill (keep-alives
// go out every third of the TTL), and the next brain leads then: 3 s keeps
// failover well under 5 s while leaving a loaded 2-core machine two missed
// keep-alives of slack before a live leader is deposed. etcd refuses
// leases shorter than 1.5 election timeouts (1.5 s by default).
const DefaultLeaseTTL = 3 * time.Second

// HAConfig wires an HA: several brains sharing one etcd, one leading.
type HAConfig struct {
	// Client reaches the shared etcd (election, state, maintenance).
	Client *clientv3.Client
	// Prefix roots the state (store.DefaultPrefix when empty); brains with
	// the same prefix elect one leader among them.
	Prefix string
	// MaxOps is the etcd server's transaction limit.
	MaxOps int
	// AdvertiseURL is this brain's base URL as the others reach it; it is
	// the election value followers forward to.
	AdvertiseURL string
	// LeaseTTL is the leader's session lease, whole seconds; default
	// DefaultLeaseTTL.
	LeaseTTL time.Duration
	// Brain is the template of each term's brain; its Store, Registry and
	// Epoch are set per term.
	Brain Config
	// Registry takes the HA's own metrics (leadership, forwarding, store
	// health); each term's brain registers on a fresh registry that
	// Gatherer joins in.
	Registry prometheus.Registerer
	// Forward carries requests a follower forwards to the leader; default
	// a plaintext HTTP/1.1 and h2c transport.
	Forward http.RoundTripper
	// Maintain sets compaction and defragmentation (zero: defaults).
	Maintain Maintenance
	// Wrap, when set, dresses each term's API handler (the fleet view
	// wraps it with its pages); followers forward those paths too, so the
	// view always shows the leader's live state.
	Wrap   func(b *Brain, api http.Handler) (http.Handler, error)
	Logger *slog.Logger
}

// HA runs a brain that leads while it holds the etcd election and
// forwards every API call to the leader otherwise. Create with NewHA,
// start with Run, serve Handler.
type HA struct {
	cfg HAConfig
	log *slog.Logger
	m   *haMetrics

	mu sync.Mutex
	// brain, api and reg are the current term's, nil while following.
	brain *Brain
	api   http.Handler
	reg   *prometheus.Registry
	epoch int64
	// leader and leaderEpoch are the leader as the election last showed
	// (this brain's own term included).
	leader      string
	leaderEpoch int64
	health      StoreHealth
	becameLead  chan struct{}
}

// NewHA checks cfg and returns an HA that has not started campaigning.
func NewHA(cfg HAConfig) (*HA, error) {
	if cfg.Client == nil {
		return nil, errors.New("brain ha: no etcd client")
	}
	if cfg.AdvertiseURL == "" {
		return nil, errors.New("brain ha: no advertise URL (where the other brains forward to this one)")
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.LeaseTTL < time.Second || cfg.LeaseTTL%time.Second != 0 {
		return nil, fmt.Errorf("brain ha: lease ttl %s: etcd leases are whole seconds, at least 1s", cfg.LeaseTTL)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Forward == nil {
		cfg.Forward = defaultForward()
	}
	cfg.Maintain = cfg.Maintain.withDefaults()
	h := &HA{cfg: cfg, log: cfg.Logger.With("component", "brain-ha"), m: newHAMetrics(cfg.Registry), becameLead: make(chan struct{})}
	return h, nil
}

// Run campaigns until ctx ends: while this brain leads, its brain places
// and serves; when the lease is lost or a write is fenced out, the term
// ends at once and it campaigns again.
func (h *HA) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); h.observe(ctx) }()
	go func() { defer wg.Done(); h.watchHealth(ctx) }()
	defer wg.Wait()
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		if backoff > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
		}
		err := h.term(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			backoff = min(max(2*backoff, 200*time.Millisecond), 5*time.Second)
			h.log.Warn("leadership term ended; campaigning again", "err", err, "backoff", backoff)
		default:
			backoff = 0
		}
	}
	return nil
}

// term campaigns once and, when elected, leads until the session or a
// fenced write ends the term.
func (h *HA) term(ctx context.Context) error {
	sess, err := concurrency.NewSession(h.cfg.Client, concurrency.WithTTL(int(h.cfg.LeaseTTL/time.Second)), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("etcd session: %w", err)
	}
	defer sess.Close()
	// A session that expires while campaigning (this process was paused)
	// would leave Campaign waiting on a key that is gone.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sess.Done():
			cancel()
		case <-cctx.Done():
		}
	}()
	el := concurrency.NewElection(sess, store.ElectionPrefix(h.cfg.Prefix))
	if err := el.Campaign(cctx, h.cfg.AdvertiseURL); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	epoch := el.Rev()
	log := h.log.With("epoch", epoch)
	log.Info("elected leader", "key", el.Key())
	h.m.changes.WithLabelValues("won").Inc()
	err = h.lead(cctx, el, log)
	h.setTerm(nil, nil, nil, 0)
	h.m.changes.WithLabelValues("lost").Inc()
	switch {
	case errors.Is(err, store.ErrFenced):
		h.m.fenced.Inc()
		log.Warn("lost leadership: a write was fenced out; placing nothing more", "err", err)
	case ctx.Err() != nil:
		// Stopping: hand leadership over now rather than after the lease.
		rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
		if rerr := el.Resign(rctx); rerr != nil {
			log.Warn("resign on stop", "err", rerr)
		}
		rcancel()
		log.Info("resigned leadership")
		return nil
	default:
		log.Warn("lost leadership: session lease expired; placing nothing more", "err", err)
	}
	return err
}

// lead runs one term's brain until ctx (the session) ends or it is fenced.
func (h *HA) lead(ctx context.Context, el *concurrency.Election, log *slog.Logger) error {
	epoch := el.Rev()
	st := store.New(h.cfg.Client, h.cfg.Prefix, h.cfg.MaxOps).WithFence(store.Fence{Key: el.Key(), Epoch: epoch})
	reg := prometheus.NewRegistry()
	bc := h.cfg.Brain
	bc.Store, bc.Registry, bc.Epoch = st, reg, uint64(epoch)
	if bc.Logger == nil {
		bc.Logger = h.cfg.Logger
	}
	bc.Logger = bc.Logger.With("epoch", epoch)
	// The new leader rebuilds from etcd (and the next heartbeats): target
	// versions resume where the last leader committed them.
	b, err := New(ctx, bc)
	if err != nil {
		return fmt.Errorf("lead: %w", err)
	}
	api := b.Handler(prometheus.NewRegistry())
	if h.cfg.Wrap != nil {
		if api, err = h.cfg.Wrap(b, api); err != nil {
			return fmt.Errorf("lead: %w", err)
		}
	}
	h.setTerm(b, api, reg, epoch)
	var wg sync.WaitGroup
	defer wg.Wait()
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(1)
	go func() { defer wg.Done(); h.maintain(mctx, log) }()
	if err := b.Run(ctx); err != nil {
		return err
	}
	return ctx.Err()
}

func (h *HA) setTerm(b *Brain, api http.Handler, reg *prometheus.Registry, epoch int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.brain, h.reg, h.epoch, h.api = b, reg, epoch, api
	if b != nil {
		close(h.becameLead)
		h.becameLead = make(chan struct{})
		h.m.leader.Set(1)
		h.m.epoch.Set(float64(epoch))
	} else {
		h.m.leader.Set(0)
	}
}

// observe follows the election's leader, so followers know where to
// forward.
func (h *HA) observe(ctx context.Context) {
	for ctx.Err() == nil {
		sess, err := concurrency.NewSession(h.cfg.Client, concurrency.WithTTL(int(h.cfg.LeaseTTL/time.Second)), concurrency.WithContext(ctx))
		if err != nil {
			h.log.Warn("observe the election", "err", err)
			sleepCtx(ctx, time.Second)
			continue
		}
		el := concurrency.NewElection(sess, store.ElectionPrefix(h.cfg.Prefix))
		for resp := range el.Observe(ctx) {
			if len(resp.Kvs) == 0 {
				continue
			}
			kv := resp.Kvs[0]
			h.mu.Lock()
			h.leader, h.leaderEpoch = string(kv.Value), kv.CreateRevision
			h.mu.Unlock()
		}
		sess.Close()
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// Leading reports whether this brain leads now, and its epoch.
func (h *HA) Leading() (bool, int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.brain != nil, h.epoch
}

// Leader is the leader's URL and epoch as this brain knows them ("" when
// none is known yet).
func (h *HA) Leader() (string, int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.leaderLocked()
}

func (h *HA) leaderLocked() (string, int64) {
	if h.brain != nil {
		return h.cfg.AdvertiseURL, h.epoch
	}
	return h.leader, h.leaderEpoch
}

// Gatherer joins the HA's registry (given as base) with the current term's
// brain metrics.
func (h *HA) Gatherer(base prometheus.Gatherer) prometheus.Gatherer {
	return prometheus.Gatherers{base, prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		h.mu.Lock()
		reg := h.reg
		h.mu.Unlock()
		if reg == nil {
			return nil, nil
		}
		return reg.Gather()
	})}
}

type haMetrics struct {
	leader    prometheus.Gauge
	epoch     prometheus.Gauge
	changes   *prometheus.CounterVec
	fenced    prometheus.Counter
	forwarded *prometheus.CounterVec
	store     storeMetrics
}

func newHAMetrics(reg prometheus.Registerer) *haMetrics {
	m := &haMetrics{
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_brain_leader", Help: "1 while this brain leads (holds the etcd election), 0 while it follows.",
		}),
		epoch: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_brain_epoch", Help: "Epoch (election revision) of this brain's latest term as leader.",
		}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_brain_leadership_changes_total", Help: "Leadership terms by event: won, lost.",
		}, []string{"event"}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_brain_fenced_writes_total", Help: "Terms that ended because etcd refused a write for a lost leader key (nothing was written).",
		}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_brain_forwarded_requests_total", Help: "API requests a follower forwarded to the leader, by result: ok, unreachable, no_leader.",
		}, []string{"result"}),
		store: newStoreMetrics(),
	}
	reg.MustRegister(m.leader, m.epoch, m.changes, m.fenced, m.forwarded)
	m.store.register(reg)
	return m
}
