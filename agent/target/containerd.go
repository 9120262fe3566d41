package target

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"

	"github.com/sluicehq/sluice/agent/converge"
	"github.com/sluicehq/sluice/qos"
)

// probeTimeout bounds each attempt to reach containerd.
const probeTimeout = 5 * time.Second

// Containerd is the Converger on a containerd daemon that may not be up
// yet: the converge.Converger is built the first time containerd answers,
// because only then is it known whether kubelet manages the host's
// containers (converge.KubeletManaged), and nothing may be launched before
// that is known. Until then every targeted container fails with the
// reason and the agent keeps running.
type Containerd struct {
	client *containerd.Client
	cfg    converge.Config
	log    *slog.Logger

	mu     sync.Mutex
	conv   *converge.Converger
	kube   bool
	failed string // last error while failing; "" once built
}

// NewContainerd returns the converger of client; cfg is converge's, with
// Client and KubeletManaged filled in once containerd answers.
func NewContainerd(client *containerd.Client, cfg converge.Config, log *slog.Logger) *Containerd {
	cfg.Client = client
	return &Containerd{client: client, cfg: cfg, log: log.With("component", "target")}
}

// get builds the converger when containerd answers.
func (c *Containerd) get(ctx context.Context) (*converge.Converger, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conv != nil {
		return c.conv, nil
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	kube, err := converge.KubeletManaged(pctx, c.client)
	if err != nil {
		return nil, c.fail(fmt.Errorf("containerd: %w", err))
	}
	cfg := c.cfg
	cfg.KubeletManaged = kube
	conv, err := converge.New(cfg, c.log)
	if err != nil {
		return nil, c.fail(err)
	}
	if kube {
		c.log.Warn("kubelet manages this host's containers: the brain's containers are not launched here")
	}
	c.conv, c.kube, c.failed = conv, kube, ""
	return conv, nil
}

// fail logs err when the converger starts failing (not on every retry:
// the dial errors of one outage vary). Called with mu held.
func (c *Containerd) fail(err error) error {
	if c.failed == "" {
		c.log.Warn("the brain's containers cannot run until this is fixed; retrying", "err", err)
	}
	c.failed = err.Error()
	return err
}

// Apply converges once (see converge.Converger.Apply), or fails every
// spec while containerd cannot be reached.
func (c *Containerd) Apply(ctx context.Context, specs []converge.Spec) []qos.IntentResult {
	conv, err := c.get(ctx)
	if err != nil {
		now := time.Now()
		rs := make([]qos.IntentResult, 0, len(specs))
		for _, s := range specs {
			rs = append(rs, qos.IntentResult{Intent: converge.IntentContainer, Target: s.ID, Status: qos.ResultFailed, Err: err.Error(), At: now})
		}
		return rs
	}
	return conv.Apply(ctx, specs)
}

// States are the converger's (none before containerd answered).
func (c *Containerd) States() []converge.ContainerState {
	c.mu.Lock()
	conv := c.conv
	c.mu.Unlock()
	if conv == nil {
		return nil
	}
	return conv.States()
}

// KubeletManaged reports whether kubelet owns the host's containers (false
// until containerd answered).
func (c *Containerd) KubeletManaged() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.kube
}

// Close ends the converger's background image fetches.
func (c *Containerd) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conv != nil {
		c.conv.Close()
	}
}

// Logs reads the tail of a launched container's output (see
// converge.Converger.Logs); an error while containerd has not answered.
func (c *Containerd) Logs(id string, maxBytes int64) ([]byte, bool, error) {
	c.mu.Lock()
	conv := c.conv
	c.mu.Unlock()
	if conv == nil {
		return nil, false, fmt.Errorf("container %s: %w: containerd has not answered the agent yet", id, converge.ErrNoLog)
	}
	return conv.Logs(id, maxBytes)
}
