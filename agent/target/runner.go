package target

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/agent/brainlink"
	"github.com/sluicehq/sluice/agent/converge"
	"github.com/sluicehq/sluice/qos"
)

// Link is the brain connection the runner reads (agent/brainlink.Link).
type Link interface {
	// Effective is the target to run now (overrides dropped once stale).
	Effective() brainlink.Target
	// Changed is closed when a new target arrives.
	Changed() <-chan struct{}
	Status() brainlink.Status
	// Applied acknowledges what was applied of version v.
	Applied(ctx context.Context, v uint64, results []brainlink.ItemResult) error
}

// Converger runs containers (Containerd). Apply converges
// once and never waits for image pulls; it is never called concurrently
// with itself.
type Converger interface {
	Apply(ctx context.Context, specs []converge.Spec) []qos.IntentResult
	States() []converge.ContainerState
	// KubeletManaged: kubelet owns the host's containers; none launched.
	KubeletManaged() bool
}

// Config wires a Runner.
type Config struct {
	Link Link
	// Converger runs the target's containers; nil when the host has no
	// containerd: the containers are then acknowledged as unsupported.
	Converger Converger
	// DryRun is shown in the status (the converger was built with it).
	DryRun bool
	// Interval is how often the containers are converged without a new
	// target (restarts, backoffs, image fetches that finished). Default 1s.
	Interval time.Duration
	Log      *slog.Logger
}

// Runner converges the link's target and acknowledges it. Safe for
// concurrent use.
type Runner struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	converged uint64 // version of the last pass
	acked     uint64
	ackedKey  string
	results   []qos.IntentResult
}

// New returns a runner; Run starts its worker.
func New(cfg Config) *Runner {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Runner{cfg: cfg, log: cfg.Log.With("component", "target")}
}

// Targets are the QoS overrides in force now, for qos.Decide: the held
// target's, none once the link is stale or before any target.
func (r *Runner) Targets() qos.Targets { return QoS(r.cfg.Link.Effective()) }

// Run converges whenever a target arrives and every Interval, until ctx
// ends.
func (r *Runner) Run(ctx context.Context) error {
	tick := time.NewTicker(r.cfg.Interval)
	defer tick.Stop()
	for {
		changed := r.cfg.Link.Changed()
		r.pass(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-tick.C:
		}
	}
}

// pass converges once to the effective target and acknowledges it when
// its version or its results changed since the last acknowledgement.
func (r *Runner) pass(ctx context.Context) {
	t := r.cfg.Link.Effective()
	if t.Version == 0 {
		return // never held a target: leave every container as it is
	}
	specs := Specs(t.Containers)
	var rs []qos.IntentResult
	if r.cfg.Converger != nil {
		rs = r.cfg.Converger.Apply(ctx, specs)
	} else {
		now := time.Now()
		for _, s := range specs {
			rs = append(rs, qos.IntentResult{Intent: converge.IntentLaunch, Target: s.ID, Status: qos.ResultUnsupported,
				Err: "no containerd on this host (sluice-agent -containerd)", At: now})
		}
	}
	items := itemResults(rs)
	key := resultKey(items)
	r.mu.Lock()
	r.converged, r.results = t.Version, rs
	ack := t.Version != r.acked || key != r.ackedKey
	r.mu.Unlock()
	if !ack || ctx.Err() != nil {
		return
	}
	if err := r.cfg.Link.Applied(ctx, t.Version, items); err != nil {
		r.log.Debug("acknowledgement not delivered; retried next pass", "version", t.Version, "err", err)
		return
	}
	r.mu.Lock()
	r.acked, r.ackedKey = t.Version, key
	r.mu.Unlock()
	r.log.Info("target applied", "version", t.Version, "containers", len(specs))
}

func resultKey(items []brainlink.ItemResult) string {
	var k []byte
	for _, it := range items {
		k = append(k, it.ID...)
		k = append(k, 0)
		k = append(k, it.Result...)
		k = append(k, 0)
		k = append(k, it.Message...)
		k = append(k, '\n')
	}
	return string(k)
}

// Status is the brain connection and the containers as /state shows them.
type Status struct {
	NodeID      string    `json:"nodeID"`
	Registered  bool      `json:"registered"`
	Connected   bool      `json:"connected"`
	LastContact time.Time `json:"lastContact,omitzero"`
	// Stale: silent for longer than the staleness limit; local policy rules.
	Stale bool `json:"stale"`
	// TargetVersion is the version held, ConvergedVersion the one the last
	// pass ran, AppliedVersion the one acknowledged to the brain.
	TargetVersion    uint64 `json:"targetVersion"`
	ConvergedVersion uint64 `json:"convergedVersion"`
	AppliedVersion   uint64 `json:"appliedVersion"`
	LastError        string `json:"lastError,omitempty"`
	// Overrides are the QoS overrides in force (none when stale).
	Overrides      qos.Targets               `json:"overrides"`
	DryRun         bool                      `json:"dryRun,omitempty"`
	KubeletManaged bool                      `json:"kubeletManaged,omitempty"`
	Containers     []converge.ContainerState `json:"containers,omitempty"`
	Results        []qos.IntentResult        `json:"results,omitempty"`
}

// Status reports the link and the last pass.
func (r *Runner) Status() Status {
	ls := r.cfg.Link.Status()
	s := Status{
		NodeID: ls.NodeID, Registered: ls.Registered, Connected: connected(ls), LastContact: ls.LastContact,
		Stale: ls.Stale, TargetVersion: ls.TargetVersion, AppliedVersion: ls.AppliedVersion, LastError: ls.LastError,
		Overrides: r.Targets(), DryRun: r.cfg.DryRun,
	}
	if r.cfg.Converger != nil {
		s.Containers, s.KubeletManaged = r.cfg.Converger.States(), r.cfg.Converger.KubeletManaged()
	}
	r.mu.Lock()
	s.ConvergedVersion, s.Results = r.converged, slices.Clone(r.results)
	r.mu.Unlock()
	return s
}

func connected(s brainlink.Status) bool { return s.Registered && !s.Stale && s.LastError == "" }

// Containers are the targeted containers for the next heartbeat.
func (r *Runner) Containers() []brainlink.ContainerState {
	if r.cfg.Converger == nil {
		return nil
	}
	var out []brainlink.ContainerState
	for _, c := range r.cfg.Converger.States() {
		state := string(c.Phase)
		if c.Phase == converge.PhaseAbsent && c.LastError != "" {
			state = "failed"
		}
		out = append(out, brainlink.ContainerState{ID: c.ID, Job: c.Job, State: state, Restarts: c.Restarts})
	}
	return out
}

// Collectors are the runner's metrics: connection state, versions held,
// converged and applied, seconds since the brain was last heard.
func (r *Runner) Collectors(now func() time.Time) []prometheus.Collector {
	gauge := func(name, help string, f func(brainlink.Status) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(r.cfg.Link.Status()) })
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	return []prometheus.Collector{
		gauge("sluice_brain_connected", "1 while the agent is registered with the brain and hearing from it.",
			func(s brainlink.Status) float64 { return b(connected(s)) }),
		gauge("sluice_brain_stale", "1 once the brain was silent for longer than the staleness limit: host overrides fell back to local policy.",
			func(s brainlink.Status) float64 { return b(s.Stale) }),
		gauge("sluice_brain_target_version_held", "Version of the brain target the agent holds.",
			func(s brainlink.Status) float64 { return float64(s.TargetVersion) }),
		gauge("sluice_brain_target_version_applied", "Version of the brain target the agent acknowledged as applied.",
			func(s brainlink.Status) float64 { return float64(s.AppliedVersion) }),
		gauge("sluice_brain_last_contact_age_seconds", "Seconds since the brain was last heard (0 before any contact).",
			func(s brainlink.Status) float64 {
				if s.LastContact.IsZero() {
					return 0
				}
				return now().Sub(s.LastContact).Seconds()
			}),
	}
}
