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

	"github.com/sluicehq/sluice/agent/brainlink"
	"github.com/sluicehq/sluice/agent/capability"
	"github.com/sluicehq/sluice/agent/discovery"
	"github.com/sluicehq/sluice/agent/sample"
	"github.com/sluicehq/sluice/agent/target"
	"github.com/sluicehq/sluice/ebpf"
	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/rdt/resctrl"
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
	// UsageLazy is Usage with a working set that may subtract an inactive
	// file count read on an earlier pass, and a hard limit read with it
	// (sample.CgroupReader.UsageLazy): for cgroups not near a limit.
	// CPU time and CgroupUsage.MemoryChargedBytes are read afresh either way.
	UsageLazy(cgroupPath string) (sample.CgroupUsage, error)
	// CPU reads only the cumulative CPU time (the fast tick's one file).
	CPU(cgroupPath string) (time.Duration, error)
	// Members lists a cgroup's child cgroups and whether it holds
	// processes itself, in the hierarchy CPU reads (planFastReads).
	Members(cgroupPath string) (sample.CgroupMembers, error)
	// CloseUnused releases what the reader keeps for cgroups not read since
	// the previous call (open files: re-reading an open cgroup file is much
	// cheaper than opening it each tick). The loop calls it after each pass
	// over the workloads, so exited workloads release theirs.
	CloseUnused() int
}

// WorkloadSource is discovery as the loop sees it. Safe for concurrent use.
type WorkloadSource interface {
	// Workloads lists the workloads known now; the slice is the caller's.
	Workloads() []discovery.Workload
	// SetRules replaces the host-cgroup class rules (policy hot reload);
	// invalid rules are an error and the previous ones stay.
	SetRules(rules []qos.ClassRule) error
	Status() discovery.DiscoveryStatus
}

// NetworkSource reads what the network tiers' controller needs each tick
// (netqos/node.Enforcer): per device of pol its rate, class byte counters
// and the bronze ceiling the kernel holds. With pol naming no devices it
// returns empty signals and reads nothing. Called from the loop only.
type NetworkSource interface {
	Signals(pol qos.NetworkPolicy, at time.Time) (qos.NetworkSignals, error)
}

// Enforcer turns the plan's intents of its group (offline CPU and memory,
// kills, and later cache, network, containers) into kernel or runtime
// state and reports what it did.
//
// Contract:
//   - Level-triggered and idempotent: Apply reads the current state,
//     changes only differences, and applying the same plan twice changes
//     nothing the second time. The loop may skip plans equal to the last
//     one (Plan.Equal) and re-applies at least once per container interval.
//   - Dry run: when plan.DryRun, Apply changes nothing and reports
//     qos.ResultDryRun for intents that would change something.
//   - Results: one qos.IntentResult per intent of its group that it looked
//     at (applied, unchanged, failed with the error's text, unsupported,
//     dry-run); intents of other groups are not its business. A failure on
//     one intent does not stop the others. An enforcer the host cannot
//     run (no resctrl, no tc) reports qos.ResultUnsupported rather than
//     failing, and the agent keeps running with the others.
//   - Apply decides nothing: every value comes from the plan.
//   - Apply may be called from a goroutine other than the loop's, but
//     never concurrently with itself; it returns when ctx ends.
type Enforcer interface {
	Apply(ctx context.Context, plan qos.Plan) []qos.IntentResult
}

// Enforcement is one enforcer as the agent runs it.
type Enforcement struct {
	// Name identifies the enforcer in logs ("cgroup", "killer").
	Name     string
	Enforcer Enforcer
	// Inline runs Apply in the loop, in the iteration that planned it:
	// for the CPU and memory caps, whose reaction time is the agent's
	// point. Every other enforcer runs in its own worker fed through a
	// one-slot mailbox holding the latest plan, so a slow one (image
	// pulls, task moves, tc changes) never delays the caps; its results
	// reach the Observation after they arrive.
	Inline bool
}

// Config wires an Agent. Host, Usage and Workloads are required;
// Enforcers may be empty (dry-run only).
type Config struct {
	Host      HostSampler
	Usage     UsageReader
	Workloads WorkloadSource
	// Enforcers lists every enforcer, in order: the one place an
	// enforcer is wired in.
	Enforcers []Enforcement
	// Runq, when set, is the eBPF scheduler sampler: per-class and
	// per-workload run-queue latency and on-CPU time. Nil samples procfs
	// and cgroups only.
	Runq RunqSource
	// OnPolicy, when set, is called from the loop with every policy that
	// comes into force after start (hot reload), for the parts the loop
	// does not own, such as PSI triggers.
	OnPolicy func(qos.Policy)
	// Network, when set, samples the network tiers' signals; nil leaves
	// them empty (a policy naming devices then plans no tree).
	Network NetworkSource
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
	// CurrentCpusets, when set, reads cpuset.cpus of the given cgroups. The
	// loop calls it for each online workload asking for dedicated CPUs the
	// first time it sees it, and adopts the CPUs it already holds
	// (qos.AdoptCpusets): a restarted agent does not move pinned work.
	CurrentCpusets func(cgroupPaths []string) map[string][]int
	// Adopt, when set, is the offline parent's caps as the kernel had them
	// at start. The first decision resumes from them instead of starting
	// over, so a restarted agent never releases the caps in between.
	Adopt *AdoptedLimits
	// Brain, when set, is the link to the central brain: its QoS
	// overrides go to qos.Decide and its status to /state.
	Brain Brain
	// Capabilities is what the host offers, probed once at start; shown in
	// /state and readable by enforcers through Agent.Capabilities.
	Capabilities capability.Capabilities
	// Cache, when set, is resctrl (see Resctrl): its counters go into
	// every Observation, /state and the registry, and every policy is
	// checked against its hardware. Nil on a host without resctrl; then
	// CacheErr says why, for /state.
	Cache    CacheSource
	CacheErr string
}

// AdoptedLimits are the offline caps found in the kernel at start; zero
// means uncapped (nothing to adopt).
type AdoptedLimits struct {
	CPUBudgetMilli int64
	MemoryMaxBytes uint64
}

// Agent runs the sample -> decide -> enforce loop.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	now     func() time.Time
	reload  chan qos.Policy

	// Loop-goroutine state.
	policy   qos.Policy
	state    qos.State
	prevPlan qos.Plan
	// results are the inline enforcers' results of the last pass.
	results   []qos.IntentResult
	workloads []qos.WorkloadSample
	// workers run the enforcers that are not Inline; started by the first
	// Iterate, they live as long as its context.
	workers        []*worker
	workersStarted bool
	warned         map[string]bool
	runq           *runqTracker
	lastSample     time.Time
	cpuTrend       trend
	memTrend       trend
	cpuMeter       *sample.CPUMeter
	// classCPU measures the classes at the fast tick (fastCPU); fastReads
	// is its reused input.
	classCPU  *sample.ClassCPUMeter
	fastReads []sample.WorkloadCPU
	// fastPlan is what the fast tick reads, chosen at each container
	// tick (planFastReads).
	fastPlan []fastRead
	// applied is the last plan handed to the enforcer and appliedAt when;
	// see enforce for when a host tick may skip the enforcer.
	applied   *qos.Plan
	appliedAt time.Time
	// offlineMissing: the offline parent was not there; the fast tick does
	// not look for it again before until.
	offlineMissing struct {
		path  string
		until time.Time
	}

	// lastIterate is when the last Iterate started (the loop's pacing,
	// on the monotonic clock).
	lastIterate time.Time
	// lastHost is the last host sample and offlineChargedBytes the offline
	// workloads' charged memory at the last container tick: memoryTight.
	lastHost            qos.HostSample
	offlineChargedBytes uint64

	// cpusetLooked lists the workloads whose cpusets were read for adoption.
	cpusetLooked map[string]bool
	// lastOnlineMilli is online use at the last decided tick, the bar a
	// wake-up's window must clear (dismissWake).
	lastOnlineMilli int64
	// gate and wakes handle the eBPF wake-ups (wake.go) when the runq
	// source offers them.
	gate  wakeGate
	wakes chan ebpf.WakeEvent

	mu       sync.Mutex
	snapshot Snapshot
	polInfo  PolicyInfo
	// kills wait for the next brain heartbeat (BrainReport).
	kills []brainlink.Kill
}

// Snapshot is what the agent shows on GET /state.
type Snapshot struct {
	// Targets are the brain's overrides the plan was decided with.
	Targets qos.Targets `json:"targets,omitzero"`
	// Brain is the brain connection and its containers (nil without one).
	Brain *target.Status `json:"brain,omitempty"`

	Time    time.Time                    `json:"time"`
	Host    qos.HostSample               `json:"host"`
	Classes map[qos.Class]qos.ClassUsage `json:"classes"`
	// CPU is the fast tick's exact accounting, unclassed use named apart
	// (Classes counts it as system); nil before the second tick.
	CPU       *qos.CPUAccounting        `json:"cpuAccounting,omitempty"`
	Workloads []qos.WorkloadSample      `json:"workloads"`
	Plan      qos.Plan                  `json:"plan"`
	Intents   []qos.IntentSummary       `json:"intents"`
	State     qos.State                 `json:"state"`
	Results   []qos.IntentResult        `json:"results"`
	Policy    PolicyInfo                `json:"policy"`
	Discovery discovery.DiscoveryStatus `json:"discovery"`
	Cache     CacheStatus               `json:"cache"`
}

// PolicyInfo tells which policy is in force and how the last load went.
type PolicyInfo struct {
	Source        string    `json:"source"`
	LoadedAt      time.Time `json:"loadedAt"`
	DryRun        bool      `json:"dryRun"`
	LastError     string    `json:"lastError,omitempty"`
	LastErrorAt   time.Time `json:"lastErrorAt,omitzero"`
	OfflineParent string    `json:"offlineParent"`
	// NotEnforced names the policy's sections that are validated but that
	// no enforcer applies yet (qos.Policy.NotEnforced).
	NotEnforced []string `json:"notEnforced,omitempty"`
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
	if err := checkCachePolicy(cfg.Cache, cfg.Policy); err != nil {
		return nil, fmt.Errorf("agent: policy %s: %w", cfg.PolicySource, err)
	}
	a := &Agent{
		cfg:     cfg,
		log:     cfg.Log,
		metrics: newMetrics(cfg.Registerer),
		now:     cfg.Now,
		reload:  make(chan qos.Policy, 1),
		policy:  cfg.Policy,

		cpuMeter: sample.NewCPUMeter(),
		classCPU: sample.NewClassCPUMeter(),
	}
	a.polInfo = a.policyLoaded(cfg.Policy, cfg.PolicySource)
	a.metrics.policyReloads.WithLabelValues("success").Add(0)
	a.metrics.policyReloads.WithLabelValues("invalid").Add(0)
	a.metrics.policyReloads.WithLabelValues("unreadable").Add(0)
	a.metrics.policyValid.Set(1)
	a.metrics.policyLastReload.Set(float64(a.polInfo.LoadedAt.Unix()))
	if cfg.Runq != nil {
		a.runq = newRunqTracker(cfg.Runq)
		if err := cfg.Registerer.Register(ebpf.NewRunqLatencyCollector(a.runq.cumulative)); err != nil {
			return nil, fmt.Errorf("agent: register run-queue metrics: %w", err)
		}
	}
	if cfg.Cache != nil {
		if err := cfg.Registerer.Register(resctrl.NewCollector(cfg.Cache.Counters)); err != nil {
			return nil, fmt.Errorf("agent: register resctrl metrics: %w", err)
		}
	}
	for _, e := range cfg.Enforcers {
		if e.Enforcer == nil {
			return nil, fmt.Errorf("agent: enforcer %q is nil", e.Name)
		}
		if !e.Inline {
			a.workers = append(a.workers, newWorker(e, a.log))
		}
	}
	return a, nil
}

func (a *Agent) dryRun(p qos.Policy) bool { return a.cfg.ForceDryRun || p.DryRun }

// Capabilities returns what the host offers, as probed at start.
func (a *Agent) Capabilities() capability.Capabilities { return a.cfg.Capabilities }

// Snapshot returns the last iteration's picture. Safe for concurrent use.
func (a *Agent) Snapshot() Snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.snapshot
	if !s.Time.IsZero() {
		s.Intents = s.Plan.Intents()
	}
	if a.cfg.Brain != nil {
		b := a.cfg.Brain.Status()
		s.Brain = &b
	}
	s.Policy = a.polInfo
	s.Discovery = a.cfg.Workloads.Status()
	s.Cache.Supported, s.Cache.Error = a.cfg.Cache != nil, a.cfg.CacheErr
	return s
}

// SetPolicy hands a validated policy to the loop; it takes effect at the
// next iteration. Safe for concurrent use.
func (a *Agent) SetPolicy(p qos.Policy, source string) {
	info := a.policyLoaded(p, source)
	a.mu.Lock()
	a.polInfo = info
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

	a.SampleWorkloads(a.now())
	a.Iterate(ctx, "start")
	a.startWakes()
	var confirm <-chan time.Time
	var confirmCause string
	for {
		var cause string
		select {
		case <-ctx.Done():
			return nil
		case ev := <-a.wakes:
			acted := a.wakeEvent()
			a.log.Debug("ebpf wake-up", "kind", ev.Kind.String(), "acted", acted)
			if !acted {
				continue
			}
			confirm, confirmCause = time.After(confirmWait), "ebpf-"+ev.Kind.String()
			continue
		case <-confirm:
			confirm, cause = nil, confirmCause
		case <-hostTick.C:
			if confirm != nil {
				// A wake-up's pass is due within confirmWait and
				// does what this tick would; run now, it would read
				// the counters within MinClassWindow of the wake-up's
				// mark and decide on the window before the burst.
				continue
			}
			if cause = a.hostTickCause(contTick.C); cause == "" {
				continue
			}
		case <-contTick.C:
			a.SampleWorkloads(a.now())
			if confirm != nil {
				continue // as for a host tick; the wake-up's pass uses these workloads
			}
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
			if a.gate.armed {
				a.armWakes() // the run-queue threshold follows the policy
			}
			if a.cfg.OnPolicy != nil {
				a.cfg.OnPolicy(p)
			}
			cause = "policy"
		}
		a.Iterate(ctx, cause)
	}
}

// hostTickCause says what a host tick does: "container" when the container
// ticker fired with it (once a second they fire together: one pass for
// both, its workloads sampled), "" to skip it when a pass has just read
// the counters it would read again (within sample.MinClassWindow, under
// which the class meter repeats the previous window), else "host".
func (a *Agent) hostTickCause(contC <-chan time.Time) string {
	select {
	case <-contC:
		a.SampleWorkloads(a.now())
		return "container"
	default:
	}
	if time.Since(a.lastIterate) < sample.MinClassWindow {
		a.metrics.ticksSkipped.Inc()
		return ""
	}
	return "host"
}

// LabelCpuset asks for a cpuset mode: "shared", "exclusive:N" or
// "reserved:N" (N whole CPUs). Honoured for online work only.
const LabelCpuset = "sluice.io/cpuset"

// warnOnce logs a warning the first time key is seen.
func (a *Agent) warnOnce(key, msg string, args ...any) {
	if a.warned == nil {
		a.warned = make(map[string]bool)
	}
	if !a.warned[key] {
		a.warned[key] = true
		a.log.Warn(msg, args...)
	}
}

// SampleWorkloads refreshes per-workload usage: Run calls it on the
// container tick; tests and tools call it directly, with Iterate, to drive
// the loop by hand. Not safe for concurrent use with Run.
func (a *Agent) SampleWorkloads(now time.Time) {
	ws := a.cfg.Workloads.Workloads()
	out := make([]qos.WorkloadSample, 0, len(ws))
	tight := a.memoryTight()
	var offlineCharged uint64
	for _, w := range ws {
		read := a.cfg.Usage.UsageLazy
		if tight.host || (tight.offline && w.Class == qos.ClassOffline) {
			read = a.cfg.Usage.Usage
		}
		u, err := read(w.CgroupPath)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				a.metrics.sampleErrors.WithLabelValues("cgroup").Inc()
				a.log.Debug("sample workload", "id", w.ID, "cgroup", w.CgroupPath, "err", err)
			}
			continue
		}
		if w.Class == qos.ClassOffline {
			offlineCharged += u.MemoryChargedBytes
		}
		// Stamped at the read: 100 reads take a few milliseconds.
		milli, _ := a.cpuMeter.Observe(w.CgroupPath, u.CPUTotal, a.now())
		mode, cpus, err := qos.ParseCpuset(w.Labels[LabelCpuset])
		if err != nil {
			a.warnOnce("cpuset:"+w.Key(), "ignoring an invalid cpuset label; the workload stays shared",
				"id", w.ID, "label", LabelCpuset, "err", err)
		}
		out = append(out, qos.WorkloadSample{
			CpusetMode: mode, CPUsWanted: cpus,
			ID: w.ID, Name: w.Name, Namespace: w.Namespace, Class: w.Class, Priority: w.Priority,
			CgroupPath: w.CgroupPath, StartedAt: w.StartedAt,
			CPUUsedMilli:     milli,
			CPUUsageTotal:    u.CPUTotal,
			MemoryUsageBytes: u.MemoryUsageBytes,
			MemoryLimitBytes: u.MemoryLimitBytes,
		})
	}
	a.offlineChargedBytes = offlineCharged
	a.cpuMeter.Prune(now)
	a.cfg.Usage.CloseUnused()
	if a.runq != nil {
		var window time.Duration
		if !a.lastSample.IsZero() {
			window = now.Sub(a.lastSample)
		}
		a.runq.workloadSummaries(out, window)
		a.runq.track(out)
	}
	a.lastSample = now
	if a.cfg.Workloads.Status().ContainerdConnected {
		a.metrics.containerdConnected.Set(1)
	} else {
		a.metrics.containerdConnected.Set(0)
	}
	slices.SortFunc(out, func(x, y qos.WorkloadSample) int {
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
	a.workloads = out
	a.fastPlan = a.planFastReads(out)
	a.metrics.observeWorkloads(out)
}

// memoryTight says which workloads' working sets must come from a
// memory.stat read now (UsageReader.Usage) rather than a recent one
// (UsageLazy), because reclaim may be turning their inactive file pages
// into free room without their charge moving, where the reader cannot see
// it: every workload when the host's available memory is under an eighth
// (global reclaim), the offline ones when their charge adds up to within
// an eighth of the offline limit in force (the parent's limit reclaims
// them). The kill decision works from these working sets.
func (a *Agent) memoryTight() (t struct{ host, offline bool }) {
	h := a.lastHost
	t.host = h.MemTotalBytes == 0 || h.MemAvailableBytes < h.MemTotalBytes/8
	if limit := a.prevPlan.OfflineMemory.MaxBytes; limit > 0 {
		t.offline = a.offlineChargedBytes >= limit-limit/8
	}
	return t
}

func compareClass(x, y qos.Class) int {
	return slices.Index(qos.Classes[:], x) - slices.Index(qos.Classes[:], y)
}

// Iterate runs one sample -> decide -> enforce pass. Run calls it on every
// wake-up; tests call it directly.
func (a *Agent) Iterate(ctx context.Context, cause string) {
	start := time.Now()
	a.lastIterate = start
	now := a.now()
	a.metrics.wakeup(cause)

	host, err := a.cfg.Host.Sample()
	if err != nil {
		a.metrics.sampleErrors.WithLabelValues("host").Inc()
		a.log.Warn("host sample failed; keeping the previous plan", "err", err)
		return
	}
	a.lastHost = host
	// Every class is measured on every host tick from exact counters over
	// one window, so an online burst or an offline change shows up within
	// one fast tick and no class is a residual of the others.
	var accounting *qos.CPUAccounting
	if fast, ok := a.fastCPU(now, host.CPUUsedMilli); ok {
		host.CPUUsedMilli = fast.HostBusyMilli // the same window as the classes
		accounting = &fast
		a.metrics.accounting(fast)
	}
	if a.dismissWake(cause, accounting, host.CPUCapacityMilli) {
		if a.wakes != nil && a.gate.handled(now) && a.armWakes() {
			a.log.Debug("ebpf wake-ups re-armed after a dismissal")
		}
		return
	}
	a.startWorkers(ctx)
	obs := qos.Observation{
		Time:      now,
		Host:      host,
		Workloads: a.workloads,
		CPU:       accounting,
		Classes:   qos.AggregateClasses(host, a.workloads, accounting),
		Results:   a.collectResults(),
	}
	if a.runq != nil {
		if err := a.runq.tick(); err != nil {
			a.metrics.sampleErrors.WithLabelValues("ebpf").Inc()
			a.log.Debug("ebpf read", "err", err)
		}
		a.runq.classSummaries(obs.Classes)
	}
	if a.cfg.Cache != nil {
		cs, err := a.cfg.Cache.Sample(now)
		if err != nil {
			a.metrics.sampleErrors.WithLabelValues("resctrl").Inc()
			a.log.Debug("resctrl monitoring read", "err", err)
		}
		obs.Cache = &cs
	}
	obs.Host.PSI.Triggered = cause == "psi"
	a.metrics.observe(obs)
	if a.cfg.Network != nil {
		sig, err := a.cfg.Network.Signals(a.policy.Network, now)
		if err != nil {
			a.metrics.sampleErrors.WithLabelValues("network").Inc()
			a.warnOnce("network:"+err.Error(), "network signals incomplete; affected devices are not shaped", "err", err)
		}
		obs.Network = sig
	}

	if a.cfg.Adopt != nil && a.state.Time.IsZero() {
		a.adopt(*a.cfg.Adopt, host)
	}
	a.adoptCpusets(obs)
	pol := a.policy
	pol.DryRun = a.dryRun(pol)
	t0 := time.Now()
	a.noteKills(obs.Results, a.prevPlan)
	var tgt qos.Targets
	if a.cfg.Brain != nil {
		tgt = a.cfg.Brain.Targets()
	}
	plan, state := qos.Decide(obs, pol, tgt, a.state)
	a.metrics.decisionDuration.Observe(time.Since(t0).Seconds())
	a.metrics.decisions.Inc()
	a.metrics.plan(plan)
	a.logTransition(a.prevPlan, plan, cause)

	results, fresh := a.enforce(ctx, plan, now)
	if fresh {
		a.metrics.enforced(results)
		if !plan.DryRun {
			a.offlineMissing.until = time.Time{}
		}
	}
	a.state, a.prevPlan, a.results = state, plan, results
	if a.wakes != nil && a.gate.decided(now, plan.OfflineCPU.BudgetMilli) && a.armWakes() {
		a.log.Debug("ebpf wake-ups re-armed", "budgetMilli", plan.OfflineCPU.BudgetMilli)
	}

	a.mu.Lock()
	// Intents are worded when someone asks (Snapshot), not on every tick.
	a.snapshot = Snapshot{
		Time: now, Host: obs.Host, Classes: obs.Classes, CPU: obs.CPU, Workloads: obs.Workloads, Targets: tgt,
		Plan: plan, State: state, Results: a.shownResults(results),
		Cache: CacheStatus{Sample: obs.Cache},
	}
	a.mu.Unlock()
	a.metrics.loopDuration.Observe(time.Since(start).Seconds())
}

// adoptCpusets reads the cpusets of online workloads asking for dedicated
// CPUs that hold no assignment and were not looked at before, and adopts
// the CPUs they already have (see Config.CurrentCpusets).
func (a *Agent) adoptCpusets(obs qos.Observation) {
	if a.cfg.CurrentCpusets == nil {
		return
	}
	var paths []string
	for _, w := range obs.Workloads {
		if w.Class != qos.ClassOnline || (w.CpusetMode != qos.CpusetExclusive && w.CpusetMode != qos.CpusetReserved) || a.cpusetLooked[w.ID] {
			continue
		}
		if _, ok := a.state.Cpuset.Assigned[w.ID]; ok {
			continue
		}
		if a.cpusetLooked == nil {
			a.cpusetLooked = map[string]bool{}
		}
		a.cpusetLooked[w.ID] = true
		paths = append(paths, w.CgroupPath)
	}
	if len(paths) == 0 {
		return
	}
	before := len(a.state.Cpuset.Assigned)
	a.state.Cpuset = qos.AdoptCpusets(a.state.Cpuset, obs, a.cfg.CurrentCpusets(paths))
	if n := len(a.state.Cpuset.Assigned) - before; n > 0 {
		a.log.Info("adopted the dedicated CPUs workloads already hold", "workloads", n)
	}
}

// adopt seeds the decision state from the kernel's caps (see Config.Adopt).
func (a *Agent) adopt(l AdoptedLimits, host qos.HostSample) {
	if l.CPUBudgetMilli > 0 && host.CPUCapacityMilli > 0 {
		a.state.CPU = qos.LendState{Value: min(l.CPUBudgetMilli, host.CPUCapacityMilli), Set: true, Capacity: host.CPUCapacityMilli}
	}
	if l.MemoryMaxBytes > 0 && host.MemTotalBytes > 0 {
		a.state.Memory = qos.LendState{Value: int64(min(l.MemoryMaxBytes, host.MemTotalBytes)), Set: true, Capacity: int64(host.MemTotalBytes)}
	}
	a.log.Info("adopted the offline caps in force", "cpuBudgetMilli", l.CPUBudgetMilli, "memoryMaxBytes", l.MemoryMaxBytes)
}

// enforce hands plan to the enforcers: the inline ones run now and their
// results are returned; the others get it in their mailboxes. fresh is
// false when it reused the previous inline results instead.
//
// A full enforcement pass is not free: besides the offline parent's few
// files it lists every task below the offline parent, in every hierarchy,
// to hold their oom_score_adj, which with 100 offline cgroups is hundreds
// of kernel file reads. So a tick whose plan equals the last applied plan
// (Plan.Equal), after an inline pass that went through, skips the
// enforcers; the kernel is still read and corrected (level-triggered) at
// least once per container interval, and any change of a planned value (a
// CPU cut, a memory limit, cpusets, dry-run switched off) is enforced in
// the same iteration that planned it. A plan with kills is never skipped:
// every kill is carried out.
//
// One change waits too: offline memory that only grows. A memory ramp
// grows the limit a little on every host tick for tens of seconds (5% of
// the host a second by default), and each of those passes cost as much as
// any other; the kernel gets the grown limit at the next pass, at most a
// container interval later, which only slows a loosening. A cut, or any
// other change with it, is enforced at once.
func (a *Agent) enforce(ctx context.Context, plan qos.Plan, now time.Time) (results []qos.IntentResult, fresh bool) {
	if plan.DryRun || len(a.cfg.Enforcers) == 0 {
		a.applied = nil
		rs := []qos.IntentResult{
			{Intent: qos.IntentOfflineCPU, Target: a.policy.OfflineParent, Status: qos.ResultDryRun, At: now},
			{Intent: qos.IntentOfflineMemory, Target: a.policy.OfflineParent, Status: qos.ResultDryRun, At: now},
		}
		for _, k := range plan.Kills {
			rs = append(rs, qos.IntentResult{Intent: qos.IntentKill, Target: k.ID, Status: qos.ResultDryRun, At: now})
		}
		for _, g := range plan.Cache.Groups {
			rs = append(rs, qos.IntentResult{Intent: qos.IntentCacheGroup, Target: g.Group, Status: qos.ResultDryRun, At: now})
		}
		return rs, true
	}
	if a.applied != nil && len(plan.Kills) == 0 && (a.applied.Equal(plan) || memoryGrowthOnly(*a.applied, plan)) &&
		!anyFailed(a.results) && now.Sub(a.appliedAt) < a.policy.Sampling.ContainerInterval && !now.Before(a.appliedAt) {
		return a.results, false
	}
	a.applied, a.appliedAt = &plan, now
	// Workers first: they start on their copy while the caps are written.
	for _, w := range a.workers {
		w.post(plan)
	}
	var rs []qos.IntentResult
	for _, e := range a.cfg.Enforcers {
		if e.Inline {
			rs = append(rs, e.Enforcer.Apply(ctx, plan)...)
		}
	}
	for _, r := range rs {
		if r.Status == qos.ResultFailed {
			a.log.Error("enforce failed", "intent", r.Intent, "target", r.Target, "err", r.Err)
		}
	}
	return rs, true
}

// memoryGrowthOnly reports whether next differs from applied only by a
// larger offline memory limit.
func memoryGrowthOnly(applied, next qos.Plan) bool {
	am, nm := applied.OfflineMemory, next.OfflineMemory
	if nm.MaxBytes < am.MaxBytes || nm.HighBytes < am.HighBytes {
		return false
	}
	next.OfflineMemory = am
	return applied.Equal(next)
}

func anyFailed(rs []qos.IntentResult) bool {
	return slices.ContainsFunc(rs, func(r qos.IntentResult) bool { return r.Status == qos.ResultFailed })
}

// trend is the direction a lent value last moved.
type trend int

const (
	trendSteady trend = iota
	trendUp
	trendDown
)

func trendOf(prev, next int64) trend {
	switch {
	case next > prev:
		return trendUp
	case next < prev:
		return trendDown
	}
	return trendSteady
}

// logTransition logs what a person would care about, not every tick: every
// cut, the start and the end of a ramp, and every planned kill.
// cause is what woke the loop for the decision.
func (a *Agent) logTransition(prev, next qos.Plan, cause string) {
	changed := false
	cpu := trendOf(prev.OfflineCPU.BudgetMilli, next.OfflineCPU.BudgetMilli)
	if cpu != trendSteady {
		changed = true
	}
	if cpu == trendDown || cpu != a.cpuTrend {
		a.log.Info("offline cpu budget", "from", fmt.Sprintf("%dm", prev.OfflineCPU.BudgetMilli),
			"to", fmt.Sprintf("%dm", next.OfflineCPU.BudgetMilli), "cause", cause, "reason", next.OfflineCPU.Reason.String())
	}
	a.cpuTrend = cpu
	mem := trendOf(int64(prev.OfflineMemory.MaxBytes), int64(next.OfflineMemory.MaxBytes))
	if mem != trendSteady {
		changed = true
	}
	if mem == trendDown || mem != a.memTrend {
		a.log.Info("offline memory limit", "high", next.OfflineMemory.HighBytes, "max", next.OfflineMemory.MaxBytes,
			"reason", next.OfflineMemory.Reason.String())
	}
	a.memTrend = mem
	for _, k := range next.Kills {
		changed = true
		a.log.Warn("kill planned", "victim", k.Name, "id", k.ID, "priority", k.Priority, "dryRun", next.DryRun, "reason", k.Reason.String())
	}
	if changed {
		a.metrics.planChanges.Inc()
	}
}
