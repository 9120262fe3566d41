package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/agent/sample"
	"github.com/sluicehq/sluice/qos"
)

// HostSampler reads host-wide load. Sample computes rates against its
// previous call, so it is called from the loop goroutine only.
type HostSampler interface {
	Sample() (qos.HostSample, error)
}

// UsageReader reads one cgroup's usage by its path relative to the
// hierarchy roots. An error wrapping fs.ErrNotExist means the cgroup is gone
// (the container exited); the loop skips it quietly.
type UsageReader interface {
	Usage(cgroupPath string) (sample.CgroupUsage, error)
}

// Workload is a discovered container or classed host cgroup.
type Workload struct {
	ID         string
	Namespace  string
	Name       string
	Class      qos.Class
	Priority   int
	CgroupPath string
	StartedAt  time.Time
}

// WorkloadSource lists the workloads discovery knows now. Safe for
// concurrent use; the slice is the caller's.
type WorkloadSource interface {
	Workloads() []Workload
}

// Enforcer applies a plan to the kernel, level-triggered and idempotent,
// and reports one result per intent. It must not write when plan.DryRun.
type Enforcer interface {
	Apply(ctx context.Context, plan qos.Plan) []qos.IntentResult
}

// Killer carries out kill intents. It refuses victims that are not offline.
type Killer interface {
	Kill(ctx context.Context, kills []qos.KillIntent) []qos.IntentResult
}

// Config wires an Agent. Host, Usage and Workloads are required; Enforcer
// and Killer may be nil (dry-run only).
type Config struct {
	Host      HostSampler
	Usage     UsageReader
	Workloads WorkloadSource
	Enforcer  Enforcer
	Killer    Killer
	// Wake delivers early wake-ups (PSI triggers, eBPF events). May be nil.
	Wake <-chan string
	// ForceDryRun keeps enforcement off whatever the policy says.
	ForceDryRun bool
	Policy      qos.Policy
	// PolicySource names where Policy came from ("embedded default" or a path).
	PolicySource string
	Registerer   prometheus.Registerer
	Log          *slog.Logger
	// Now is the clock; time.Now when nil. Tests pass a fake.
	Now func() time.Time
}

// Agent runs the sample -> decide -> enforce loop.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	now     func() time.Time
	reload  chan qos.Policy

	// Loop-goroutine state.
	policy     qos.Policy
	state      qos.State
	prevPlan   qos.Plan
	results    []qos.IntentResult
	containers []qos.ContainerSample
	cpuMeter   *sample.CPUMeter
	offlineCPU *sample.CPUMeter

	mu       sync.Mutex
	snapshot Snapshot
	polInfo  PolicyInfo
}

// Snapshot is what the agent shows on GET /state.
type Snapshot struct {
	Time      time.Time                    `json:"time"`
	Host      qos.HostSample               `json:"host"`
	Classes   map[qos.Class]qos.ClassUsage `json:"classes"`
	Workloads []qos.ContainerSample        `json:"workloads"`
	Plan      qos.Plan                     `json:"plan"`
	Intents   []qos.IntentSummary          `json:"intents"`
	State     qos.State                    `json:"state"`
	Results   []qos.IntentResult           `json:"results"`
	Policy    PolicyInfo                   `json:"policy"`
}

// PolicyInfo tells which policy is in force and how the last load went.
type PolicyInfo struct {
	Source        string    `json:"source"`
	LoadedAt      time.Time `json:"loadedAt"`
	DryRun        bool      `json:"dryRun"`
	LastError     string    `json:"lastError,omitempty"`
	LastErrorAt   time.Time `json:"lastErrorAt,omitzero"`
	OfflineParent string    `json:"offlineParent"`
}

// New checks cfg and builds an Agent.
func New(cfg Config) (*Agent, error) {
	switch {
	case cfg.Host == nil:
		return nil, errors.New("agent: no host sampler")
	case cfg.Usage == nil:
		return nil, errors.New("agent: no cgroup usage reader")
	case cfg.Workloads == nil:
		return nil, errors.New("agent: no workload source")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Agent{
		cfg:     cfg,
		log:     cfg.Log,
		metrics: newMetrics(cfg.Registerer),
		now:     cfg.Now,
		reload:  make(chan qos.Policy, 1),
		policy:  cfg.Policy,

		cpuMeter:   sample.NewCPUMeter(),
		offlineCPU: sample.NewCPUMeter(),
	}
	a.polInfo = PolicyInfo{Source: cfg.PolicySource, LoadedAt: cfg.Now(), DryRun: a.dryRun(cfg.Policy), OfflineParent: cfg.Policy.OfflineParent}
	a.metrics.policyReloads.WithLabelValues("success").Add(0)
	a.metrics.policyReloads.WithLabelValues("invalid").Add(0)
	a.metrics.policyReloads.WithLabelValues("unreadable").Add(0)
	a.metrics.policyValid.Set(1)
	a.metrics.policyLastReload.Set(float64(a.polInfo.LoadedAt.Unix()))
	return a, nil
}

func (a *Agent) dryRun(p qos.Policy) bool { return a.cfg.ForceDryRun || p.DryRun }

// Snapshot returns the last iteration's picture. Safe for concurrent use.
func (a *Agent) Snapshot() Snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.snapshot
	s.Policy = a.polInfo
	return s
}

// SetPolicy hands a validated policy to the loop; it takes effect at the
// next iteration. Safe for concurrent use.
func (a *Agent) SetPolicy(p qos.Policy, source string) {
	a.mu.Lock()
	a.polInfo = PolicyInfo{Source: source, LoadedAt: a.now(), DryRun: a.dryRun(p), OfflineParent: p.OfflineParent}
	a.mu.Unlock()
	a.metrics.policyReloads.WithLabelValues("success").Inc()
	a.metrics.policyValid.Set(1)
	a.metrics.policyLastReload.Set(float64(a.now().Unix()))
	select {
	case <-a.reload: // drop an older pending policy
	default:
	}
	a.reload <- p
}

// RejectPolicy records a policy load that failed; the policy in force stays.
// result is "invalid" (validation failed) or "unreadable" (I/O failed).
func (a *Agent) RejectPolicy(result string, err error) {
	a.mu.Lock()
	a.polInfo.LastError = err.Error()
	a.polInfo.LastErrorAt = a.now()
	a.mu.Unlock()
	a.metrics.policyReloads.WithLabelValues(result).Inc()
	a.metrics.policyValid.Set(0)
}

// Run loops until ctx ends. It returns nil on cancellation.
func (a *Agent) Run(ctx context.Context) error {
	hostTick := time.NewTicker(a.policy.Sampling.HostInterval)
	defer hostTick.Stop()
	contTick := time.NewTicker(a.policy.Sampling.ContainerInterval)
	defer contTick.Stop()
	a.log.Info("agent loop started",
		"hostInterval", a.policy.Sampling.HostInterval, "containerInterval", a.policy.Sampling.ContainerInterval,
		"dryRun", a.dryRun(a.policy), "offlineParent", a.policy.OfflineParent)

	a.sampleContainers(a.now())
	a.Iterate(ctx, "start")
	for {
		var cause string
		select {
		case <-ctx.Done():
			return nil
		case <-hostTick.C:
			cause = "host"
		case <-contTick.C:
			a.sampleContainers(a.now())
			cause = "container"
		case why := <-a.cfg.Wake:
			cause = why
		case p := <-a.reload:
			if p.Sampling.HostInterval != a.policy.Sampling.HostInterval {
				hostTick.Reset(p.Sampling.HostInterval)
			}
			if p.Sampling.ContainerInterval != a.policy.Sampling.ContainerInterval {
				contTick.Reset(p.Sampling.ContainerInterval)
			}
			a.log.Info("policy in force", "dryRun", a.dryRun(p), "offlineParent", p.OfflineParent)
			a.policy = p
			cause = "policy"
		}
		a.Iterate(ctx, cause)
	}
}

// sampleContainers refreshes per-workload usage (the slow tick).
func (a *Agent) sampleContainers(now time.Time) {
	ws := a.cfg.Workloads.Workloads()
	out := make([]qos.ContainerSample, 0, len(ws))
	for _, w := range ws {
		u, err := a.cfg.Usage.Usage(w.CgroupPath)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				a.metrics.sampleErrors.WithLabelValues("cgroup").Inc()
				a.log.Debug("sample workload", "id", w.ID, "cgroup", w.CgroupPath, "err", err)
			}
			continue
		}
		milli, _ := a.cpuMeter.Observe(w.CgroupPath, u.CPUTotal, now)
		out = append(out, qos.ContainerSample{
			ID: w.ID, Name: w.Name, Namespace: w.Namespace, Class: w.Class, Priority: w.Priority,
			CgroupPath: w.CgroupPath, StartedAt: w.StartedAt,
			CPUUsedMilli:     milli,
			CPUUsageTotal:    u.CPUTotal,
			MemoryUsageBytes: u.MemoryUsageBytes,
			MemoryLimitBytes: u.MemoryLimitBytes,
		})
	}
	a.cpuMeter.Prune(now)
	slices.SortFunc(out, func(x, y qos.ContainerSample) int {
		if c := compareClass(x.Class, y.Class); c != 0 {
			return c
		}
		if x.Name < y.Name {
			return -1
		} else if x.Name > y.Name {
			return 1
		}
		return 0
	})
	a.containers = out
	a.metrics.observeWorkloads(out)
}

func compareClass(x, y qos.Class) int {
	return slices.Index(qos.Classes[:], x) - slices.Index(qos.Classes[:], y)
}

// Iterate runs one sample -> decide -> enforce pass. Run calls it on every
// wake-up; tests call it directly.
func (a *Agent) Iterate(ctx context.Context, cause string) {
	start := time.Now()
	now := a.now()
	a.metrics.wakeups.WithLabelValues(cause).Inc()

	host, err := a.cfg.Host.Sample()
	if err != nil {
		a.metrics.sampleErrors.WithLabelValues("host").Inc()
		a.log.Warn("host sample failed; keeping the previous plan", "err", err)
		return
	}
	// The offline parent is read on every host tick, so a change of offline
	// use shows up within one fast tick, not one container tick.
	offlineFast := int64(-1)
	if a.policy.OfflineParent != "" {
		if u, err := a.cfg.Usage.Usage(a.policy.OfflineParent); err == nil {
			if milli, ok := a.offlineCPU.Observe(a.policy.OfflineParent, u.CPUTotal, now); ok {
				offlineFast = milli
			}
		}
	}
	obs := qos.Observation{
		Time:       now,
		Host:       host,
		Containers: a.containers,
		Classes:    aggregate(host, a.containers, offlineFast),
		Results:    a.results,
	}
	obs.Host.PSI.Triggered = cause == "psi"
	a.metrics.observe(obs)

	pol := a.policy
	pol.DryRun = a.dryRun(pol)
	t0 := time.Now()
	plan, state := qos.Decide(obs, pol, qos.Targets{}, a.state)
	a.metrics.decisionDuration.Observe(time.Since(t0).Seconds())
	a.metrics.decisions.Inc()
	a.metrics.plan(plan)
	a.logTransition(a.prevPlan, plan)

	results := a.enforce(ctx, plan)
	a.metrics.enforced(results)
	a.state, a.prevPlan, a.results = state, plan, results

	a.mu.Lock()
	a.snapshot = Snapshot{
		Time: now, Host: obs.Host, Classes: obs.Classes, Workloads: obs.Containers,
		Plan: plan, Intents: plan.Intents(), State: state, Results: results,
	}
	a.mu.Unlock()
	a.metrics.loopDuration.Observe(time.Since(start).Seconds())
}

func (a *Agent) enforce(ctx context.Context, plan qos.Plan) []qos.IntentResult {
	if plan.DryRun || a.cfg.Enforcer == nil {
		now := a.now()
		rs := []qos.IntentResult{
			{Intent: qos.IntentOfflineCPU, Target: a.policy.OfflineParent, Status: qos.ResultDryRun, At: now},
			{Intent: qos.IntentOfflineMemory, Target: a.policy.OfflineParent, Status: qos.ResultDryRun, At: now},
		}
		for _, k := range plan.Kills {
			rs = append(rs, qos.IntentResult{Intent: qos.IntentKill, Target: k.ID, Status: qos.ResultDryRun, At: now})
		}
		return rs
	}
	rs := a.cfg.Enforcer.Apply(ctx, plan)
	if len(plan.Kills) > 0 && a.cfg.Killer != nil {
		kr := a.cfg.Killer.Kill(ctx, plan.Kills)
		for i, r := range kr {
			if r.Status == qos.ResultFailed {
				a.log.Error("kill failed", "victim", r.Target, "err", r.Err)
			} else if i < len(plan.Kills) {
				a.log.Warn("killed offline workload", "victim", r.Target, "reason", plan.Kills[i].Reason)
			}
		}
		rs = append(rs, kr...)
	}
	for _, r := range rs {
		if r.Status == qos.ResultFailed && r.Intent != qos.IntentKill {
			a.log.Error("enforce failed", "intent", r.Intent, "target", r.Target, "err", r.Err)
		}
	}
	return rs
}

// logTransition logs plan changes a person would care about, not every tick.
func (a *Agent) logTransition(prev, next qos.Plan) {
	changed := false
	if prev.OfflineCPU.BudgetMilli != next.OfflineCPU.BudgetMilli {
		changed = true
		a.log.Info("offline cpu budget", "from", fmt.Sprintf("%dm", prev.OfflineCPU.BudgetMilli),
			"to", fmt.Sprintf("%dm", next.OfflineCPU.BudgetMilli), "reason", next.OfflineCPU.Reason)
	}
	if prev.OfflineMemory.MaxBytes != next.OfflineMemory.MaxBytes || prev.OfflineMemory.HighBytes != next.OfflineMemory.HighBytes {
		changed = true
		a.log.Info("offline memory limit", "high", next.OfflineMemory.HighBytes, "max", next.OfflineMemory.MaxBytes,
			"reason", next.OfflineMemory.Reason)
	}
	for _, k := range next.Kills {
		changed = true
		a.log.Warn("kill planned", "victim", k.Name, "id", k.ID, "priority", k.Priority, "dryRun", next.DryRun, "reason", k.Reason)
	}
	if changed {
		a.metrics.planChanges.Inc()
	}
}

// aggregate sums workloads per class (host use no workload accounts for
// counts as system: unknown load is protected like system load).
// offlineFastMilli, when >= 0, is the offline parent's rate from this host
// tick; it replaces the slower per-container sum so that a change of
// offline or online use is seen within one host tick.
func aggregate(host qos.HostSample, ws []qos.ContainerSample, offlineFastMilli int64) map[qos.Class]qos.ClassUsage {
	out := sample.AggregateClasses(host, ws)
	if offlineFastMilli < 0 {
		return out
	}
	var sysWorkloads int64
	for _, w := range ws {
		if w.Class == qos.ClassSystem {
			sysWorkloads += w.CPUUsedMilli
		}
	}
	off := out[qos.ClassOffline]
	off.CPUUsedMilli = offlineFastMilli
	out[qos.ClassOffline] = off
	sys := out[qos.ClassSystem]
	sys.CPUUsedMilli = sysWorkloads + max(0, host.CPUUsedMilli-out[qos.ClassOnline].CPUUsedMilli-offlineFastMilli-sysWorkloads)
	out[qos.ClassSystem] = sys
	return out
}
