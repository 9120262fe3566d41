package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/netqos"
	"github.com/sluicehq/sluice/netqos/classify"
	"github.com/sluicehq/sluice/netqos/tc"
	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
)

// Enforcer is the network tiers as the agent runs them: the plan's
// Network group applied to a Node (the agent's Enforcer contract), and
// the signals the decision core reads (Signals). The Node is built on the
// first Apply, or the first Signals of a policy that names devices, and
// again after a failed build: an agent started with shaping off loads
// nothing it does not need, and a reload that names devices needs no
// restart. The first Apply also removes trees an earlier agent left on
// devices the policy no longer names.
//
// Signals (the loop) and Apply (the enforcer's worker) are serialised.
type Enforcer struct {
	cfg    Config
	layout cgroupfs.Layout
	log    *slog.Logger
	build  func(Config) (*Node, error)

	mu       sync.Mutex
	n        *Node
	buildErr error
	// built is n for scrapes, which must not wait for an Apply.
	built atomic.Pointer[Node]
}

// NewEnforcer returns the agent's network enforcer. layout maps the
// plan's cgroup paths to the v2 directories the classifier keys by (its
// unified hierarchy); cfg.CgroupV2Dir defaults to layout.Unified().
func NewEnforcer(cfg Config, layout cgroupfs.Layout) *Enforcer {
	if cfg.CgroupV2Dir == "" {
		cfg.CgroupV2Dir = layout.Unified()
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Enforcer{cfg: cfg, layout: layout, log: log.With("component", "netqos"), build: New}
}

// node returns the Node, building it when there is none yet. Called
// with e.mu held.
func (e *Enforcer) node() (*Node, error) {
	if e.n != nil {
		return e.n, nil
	}
	n, err := e.build(e.cfg)
	if err != nil {
		if e.buildErr == nil || e.buildErr.Error() != err.Error() {
			e.log.Warn("network tiers unavailable", "err", err)
		}
		e.buildErr = err
		return nil, err
	}
	e.n, e.buildErr = n, nil
	e.built.Store(n)
	return n, nil
}

// Close releases the Node (the trees stay for the next agent).
func (e *Enforcer) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.n == nil {
		return nil
	}
	return e.n.Close()
}

// Signals reads this tick's counters for pol's devices; nothing (and no
// Node) while pol names none.
func (e *Enforcer) Signals(pol netqos.Policy, at time.Time) (netqos.Signals, error) {
	if !pol.Enabled() {
		return netqos.Signals{At: at}, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	n, err := e.node()
	if err != nil {
		return netqos.Signals{At: at}, err
	}
	return n.Signals(pol, at)
}

// Apply makes the kernel match plan.Network: each device's tree, the
// classifier's attachments, DSCP and ingress budget, and the classified
// cgroups. A dry-run plan writes nothing and reports each network intent
// as qos.ResultDryRun.
func (e *Enforcer) Apply(ctx context.Context, plan qos.Plan) []qos.IntentResult {
	now := time.Now()
	net := plan.Network
	if plan.DryRun {
		return dryRun(net, now)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	n, err := e.node()
	if err != nil {
		if !net.Enabled() {
			return nil // nothing asked for, nothing to report
		}
		st := qos.ResultFailed
		if errors.Is(err, classify.ErrNotSupported) {
			st = qos.ResultUnsupported
		}
		var out []qos.IntentResult
		for _, d := range net.Shaping.Devices {
			out = append(out, qos.IntentResult{Intent: qos.IntentNetwork, Target: d.Device, Status: st, Err: err.Error(), At: now})
		}
		return out
	}
	var out []qos.IntentResult
	for _, r := range n.Apply(ctx, net.Shaping) {
		out = append(out, result(r, now))
	}
	return append(out, e.setTiers(n, net.Tiers, now)...)
}

// result turns one part of the node's outcome into an intent result.
func result(r tc.Result, at time.Time) qos.IntentResult {
	ir := qos.IntentResult{Intent: qos.IntentNetwork, Target: r.Device, Status: qos.ResultUnchanged, At: at}
	switch r.Part {
	case "leaf":
		ir.Target = r.Device + " leaf"
	case "classify":
		ir.Intent, ir.Target = qos.IntentNetworkIngress, "classifier"
	}
	switch {
	case r.Err != nil && errors.Is(r.Err, tc.ErrNotSupported):
		ir.Status, ir.Err = qos.ResultUnsupported, r.Err.Error()
	case r.Err != nil:
		ir.Status, ir.Err = qos.ResultFailed, r.Err.Error()
	case len(r.Changes) > 0:
		ir.Status = qos.ResultApplied
	}
	return ir
}

// setTiers puts the plan's cgroups into their tiers through the unified
// hierarchy; on a host without one (pure v1) classification is not
// supported and the trees still shape (everything is gold).
func (e *Enforcer) setTiers(n *Node, tiers []qos.NetworkTierIntent, at time.Time) []qos.IntentResult {
	want := make(map[string]netqos.Tier, len(tiers))
	path := make(map[string]string, len(tiers))
	var out []qos.IntentResult
	for _, t := range tiers {
		dir, ok := e.layout.UnifiedDir(t.CgroupPath)
		if !ok {
			out = append(out, qos.IntentResult{Intent: qos.IntentNetworkTier, Target: t.CgroupPath, Status: qos.ResultUnsupported,
				Err: fmt.Sprintf("classify %s: cgroup layout %v has no unified hierarchy to attach to: %v", t.CgroupPath, e.layout, classify.ErrNotSupported), At: at})
			continue
		}
		want[dir], path[dir] = t.Tier, t.CgroupPath
	}
	if len(want) == 0 && len(out) > 0 {
		return out
	}
	for _, c := range n.SetTiers(want) {
		target, ok := path[c.Dir]
		if !ok {
			target = c.Dir // a forgotten cgroup that could not be removed
		}
		ir := qos.IntentResult{Intent: qos.IntentNetworkTier, Target: target, Status: qos.ResultUnchanged, At: at}
		switch {
		case c.Err != nil && errors.Is(c.Err, classify.ErrNotSupported):
			ir.Status, ir.Err = qos.ResultUnsupported, c.Err.Error()
		case c.Err != nil:
			ir.Status, ir.Err = qos.ResultFailed, c.Err.Error()
		case c.Changed:
			ir.Status = qos.ResultApplied
		}
		out = append(out, ir)
	}
	return out
}

func dryRun(net qos.NetworkIntent, at time.Time) []qos.IntentResult {
	var out []qos.IntentResult
	for _, d := range net.Shaping.Devices {
		out = append(out, qos.IntentResult{Intent: qos.IntentNetwork, Target: d.Device, Status: qos.ResultDryRun, At: at})
	}
	for _, t := range net.Tiers {
		out = append(out, qos.IntentResult{Intent: qos.IntentNetworkTier, Target: t.CgroupPath, Status: qos.ResultDryRun, At: at})
	}
	return out
}

// Collector exports the Node's per device and tier metrics (see
// Node.Collector) once it is built; nothing before. It is an unchecked
// collector: the series exist only while shaping is on.
func (e *Enforcer) Collector() prometheus.Collector { return enforcerCollector{e} }

type enforcerCollector struct{ e *Enforcer }

func (enforcerCollector) Describe(chan<- *prometheus.Desc) {}

func (c enforcerCollector) Collect(ch chan<- prometheus.Metric) {
	if n := c.e.built.Load(); n != nil {
		n.Collector().Collect(ch)
	}
}
