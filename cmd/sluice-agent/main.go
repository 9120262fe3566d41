// Command sluice-agent is Sluice's host agent: it discovers every workload on
// the host, samples load, decides how much CPU and memory offline work may
// borrow, and (unless in dry-run) enforces it on cgroups and kills offline
// work by priority when memory does not come back.
//
// It runs as root on a Linux host with cgroups (systemd unit or Kubernetes
// DaemonSet). Without root or without cgroups it says what is missing and
// exits non-zero.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sys/unix"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/agent/capability"
	"github.com/sluicehq/sluice/agent/discovery"
	"github.com/sluicehq/sluice/agent/killer"
	"github.com/sluicehq/sluice/agent/sample"
	"github.com/sluicehq/sluice/netqos/classify"
	"github.com/sluicehq/sluice/netqos/node"
	"github.com/sluicehq/sluice/netqos/tc"
	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup"
	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
	"github.com/sluicehq/sluice/rdt"
	"github.com/sluicehq/sluice/rdt/resctrl"
)

type options struct {
	policyPath string
	dryRun     bool
	listen     string
	procRoot   string
	cgroupRoot string
	containerd string
	brain      brainOptions
	logLevel   string
	noEBPF     bool
	netPinDir  string
	pprof      bool
	resctrl    string
	timerSlack time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.policyPath, "policy", "", "policy file (YAML); empty uses the embedded default (sluicectl policy default)")
	flag.BoolVar(&o.dryRun, "dry-run", false, "compute and report plans but never write cgroups or kill, whatever the policy says")
	flag.StringVar(&o.listen, "listen", "unix:/run/sluice/agent.sock", "local API address (/metrics, /state, /healthz): unix:/path or host:port")
	flag.StringVar(&o.procRoot, "proc", "/proc", "procfs mount")
	flag.StringVar(&o.cgroupRoot, "cgroup-root", "/sys/fs/cgroup", "cgroup mount root")
	flag.StringVar(&o.containerd, "containerd", "/run/containerd/containerd.sock", "containerd socket; empty disables container discovery")
	flag.StringVar(&o.netPinDir, "net-pin-dir", "/sys/fs/bpf/sluice/netqos", "where the network classifier pins its maps and attachments on the bpf file system, so classification survives an agent restart; without a bpf file system mounted there it is not pinned")
	flag.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	flag.BoolVar(&o.noEBPF, "no-ebpf", false, "do not load the eBPF scheduler sampler (run-queue latency)")
	flag.StringVar(&o.resctrl, "resctrl-root", "/sys/fs/resctrl", "where resctrl is, or is mounted when the kernel has it (cache and memory-bandwidth isolation)")
	flag.DurationVar(&o.timerSlack, "timer-slack", time.Millisecond, "timer slack of the agent's threads: how late the kernel may wake them to batch wake-ups (the default policy's timers are 20 ms and longer: lower it for a policy hostInterval under 20ms); 0 keeps the kernel's (50µs). The agent also runs on one P unless GOMAXPROCS is set (see agent.QuietRuntime)")
	flag.BoolVar(&o.pprof, "pprof", false, "serve Go runtime profiles under /debug/pprof/ on the -listen address (e.g. curl --unix-socket SOCK 'http://agent/debug/pprof/profile?seconds=30')")
	flag.StringVar(&o.brain.url, "brain", "", "central brain URL, or several brains comma-separated (the agent finds the leader): https://HOST:9480 with -tls-cert, -tls-key and -ca (mutual TLS), or http:// to a loopback brain; register, heartbeat, run its targets; empty runs on local policy alone")
	flag.StringVar(&o.brain.hostName, "host-name", "", "this host's name at the brain (default: the machine's hostname)")
	flag.StringVar(&o.brain.stateDir, "state-dir", "/var/lib/sluice/agent", "keeps the node ID and the last brain target across restarts")
	flag.StringVar(&o.brain.namespace, "containerd-namespace", "sluice", "containerd namespace of the containers the brain targets here")
	flag.StringVar(&o.brain.labels, "host-labels", "", "host labels for placement, key=value,key=value")
	flag.StringVar(&o.brain.failureDomain, "failure-domain", "", "host failure domain for spreading (e.g. a rack)")
	flag.StringVar(&o.brain.tls.Cert, "tls-cert", "", "this host's certificate for an https -brain (sluicectl certs issue HOST); its name must be -host-name; reloaded when it changes")
	flag.StringVar(&o.brain.tls.Key, "tls-key", "", "the host certificate's key")
	flag.StringVar(&o.brain.tls.CA, "ca", "", "the cluster CA the brain's certificate must chain to (ca.crt)")
	flag.DurationVar(&o.brain.staleness, "brain-staleness", 2*time.Minute, "after this long without the brain, its QoS overrides fall back to local policy (containers stay)")
	flag.StringVar(&o.brain.extended, "host-extended", "", "extended resources the host offers to jobs, name=amount,name=amount (e.g. fpga=2)")
	flag.IntVar(&o.brain.gpus, "host-gpus", -1, "GPUs the host offers; -1 counts the NVIDIA driver's under /proc/driver/nvidia/gpus")
	flag.StringVar(&o.brain.gpuModel, "host-gpu-model", "", "GPU model jobs select by (default: the driver's model name)")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "sluice-agent: -log-level: %v\n", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	procs, _, err := agent.QuietRuntime(o.timerSlack)
	if err != nil {
		log.Warn("timer slack not set: the agent wakes more often than it needs to", "timerSlack", o.timerSlack, "err", err)
	}
	log.Debug("runtime", "GOMAXPROCS", procs, "timerSlack", o.timerSlack)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		log.Error("sluice-agent stopped", "err", err)
		os.Exit(1)
	}
}

// preflight names what the host lacks before anything starts, and probes
// what it offers, once: the cgroup layout every component is given, and
// the rest of the host's capabilities.
func preflight(ctx context.Context, o options) (capability.Capabilities, error) {
	if os.Geteuid() != 0 {
		return capability.Capabilities{}, fmt.Errorf("must run as root (euid %d): it reads every cgroup and, unless in dry-run, writes their limits", os.Geteuid())
	}
	caps := capability.Probe(ctx, capability.Roots{Cgroup: o.cgroupRoot, Proc: o.procRoot, Resctrl: o.resctrl})
	if caps.CgroupErr != "" {
		return caps, fmt.Errorf("no usable cgroup hierarchy at %s: %s", o.cgroupRoot, caps.CgroupErr)
	}
	return caps, nil
}

func run(ctx context.Context, o options, log *slog.Logger) error {
	caps, err := preflight(ctx, o)
	if err != nil {
		return err
	}
	layout := caps.Cgroup
	// resctrl comes before the policy, so the policy is checked against
	// the cache hardware with its lines, like any other problem.
	rc, cacheErr := newResctrl(o, caps, log.With("component", "resctrl"))
	var hw *rdt.Hardware
	if rc != nil {
		h := rc.Hardware()
		hw = &h
	}
	pol, err := agent.LoadPolicyFileFor(o.policyPath, hw)
	if err != nil {
		return err
	}
	source := o.policyPath
	if source == "" {
		source = "embedded default"
	}
	log.Info("starting", "cgroupLayout", layout, "policy", source, "dryRun", o.dryRun || pol.DryRun)
	caps.TC = probeTC(log)
	log.Info("host capabilities", "caps", caps)

	var cleanup cleanups
	defer cleanup.run()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg := agent.Config{
		ForceDryRun: o.dryRun, Policy: pol, PolicySource: source,
		Registerer: reg, Log: log.With("component", "agent"), Capabilities: caps,
	}
	disc, err := samplers(ctx, o, layout, pol, log, &cfg, &cleanup)
	if err != nil {
		return err
	}
	netEnf := networkTiers(o, caps, log)
	cleanup.add(func() { _ = netEnf.Close() })
	cfg.Network = netEnf
	reg.MustRegister(netEnf.Collector())
	// The enforcers are built whenever the -dry-run flag is off, also when
	// the policy says dryRun: a later policy reload may switch enforcement
	// on, and dry-run plans write nothing anyway.
	var enf cgroup.Enforcer
	if !o.dryRun {
		if enf, err = enforcers(ctx, layout, o, pol, disc, netEnf, log, &cfg); err != nil {
			return err
		}
	}
	cacheIsolation(o, rc, cacheErr, pol, log.With("component", "resctrl"), &cfg)
	br, err := attachBrain(ctx, o, pol, log, &cfg, reg, &cleanup)
	if err != nil {
		return err
	}
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	errc, err := serve(ctx, o, a, reg, disc, log)
	if err != nil {
		return err
	}
	br.run(ctx, a, log)
	watchPolicy(ctx, o.policyPath, a, log)

	runErr := a.Run(ctx)
	if enf != nil && !a.Snapshot().Plan.DryRun && pol.OnStop == qos.StopRelease {
		for _, r := range enf.Release(context.Background()) {
			log.Info("released on stop", "intent", r.Intent, "status", r.Status, "err", r.Err)
		}
	}
	if runErr != nil {
		return runErr
	}
	select {
	case err := <-errc:
		return err
	default:
	}
	return nil
}

// probeTC asks the kernel which qdiscs and classifiers it offers (in a
// private network namespace: the host's devices are not touched).
func probeTC(log *slog.Logger) capability.TC {
	p, err := tc.Probe(tc.ProbeKinds())
	if err != nil {
		log.Warn("traffic control probe failed", "err", err)
		return capability.TC{}
	}
	return capability.TC{Probed: true, Qdiscs: p.Qdiscs, Classifiers: p.Classifiers}
}

// networkTiers builds the network tiers' sampler and enforcer. Nothing is
// loaded or shaped until the first enforcement pass (or a policy naming
// devices); the tiers' leaf qdisc is fq_codel where the kernel has it.
func networkTiers(o options, caps capability.Capabilities, log *slog.Logger) *node.Enforcer {
	cfg := node.Config{Log: log, Classify: classify.Config{PinDir: o.netPinDir}}
	if caps.TC.Probed && !slices.Contains(caps.TC.Qdiscs, "fq_codel") {
		cfg.TC.LeafQdisc = "-"
	}
	if o.netPinDir != "" && !onBPFFS(o.netPinDir) {
		log.Warn("no bpf file system for the network classifier's pins: classification restarts with the agent", "dir", o.netPinDir)
		cfg.Classify.PinDir = ""
	}
	return node.NewEnforcer(cfg, caps.Cgroup)
}

// onBPFFS reports whether dir, or its closest existing ancestor (the
// classifier makes the rest), is on a bpf file system.
func onBPFFS(dir string) bool {
	var st unix.Statfs_t
	for {
		if err := unix.Statfs(dir, &st); err == nil {
			return st.Type == unix.BPF_FS_MAGIC
		}
		up := filepath.Dir(dir)
		if up == dir {
			return false
		}
		dir = up
	}
}

// cleanups close what run opened, last opened first.
type cleanups []func()

func (c *cleanups) add(f func()) { *c = append(*c, f) }

func (c *cleanups) run() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
}

// samplers opens the host and cgroup samplers, discovery, the eBPF
// scheduler sampler and the PSI triggers into cfg.
func samplers(ctx context.Context, o options, layout cgroupfs.Layout, pol qos.Policy, log *slog.Logger, cfg *agent.Config, cleanup *cleanups) (*discovery.Discoverer, error) {
	host, err := sample.NewHost(o.procRoot, log.With("component", "sample"))
	if err != nil {
		return nil, fmt.Errorf("host sampler: %w", err)
	}
	cleanup.add(func() { _ = host.Close() })
	// The fast tick is for CPU bursts: it reads /proc/stat every time, PSI
	// averages (which change every 2 s in the kernel) and /proc/meminfo
	// (memory lending acts over seconds, and memory PSI triggers wake the
	// loop early) about once a second.
	perSecond := int(time.Second / max(pol.Sampling.HostInterval, time.Millisecond))
	host.ReadPSIEvery(perSecond)
	host.ReadMemoryEvery(perSecond)
	usage, err := sample.NewCgroupReader(layout)
	if err != nil {
		return nil, fmt.Errorf("cgroup reader: %w", err)
	}
	cleanup.add(func() { _ = usage.Close() })
	disc, err := discovery.New(discovery.Config{
		ContainerdAddress: o.containerd,
		CgroupRoot:        layout.Hierarchy(cgroupfs.CPU),
		Rules:             pol.Rules,
		ProcRoot:          o.procRoot,
	}, log)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	cleanup.add(func() { _ = disc.Close() })
	cfg.Host, cfg.Usage, cfg.Workloads = host, usage, disc

	if !o.noEBPF {
		if rq, err := agent.LoadRunq(layout); err != nil {
			log.Warn("eBPF sampling off: run-queue latency unavailable, CPU from procfs and cgroups only", "err", err)
		} else {
			cleanup.add(func() { _ = rq.Close() })
			cfg.Runq = rq
			log.Info("eBPF sampling on", "attach", rq.Attach(), "keyMode", rq.KeyMode())
		}
	}

	psi := newPSIWake(ctx, o.procRoot, pol, log.With("component", "psi"))
	cleanup.add(psi.Close)
	cfg.Wake, cfg.OnPolicy = psi.wake, psi.apply
	return disc, nil
}

// serve starts the local API and discovery; their errors arrive on the
// returned channel.
func serve(ctx context.Context, o options, a *agent.Agent, reg *prometheus.Registry, disc *discovery.Discoverer, log *slog.Logger) (<-chan error, error) {
	l, err := listen(o.listen)
	if err != nil {
		return nil, err
	}
	errc := make(chan error, 2)
	h := agent.Handler(a, reg)
	if o.pprof {
		h = agent.WithProfiling(h)
		log.Warn("profiling endpoints on", "addr", o.listen, "path", "/debug/pprof/")
	}
	go func() { errc <- agent.Serve(ctx, l, h, log.With("component", "api")) }()
	go func() { errc <- disc.Run(ctx) }()
	return errc, nil
}

// watchPolicy reloads the policy file when it changes and on SIGHUP.
func watchPolicy(ctx context.Context, path string, a *agent.Agent, log *slog.Logger) {
	if path != "" {
		go func() {
			if err := a.WatchPolicy(ctx, path, 200*time.Millisecond); err != nil {
				log.Warn("policy file watch off; SIGHUP still reloads", "err", err)
			}
		}()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if path == "" {
					log.Info("SIGHUP: no policy file to reload (embedded default in force)")
					continue
				}
				_ = a.ReloadPolicy(path)
			}
		}
	}()
}

// oomScoreInterval bounds how long a task that joined offline work without
// the offline oom_score_adj keeps its own: the same bound as discovery's
// resync of rule workloads.
const oomScoreInterval = 10 * time.Second

// listen makes the unix socket's directory when needed.
func listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
	}
	return agent.Listen(addr)
}

// enforcers builds the cgroup enforcer and the killer into cfg, and adopts
// the caps the kernel has (a restarted agent resumes without releasing
// them).
func enforcers(ctx context.Context, layout cgroupfs.Layout, o options, pol qos.Policy, disc *discovery.Discoverer, network agent.Enforcer, log *slog.Logger, cfg *agent.Config) (cgroup.Enforcer, error) {
	enf, err := cgroup.New(cgroup.Config{
		OfflineParent: pol.OfflineParent,
		Proc:          cgroup.Dir(o.procRoot),
		// The caps follow the fast tick; the offline tasks' oom_score_adj
		// is held less often: it takes a listing of every task below the
		// offline parent in every hierarchy (with 100 offline cgroups it
		// was a quarter of the enforcing agent's CPU even once a second).
		// New tasks mostly have the score already (forked from a task that
		// has it, or set by runc from the spec: kubelet gives BestEffort
		// containers 1000), and it is the kernel OOM killer's backstop.
		OOMScoreInterval: oomScoreInterval,
		Log:              log,
	}, layout)
	if err != nil {
		return nil, fmt.Errorf("cgroup enforcer: %w", err)
	}
	if cur, err := enf.Current(ctx); err != nil {
		log.Warn("could not read the offline caps in force; starting from current use", "err", err)
	} else if cur.Exists {
		cfg.Adopt = &agent.AdoptedLimits{CPUBudgetMilli: cur.CPUBudgetMilli, MemoryMaxBytes: cur.MemoryMaxBytes}
	}
	// Dedicated CPUs online workloads hold (pinning a previous run left) are
	// read back when each is first seen, so a restart does not move them.
	if cs := layout.Hierarchy(cgroupfs.Cpuset); cs != "" {
		cpusets := cgroup.Dir(cs)
		cfg.CurrentCpusets = func(paths []string) map[string][]int { return cgroup.ReadCpusets(cpusets, paths) }
	}
	k, err := killer.New(killer.Config{Tasks: disc, Log: log}.WithLayout(layout))
	if err != nil {
		return nil, fmt.Errorf("killer: %w", err)
	}
	// Every enforcer, in one place. Inline ones run in the loop; the
	// others in their own workers, so they never delay the CPU and memory
	// caps.
	cfg.Enforcers = []agent.Enforcement{
		{Name: "cgroup", Enforcer: enf, Inline: true},
		{Name: "killer", Enforcer: k},
		{Name: "network", Enforcer: network},
	}
	return enf, nil
}

// cacheIsolation wires resctrl (newResctrl) into cfg: read every tick
// (cfg.Cache) and, unless -dry-run, enforced in its own worker (moving
// tasks is slow; it never delays the CPU and memory caps). Without it,
// why is logged once and shown on /state; the rest of the agent runs.
func cacheIsolation(o options, rc *agent.Resctrl, cacheErr error, pol qos.Policy, log *slog.Logger, cfg *agent.Config) {
	if rc == nil {
		cfg.CacheErr = cacheErr.Error()
		log.Warn("cache and memory-bandwidth isolation off; everything else runs", "err", cacheErr)
		return
	}
	rc.SetPolicy(pol.RDT)
	cfg.Cache = rc
	if !o.dryRun {
		cfg.Enforcers = append(cfg.Enforcers, agent.Enforcement{Name: "resctrl", Enforcer: rc})
	}
	onPolicy := cfg.OnPolicy
	cfg.OnPolicy = func(p qos.Policy) {
		rc.SetPolicy(p.RDT)
		if onPolicy != nil {
			onPolicy(p)
		}
	}
	log.Info("cache and memory-bandwidth isolation on", "root", o.resctrl, "hardware", rc.Hardware())
}

// newResctrl sets up resctrl when the capability probe found it: mounted
// when the kernel has it but nothing mounted it (not under -dry-run,
// which changes nothing on the host), probed once, tasks listed from the
// Layout's cpu hierarchy.
func newResctrl(o options, caps capability.Capabilities, log *slog.Logger) (*agent.Resctrl, error) {
	root := caps.Resctrl.Root
	switch {
	case !caps.Resctrl.Supported:
		return nil, fmt.Errorf("resctrl: kernel has no resctrl file system (CONFIG_X86_CPU_RESCTRL and a CPU with RDT; not in %s/filesystems): %w",
			o.procRoot, resctrl.ErrNotSupported)
	case !caps.Resctrl.Mounted && o.dryRun:
		return nil, fmt.Errorf("resctrl: not mounted at %s, and -dry-run mounts nothing", root)
	case !caps.Resctrl.Mounted:
		if err := resctrl.Mount(root, o.procRoot); err != nil {
			return nil, err
		}
		log.Info("resctrl mounted", "root", root)
	}
	fsys := resctrl.Dir(root)
	hw, err := resctrl.Probe(fsys)
	if err != nil {
		return nil, err
	}
	tasks, err := agent.ResctrlTasks(caps.Cgroup)
	if err != nil {
		return nil, err
	}
	return agent.NewResctrl(agent.ResctrlConfig{FS: fsys, Hardware: hw, Tasks: tasks, Log: log})
}

// psiWake turns PSI trigger events into loop wake-ups. A host without PSI,
// or a kernel that refuses the triggers, only loses the early wake-up.
// apply re-registers the triggers when a reloaded policy changes their
// window or threshold; the wake channel stays the same.
type psiWake struct {
	ctx      context.Context
	procRoot string
	log      *slog.Logger
	wake     chan string

	mu  sync.Mutex
	cur qos.SamplingPolicy
	w   *sample.PSIWatcher
}

func newPSIWake(ctx context.Context, procRoot string, pol qos.Policy, log *slog.Logger) *psiWake {
	p := &psiWake{ctx: ctx, procRoot: procRoot, log: log, wake: make(chan string, 1)}
	p.start(pol.Sampling)
	return p
}

// apply is the agent's OnPolicy hook.
func (p *psiWake) apply(pol qos.Policy) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pol.Sampling.PSIWindow == p.cur.PSIWindow && pol.Sampling.PSIThreshold == p.cur.PSIThreshold {
		return
	}
	if p.w != nil {
		_ = p.w.Close()
		p.w = nil
	}
	p.startLocked(pol.Sampling)
}

func (p *psiWake) start(s qos.SamplingPolicy) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.startLocked(s)
}

func (p *psiWake) startLocked(s qos.SamplingPolicy) {
	p.cur = s
	triggers := []sample.PSITrigger{
		{Resource: "cpu", Stall: s.PSIThreshold, Window: s.PSIWindow},
		{Resource: "memory", Stall: s.PSIThreshold, Window: s.PSIWindow},
	}
	w, err := sample.NewPSIWatcher(p.procRoot, triggers, p.log)
	if err != nil {
		p.log.Warn("PSI triggers off: the loop wakes on its ticks only", "err", err)
		return
	}
	p.w = w
	go func() {
		for ev := range w.C() {
			if ev.Err != nil {
				p.log.Warn("PSI trigger stopped", "trigger", ev.Trigger.String(), "err", ev.Err)
				continue
			}
			select {
			case p.wake <- "psi":
			case <-p.ctx.Done():
				return
			default: // a wake-up is already pending
			}
		}
	}()
}

func (p *psiWake) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.w != nil {
		_ = p.w.Close()
		p.w = nil
	}
}
