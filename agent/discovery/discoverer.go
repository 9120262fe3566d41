package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/procfs"

	"github.com/sluicehq/sluice/qos"
)

// Config configures a Discoverer.
type Config struct {
	// ContainerdAddress is containerd's gRPC socket; empty turns container
	// discovery off.
	ContainerdAddress string
	// CgroupRoot is the hierarchy walked for rule workloads: the cpu
	// controller's, as the host's cgroupfs.Layout gives it
	// (layout.Hierarchy(cgroupfs.CPU): the v1 cpu mount on v1 and hybrid
	// hosts, the root on v2); empty turns rule discovery off.
	CgroupRoot string
	Rules      []qos.ClassRule
	// ResyncInterval is how often everything is listed again, since
	// containerd events can be missed and cgroup creation has no event
	// here. Default 10s.
	ResyncInterval time.Duration
	// MaxDepth bounds the cgroup walk below CgroupRoot. Default 4
	// (deep enough for /kubepods.slice/<qos>.slice/<pod>.slice/<ctr>.scope).
	MaxDepth int
	// ProcRoot is where task start times are read. Default /proc.
	ProcRoot string
	// ConnectTimeout bounds one connection attempt to containerd. Default 2s.
	ConnectTimeout time.Duration
	// ReconnectBackoffMax caps the wait between connection attempts, which
	// doubles from 100ms. Default 5s.
	ReconnectBackoffMax time.Duration
}

// DiscoveryStatus is the state of container discovery, for metrics and
// status pages.
type DiscoveryStatus struct {
	ContainerdConnected bool `json:"containerdConnected"`
	// LastError is the last containerd error, kept after reconnecting.
	LastError string `json:"lastError,omitempty"`
}

// Discoverer keeps the current list of workloads. Workloads, Status,
// SetRules and KillTask are safe for concurrent use; Run runs once.
type Discoverer struct {
	cfg  Config
	log  *slog.Logger
	proc procfs.FS

	rulesChanged chan struct{}
	// containersStale asks the containerd session for a full listing:
	// containers that no label classes are classed by the rules too.
	containersStale chan struct{}

	mu         sync.Mutex
	rules      []qos.ClassRule
	containers map[string][]Workload // by namespace, last good listing
	ruleWL     []Workload
	snapshot   []Workload
	status     DiscoveryStatus
	reported   bool // a containerd outage was logged and not yet cleared
	conn       *containerdConn
	warned     map[string]bool    // "ns/id: warning" already logged
	starts     map[string]startAt // by ns/id
}

type startAt struct {
	pid uint32
	at  time.Time
}

// New validates cfg and returns a Discoverer; nothing is listed until Run.
func New(cfg Config, log *slog.Logger) (*Discoverer, error) {
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = 10 * time.Second
	}
	if cfg.MaxDepth <= 0 {
		cfg.MaxDepth = 4
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 2 * time.Second
	}
	if cfg.ReconnectBackoffMax <= 0 {
		cfg.ReconnectBackoffMax = 5 * time.Second
	}
	if err := ValidateRules(cfg.Rules); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	fs, err := procfs.NewFS(cfg.ProcRoot)
	if err != nil {
		return nil, fmt.Errorf("discovery: proc root: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Discoverer{
		cfg:             cfg,
		log:             log.With("component", "discovery"),
		proc:            fs,
		rulesChanged:    make(chan struct{}, 1),
		containersStale: make(chan struct{}, 1),
		rules:           append([]qos.ClassRule(nil), cfg.Rules...),
		containers:      map[string][]Workload{},
		warned:          map[string]bool{},
		starts:          map[string]startAt{},
	}, nil
}

// Run discovers until ctx is done, then returns nil. Containerd outages are
// retried with backoff, never returned.
func (d *Discoverer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if d.cfg.CgroupRoot != "" {
		wg.Go(func() { d.runRules(ctx) })
	}
	if d.cfg.ContainerdAddress != "" {
		wg.Go(func() { d.runContainerd(ctx) })
	}
	wg.Wait()
	return nil
}

// Workloads returns the current workloads: containers (sorted by
// namespace/id), then rule workloads (in walk order). The result is a copy.
func (d *Discoverer) Workloads() []Workload {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Workload, len(d.snapshot))
	for i, w := range d.snapshot {
		out[i] = w.clone()
	}
	return out
}

// Status reports whether containerd is reachable and its last error.
func (d *Discoverer) Status() DiscoveryStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status
}

// SetRules replaces the rules (hot reload); the cgroup tree is walked and
// containers are listed again soon. Invalid rules are an error naming each problem, and the previous
// rules stay in force.
func (d *Discoverer) SetRules(rules []qos.ClassRule) error {
	if err := ValidateRules(rules); err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	d.mu.Lock()
	d.rules = append([]qos.ClassRule(nil), rules...)
	d.mu.Unlock()
	for _, ch := range []chan struct{}{d.rulesChanged, d.containersStale} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	return nil
}

// Close releases the containerd connection. Call it after Run returned.
func (d *Discoverer) Close() error {
	d.mu.Lock()
	c := d.conn
	d.conn = nil
	d.mu.Unlock()
	if c != nil {
		return c.close()
	}
	return nil
}

func (d *Discoverer) runRules(ctx context.Context) {
	t := time.NewTicker(d.cfg.ResyncInterval)
	defer t.Stop()
	failing := false
	for {
		d.mu.Lock()
		skip := map[string]bool{}
		for _, ws := range d.containers {
			for _, w := range ws {
				skip[w.CgroupPath] = true
			}
		}
		rules := d.rules
		d.mu.Unlock()
		ws, err := WalkRules(d.cfg.CgroupRoot, d.cfg.MaxDepth, rules, skip)
		switch {
		case err != nil && !failing:
			// Keep the last good listing: a transient walk error must not
			// make host workloads vanish.
			d.log.Warn("cgroup walk failed; keeping the last rule workloads", "root", d.cfg.CgroupRoot, "err", err)
			failing = true
		case err == nil:
			if failing {
				d.log.Info("cgroup walk works again", "root", d.cfg.CgroupRoot)
			}
			failing = false
			d.mu.Lock()
			d.ruleWL = ws
			d.refreshLocked()
			d.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.rulesChanged:
		}
	}
}

// refreshLocked rebuilds the snapshot; d.mu must be held.
func (d *Discoverer) refreshLocked() {
	d.snapshot = merge(d.containers, d.ruleWL)
}

// warnOnce logs a classification warning the first time it is seen for a
// container, not on every resync.
func (d *Discoverer) warnOnceLocked(key, msg string) {
	k := key + ": " + msg
	if d.warned[k] {
		return
	}
	d.warned[k] = true
	d.log.Warn(msg, "container", key)
}

// ErrNotConnected is wrapped by KillTask when containerd is unreachable.
var ErrNotConnected = errors.New("containerd not connected")
