package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/agent/brainlink"
	"github.com/sluicehq/sluice/agent/converge"
	"github.com/sluicehq/sluice/agent/target"
	"github.com/sluicehq/sluice/brain/auth"
	"github.com/sluicehq/sluice/qos"
)

// brainOptions are the flags of the brain connection.
type brainOptions struct {
	url           string
	hostName      string
	stateDir      string
	namespace     string
	labels        string
	failureDomain string
	staleness     time.Duration
	// tls are the host's certificate, its key and the cluster CA (an
	// https -brain URL needs them; http only reaches loopback).
	tls auth.ClientFiles
	// extended resources ("name=amount,...") and GPUs (-1: detect) the
	// host offers beyond CPU and memory.
	extended string
	gpus     int
	gpuModel string
}

// brain is the wired connection: the link runs once the agent exists,
// because its heartbeats read the agent's snapshots.
type brain struct {
	link   *brainlink.Link
	runner *target.Runner
}

// attachBrain builds the link, the container converger and the target
// runner into cfg (cfg.Brain) when -brain is set; nil otherwise. The
// registration carries the host's capacity, labels, failure domain and the
// capabilities probed at start.
func attachBrain(ctx context.Context, o options, pol qos.Policy, log *slog.Logger, cfg *agent.Config, reg prometheus.Registerer, cleanup *cleanups) (*brain, error) {
	b := o.brain
	if b.url == "" {
		return nil, nil
	}
	name := b.hostName
	if name == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("brain: host name: %w (pass -host-name)", err)
		}
		name = h
	}
	labels, err := parseLabels(b.labels)
	if err != nil {
		return nil, fmt.Errorf("-host-labels: %w", err)
	}
	hs, err := cfg.Host.Sample()
	if err != nil {
		return nil, fmt.Errorf("brain: host capacity: %w", err)
	}
	extended, err := target.ParseExtended(b.extended)
	if err != nil {
		return nil, fmt.Errorf("-host-extended: %w", err)
	}
	regn := target.Registration(cfg.Capabilities, hs.CPUCapacityMilli, int64(min(hs.MemTotalBytes, 1<<62)), extended, labels, b.failureDomain)
	if regn.GPUs, regn.GPUModel, err = hostGPUs(b, o.procRoot); err != nil {
		return nil, err
	}
	// The converger, built below, keeps the launched containers' output
	// that the brain asks for.
	var conv *target.Containerd
	logs := func(id string, maxBytes int64) ([]byte, bool, error) {
		if conv == nil {
			return nil, false, fmt.Errorf("container %s: %w: the agent runs no containers (no -containerd)", id, converge.ErrNoLog)
		}
		return conv.Logs(id, maxBytes)
	}
	if b.tls.Cert != "" {
		if err := auth.CheckHostFile(b.tls.Cert, name); err != nil {
			return nil, fmt.Errorf("-tls-cert: %w", err)
		}
	}
	hc, err := auth.HTTPClient(b.url, b.tls, func(err error) {
		log.Error("brain certificate files changed but do not load", "err", err)
	})
	if err != nil {
		return nil, fmt.Errorf("-brain: %w", err)
	}
	link, err := brainlink.New(brainlink.Config{
		BrainURL: b.url, StateDir: b.stateDir, HostName: name, Registration: regn,
		Staleness: b.staleness, Logger: log, Logs: logs, HTTPClient: hc,
	})
	if err != nil {
		return nil, err
	}
	dryRun := o.dryRun || pol.DryRun
	rc := target.Config{Link: link, DryRun: dryRun, Log: log}
	if o.containerd != "" {
		// The client dials lazily; a containerd that is not up yet is
		// waited for by the converger, the agent runs meanwhile.
		client, err := containerd.New(o.containerd)
		if err != nil {
			return nil, fmt.Errorf("brain: containerd %s: %w", o.containerd, err)
		}
		cleanup.add(func() { _ = client.Close() })
		logDir, err := filepath.Abs(filepath.Join(b.stateDir, "logs"))
		if err != nil {
			return nil, fmt.Errorf("brain: container log directory: %w", err)
		}
		ccfg := converge.Config{Namespace: b.namespace, Parents: converge.SiblingParents(pol.OfflineParent), DryRun: dryRun, LogDir: logDir}
		// Launched containers start in their class's resctrl group, set in
		// the OCI spec only when resctrl was probed present (runc refuses
		// the field otherwise).
		if r, ok := cfg.Cache.(*agent.Resctrl); ok && r != nil {
			ccfg.RdtGroup = r.GroupFor
		}
		conv = target.NewContainerd(client, ccfg, log)
		cleanup.add(conv.Close)
		rc.Converger = conv
	} else {
		log.Warn("no containerd (-containerd empty): the brain's containers cannot run here")
	}
	// The class parents are the starting policy's and running containers
	// are never moved (a restarted agent adopts them where they are), so a
	// reload that moves the offline parent is flagged: until a restart,
	// new launches still go beside the old one.
	onPolicy, parent := cfg.OnPolicy, pol.OfflineParent
	cfg.OnPolicy = func(p qos.Policy) {
		if onPolicy != nil {
			onPolicy(p)
		}
		if p.OfflineParent != parent {
			log.Warn("the reloaded policy moves the offline parent; the brain's containers stay under the old class parents, and new ones go there too until the agent restarts",
				"started", parent, "reloaded", p.OfflineParent)
		}
	}
	runner := target.New(rc)
	for _, c := range runner.Collectors(time.Now) {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("brain: metrics: %w", err)
		}
	}
	cfg.Brain = runner
	log.Info("following the brain", "brain", b.url, "host", name, "node", link.NodeID(), "stateDir", b.stateDir,
		"namespace", b.namespace, "dryRun", dryRun)
	return &brain{link: link, runner: runner}, nil
}

// run starts the link (heartbeats from a's snapshots) and the container
// worker; both retry on their own and end with ctx.
func (b *brain) run(ctx context.Context, a *agent.Agent, log *slog.Logger) {
	if b == nil {
		return
	}
	go func() {
		if err := b.link.Run(ctx, a.BrainReport); err != nil {
			log.Error("brain link stopped", "err", err)
		}
	}()
	go func() {
		if err := b.runner.Run(ctx); err != nil {
			log.Error("target worker stopped", "err", err)
		}
	}()
}

// parseLabels reads "k=v,k=v".
// hostGPUs is the GPU count and model registered: the flags', or what the
// NVIDIA driver lists under procRoot.
func hostGPUs(b brainOptions, procRoot string) (int, string, error) {
	n, model := b.gpus, b.gpuModel
	if n < 0 {
		found, foundModel, err := target.DetectGPUs(procRoot)
		if err != nil {
			return 0, "", fmt.Errorf("brain: %w (pass -host-gpus)", err)
		}
		n = found
		if model == "" {
			model = foundModel
		}
	}
	if n > 0 && model == "" {
		return 0, "", fmt.Errorf("-host-gpus %d: -host-gpu-model is needed too (jobs select GPUs by model)", n)
	}
	return n, model, nil
}

func parseLabels(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]string{}
	var errs []error
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			errs = append(errs, fmt.Errorf("%q is not key=value", kv))
			continue
		}
		out[k] = v
	}
	return out, errors.Join(errs...)
}
