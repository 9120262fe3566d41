package killer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"syscall"
	"time"

	"github.com/containerd/errdefs"

	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup"
	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
)

// TaskKiller signals a container's task, all its processes. The discovery
// package implements it with the containerd client.
//
// Contract: sig goes to every process of the task; an error wrapping
// errdefs.ErrNotFound means the container or its task is already gone.
// Safe for concurrent use.
type TaskKiller interface {
	KillTask(ctx context.Context, namespace, id string, sig syscall.Signal) error
}

// Config wires a Killer. At least one of Tasks, Unified and V1 is needed.
type Config struct {
	// Tasks kills containers (victims with a Namespace and ID); nil kills
	// them through their cgroup like host cgroups.
	Tasks TaskKiller
	// Unified is the cgroup v2 hierarchy (on hybrid hosts the unified
	// mount): victims whose cgroup exists there die by cgroup.kill.
	Unified cgroup.FS
	// V1 is a v1 hierarchy holding the victims' tasks (the memory
	// hierarchy): used when the cgroup is not in Unified.
	V1 cgroup.FS
	// Signal sends sig to pid (default kill(2)).
	Signal func(pid int, sig syscall.Signal) error
	// Now stamps results (default time.Now).
	Now func() time.Time
	Log *slog.Logger
}

// WithLayout returns c with the hierarchies of the host's cgroup layout:
// Unified is the cgroup2 hierarchy (the root on v2, the unified mount on
// hybrid hosts, none on pure v1), V1 the memory hierarchy on v1 and hybrid
// hosts.
func (c Config) WithLayout(l cgroupfs.Layout) Config {
	c.Unified, c.V1 = nil, nil
	if u := l.Unified(); u != "" {
		c.Unified = cgroup.Dir(u)
	}
	if m := l.Hierarchy(cgroupfs.Memory); m != "" && l.Mode() != cgroupfs.ModeV2 {
		c.V1 = cgroup.Dir(m)
	}
	return c
}

// Killer kills offline victims. Safe for concurrent use.
type Killer struct {
	cfg Config
}

// New builds a Killer.
func New(cfg Config) (*Killer, error) {
	if cfg.Tasks == nil && cfg.Unified == nil && cfg.V1 == nil {
		return nil, errors.New("killer: no way to kill: want a containerd task killer or a cgroup hierarchy")
	}
	if cfg.Signal == nil {
		cfg.Signal = signal
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg.Log = cfg.Log.With("component", "killer")
	return &Killer{cfg: cfg}, nil
}

// maxRounds bounds how often a v1 cgroup is re-read for tasks forked while
// their siblings were being killed.
const maxRounds = 10

// Apply carries out plan.Kills in order, one result each (Intent "kill",
// Target the victim's ID): applied when the kill was sent, unchanged when
// the victim was already gone, failed with the reason otherwise (a
// non-offline victim is always failed), dry-run for dry-run plans. One
// failure does not stop the next victim. A plan without kills does
// nothing. It is the agent's enforcer for the plan's Kills group.
func (k *Killer) Apply(ctx context.Context, plan qos.Plan) []qos.IntentResult {
	res := make([]qos.IntentResult, 0, len(plan.Kills))
	for _, v := range plan.Kills {
		r := qos.IntentResult{Intent: qos.IntentKill, Target: v.ID, Status: qos.ResultApplied}
		status, err := k.kill(ctx, v, plan.DryRun)
		r.Status, r.At = status, k.cfg.Now()
		if err != nil {
			r.Status, r.Err = qos.ResultFailed, err.Error()
			k.cfg.Log.Warn("kill failed", "victim", v.Name, "id", v.ID, "err", err)
		} else if status == qos.ResultApplied {
			k.cfg.Log.Info("killed offline victim", "victim", v.Name, "id", v.ID, "priority", v.Priority, "reason", v.Reason.String())
		}
		res = append(res, r)
	}
	return res
}

func (k *Killer) kill(ctx context.Context, v qos.KillIntent, dryRun bool) (qos.ResultStatus, error) {
	who := v.Name
	if who == "" {
		who = v.ID
	}
	if v.Class != qos.ClassOffline {
		return qos.ResultFailed, fmt.Errorf("refusing to kill %s: class %q is not offline", who, v.Class)
	}
	if dryRun {
		return qos.ResultDryRun, nil
	}
	if err := ctx.Err(); err != nil {
		return qos.ResultFailed, fmt.Errorf("kill %s: %w", who, err)
	}
	if k.cfg.Tasks != nil && v.Namespace != "" && v.ID != "" {
		err := k.cfg.Tasks.KillTask(ctx, v.Namespace, v.ID, syscall.SIGKILL)
		switch {
		case errdefs.IsNotFound(err):
			return qos.ResultUnchanged, nil
		case err != nil:
			return qos.ResultFailed, fmt.Errorf("kill container %s/%s: %w", v.Namespace, v.ID, err)
		}
		return qos.ResultApplied, nil
	}
	if v.CgroupPath == "" {
		return qos.ResultFailed, fmt.Errorf("kill %s: no cgroup path and no container to kill", who)
	}
	cg := path.Clean("/" + v.CgroupPath)
	if k.cfg.Unified != nil && cgroupfs.CgroupExists(k.cfg.Unified, cg) {
		err := k.cfg.Unified.WriteFile(path.Join(cg, "cgroup.kill"), []byte("1"))
		switch {
		case err == nil:
			return qos.ResultApplied, nil
		case errors.Is(err, fs.ErrNotExist) && cgroupfs.CgroupExists(k.cfg.Unified, cg):
			// Kernels before 5.14 have no cgroup.kill: signal each task.
			return k.killPIDs(k.cfg.Unified, cg)
		case errors.Is(err, fs.ErrNotExist):
			return qos.ResultUnchanged, nil
		}
		return qos.ResultFailed, fmt.Errorf("cgroup %s: write cgroup.kill: %w", cg, cgroupfs.ErrnoOf(err))
	}
	if k.cfg.V1 != nil && cgroupfs.CgroupExists(k.cfg.V1, cg) {
		return k.killPIDs(k.cfg.V1, cg)
	}
	return qos.ResultUnchanged, nil
}

// killPIDs SIGKILLs every task of cg and its descendants, re-reading the
// cgroup for tasks forked meanwhile, until a round finds nothing new.
func (k *Killer) killPIDs(fsys cgroup.FS, cg string) (qos.ResultStatus, error) {
	var signalled []int
	var errs []error
	for range maxRounds {
		pids, err := cgroup.Procs(fsys, cg)
		if err != nil {
			return qos.ResultFailed, err
		}
		fresh := 0
		for _, pid := range pids {
			if slices.Contains(signalled, pid) {
				continue
			}
			fresh++
			signalled = append(signalled, pid)
			if err := k.cfg.Signal(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("cgroup %s: kill pid %d: %w", cg, pid, err))
			}
		}
		if fresh == 0 {
			break
		}
	}
	switch {
	case len(errs) > 0:
		return qos.ResultFailed, errors.Join(errs...)
	case len(signalled) == 0:
		return qos.ResultUnchanged, nil
	}
	return qos.ResultApplied, nil
}
