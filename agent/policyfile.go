package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/sluicehq/sluice/brain/trace"
	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/rdt"
)

// ErrPolicyInvalid marks a policy file that was read but failed validation
// (as opposed to one that could not be read).
var ErrPolicyInvalid = errors.New("policy invalid")

// LoadPolicyFile reads and validates a policy file. An empty path means the
// embedded default policy.
func LoadPolicyFile(path string) (qos.Policy, error) { return LoadPolicyFileFor(path, nil) }

// LoadPolicyFileFor is LoadPolicyFile that also checks the rdt section
// against the host's resctrl hardware when hw is set: a policy impossible
// here is invalid, each problem with its line (qos.ParsePolicyFor).
func LoadPolicyFileFor(path string, hw *rdt.Hardware) (qos.Policy, error) {
	if path == "" {
		p := qos.DefaultPolicy()
		if hw != nil {
			if err := p.RDT.Validate(*hw); err != nil {
				return qos.Policy{}, fmt.Errorf("%w: embedded default on this host's resctrl hardware: %w", ErrPolicyInvalid, err)
			}
		}
		return p, nil
	}
	data, err := ReadPolicyFile(path)
	if err != nil {
		return qos.Policy{}, fmt.Errorf("read policy: %w", err)
	}
	p, err := qos.ParsePolicyFor(path, data, hw)
	if err != nil {
		return qos.Policy{}, fmt.Errorf("%w: %w", ErrPolicyInvalid, err)
	}
	return p, nil
}

// MaxPolicyFileBytes bounds what a policy file read takes: real policies
// are a few KB, and a path that names a device such as /dev/urandom never
// ends.
const MaxPolicyFileBytes = 1 << 20

// ReadPolicyFile reads a policy file of at most MaxPolicyFileBytes; a
// larger one is an error naming the limit, not a policy.
func ReadPolicyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := trace.ReadAll(f, MaxPolicyFileBytes)
	if errors.Is(err, trace.ErrLimit) {
		return nil, fmt.Errorf("larger than %d bytes, the policy file limit: not a policy file", MaxPolicyFileBytes)
	}
	return data, err
}

// policyLoaded is what /state shows about p, in force from source as of
// now. Every load (the first and each reload) passes here, so it is also
// where the log says which of p's sections are validated but not enforced.
func (a *Agent) policyLoaded(p qos.Policy, source string) PolicyInfo {
	ne := p.NotEnforced()
	if len(ne) > 0 {
		a.log.Warn("policy sections are validated but not enforced yet", "policy", source, "sections", ne)
	}
	return PolicyInfo{Source: source, LoadedAt: a.now(), DryRun: a.dryRun(p), OfflineParent: p.OfflineParent, NotEnforced: ne}
}

// ReloadPolicy loads path and hands it to the agent; on failure the policy
// in force stays, and the errors are logged and counted.
func (a *Agent) ReloadPolicy(path string) error {
	var hw *rdt.Hardware
	if a.cfg.Cache != nil {
		h := a.cfg.Cache.Hardware()
		hw = &h
	}
	p, err := LoadPolicyFileFor(path, hw)
	if err == nil {
		if rerr := a.cfg.Workloads.SetRules(p.Rules); rerr != nil {
			err = fmt.Errorf("%w: %w", ErrPolicyInvalid, rerr)
		}
	}
	if err != nil {
		result := "unreadable"
		if errors.Is(err, ErrPolicyInvalid) {
			result = "invalid"
		}
		a.RejectPolicy(result, err)
		a.log.Error("policy rejected; the previous policy stays in force", "path", path, "err", err)
		return err
	}
	a.SetPolicy(p, path)
	a.log.Info("policy reloaded", "path", path)
	return nil
}

// WatchPolicy reloads path whenever it changes, until ctx ends: an
// in-place write, an editor's write-then-rename, a file created where there
// was none, or a Kubernetes ConfigMap's "..data" symlink swap. Writes to
// other files in the directory do not wake it (see policywatch_linux.go).
// Bursts of events are coalesced for debounce.
func (a *Agent) WatchPolicy(ctx context.Context, path string, debounce time.Duration) error {
	w, err := newPolicyWatch(path)
	if err != nil {
		return err
	}
	changed := make(chan struct{}, 1)
	errc := make(chan error, 1)
	go func() { errc <- w.run(ctx, changed) }()
	var timer *time.Timer
	var fire <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return <-errc
		case err := <-errc:
			return err
		case <-changed:
			if timer == nil {
				timer = time.NewTimer(debounce)
			} else {
				timer.Reset(debounce)
			}
			fire = timer.C
		case <-fire:
			fire = nil
			_ = a.ReloadPolicy(path)
		}
	}
}
