package cgroup

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/cgroups/v3/cgroup2"

	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
)

// v2Controllers are the controllers the offline parent needs; each
// ancestor must list them in cgroup.subtree_control or the parent has no
// cpu.* / memory.* files.
var v2Controllers = [...]string{"cpu", "memory"}

type v2 struct {
	cfg     Config
	fs      FS
	mu      sync.Mutex
	idle    idleProbe
	oom     oomPace
	cpusets cpusetWriter
}

// NewV2 drives the unified hierarchy fsys (the cgroup2 mount).
func NewV2(cfg Config, fsys FS) (Enforcer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &v2{cfg: cfg, fs: fsys, cpusets: cpusetWriter{fs: fsys, mode: cgroupfs.ModeV2}}, nil
}

func (e *v2) Mode() cgroupfs.Mode { return cgroupfs.ModeV2 }

func (e *v2) Apply(ctx context.Context, plan qos.Plan) []qos.IntentResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	at := e.cfg.Now()
	if err := e.cfg.adoptParent(plan.OfflineParent); err != nil {
		return failAll(plan, plan.OfflineParent, err, at)
	}
	parent := e.cfg.OfflineParent
	var parentErr error
	if !plan.DryRun {
		controllers := v2Controllers[:]
		if slices.ContainsFunc(plan.Cpusets, func(c qos.CpusetIntent) bool { return path.Clean("/"+c.CgroupPath) == parent }) {
			controllers = append(controllers, "cpuset")
		}
		parentErr = e.ensureParent(controllers)
	}
	if plan.DryRun && !cgroupfs.CgroupExists(e.fs, parent) {
		return dryRunAll(plan, parent, at)
	}
	res := parentIntents(plan, parent, at, parentErr, parentErr,
		func(o *outcome) { e.cpuSteps(ctx, o, plan.OfflineCPU) },
		func(o *outcome, high, max uint64) { e.memorySteps(ctx, o, high, max) })
	if parentErr == nil {
		if r, ok := e.oom.apply(ctx, e.cfg, plan, parent, at, e.fs); ok {
			res = append(res, r)
		}
	}
	res = append(res, e.cpusets.apply(ctx, plan.Cpusets, parent, plan.DryRun, at)...)
	return res
}

// ensureParent creates the offline parent and enables controllers (cpu,
// memory, and cpuset when the plan pins the parent) on every ancestor's cgroup.subtree_control, top down (a
// controller must be enabled in a parent before its child can enable it).
func (e *v2) ensureParent(controllers []string) error {
	parent := e.cfg.OfflineParent
	if err := ensureDirs(e.fs, parent); err != nil {
		return err
	}
	for anc := range ancestors(parent) {
		name := path.Join(anc, "cgroup.subtree_control")
		cur, err := e.fs.ReadFile(name)
		if err != nil {
			return fmt.Errorf("cgroup %s: read cgroup.subtree_control: %w", anc, cgroupfs.ErrnoOf(err))
		}
		have := strings.Fields(string(cur))
		var add []string
		for _, c := range controllers {
			if !slices.Contains(have, c) {
				add = append(add, "+"+c)
			}
		}
		if len(add) == 0 {
			continue
		}
		want := strings.Join(add, " ")
		if err := e.fs.WriteFile(name, []byte(want)); err != nil {
			return fmt.Errorf("cgroup %s: write cgroup.subtree_control %s: %w", anc, want, cgroupfs.ErrnoOf(err))
		}
		e.cfg.Log.Info("enabled controllers", "cgroup", anc, "controllers", want)
	}
	return nil
}

// ancestors yields "/", "/a", "/a/b" for "/a/b/c": every strict ancestor
// of p, top down.
func ancestors(p string) func(func(string) bool) {
	return func(yield func(string) bool) {
		if !yield("/") {
			return
		}
		parts := strings.Split(strings.Trim(p, "/"), "/")
		cur := ""
		for _, part := range parts[:len(parts)-1] {
			cur += "/" + part
			if !yield(cur) {
				return
			}
		}
	}
}

func (e *v2) cpuSteps(ctx context.Context, o *outcome, cpu qos.CPUIntent) {
	parent := e.cfg.OfflineParent
	period, quota := cpu.PeriodMicros, cpu.QuotaMicros
	uperiod := uint64(period)
	o.run(ctx, step{fs: e.fs, cgroup: parent, file: "cpu.max",
		want: string(cgroup2.NewCPUMax(&quota, &uperiod)),
		same: func(cur []byte) bool {
			q, p, err := parseCPUMax(cur)
			return err == nil && q == quota && p == period
		}})
	if !cpu.YieldReason.IsZero() {
		e.idle.weightAndIdle(ctx, o, e.fs, e.cfg.OfflineParent, e.cfg, "cpu.weight", cpu.Weight, cpu.Idle)
	}
}

func (e *v2) memorySteps(ctx context.Context, o *outcome, high, max uint64) {
	parent := e.cfg.OfflineParent
	// memory.high first: reclaim starts before the hard limit bites.
	o.run(ctx, limitStep(e.fs, parent, "memory.high", high, e.cfg.PageSize, v2Unlimited))
	o.run(ctx, limitStep(e.fs, parent, "memory.max", max, e.cfg.PageSize, v2Unlimited))
}

func (e *v2) Current(ctx context.Context) (Settings, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	parent := e.cfg.OfflineParent
	if !cgroupfs.CgroupExists(e.fs, parent) {
		return Settings{}, nil
	}
	s := Settings{Exists: true}
	var errs []error
	read := func(file string) []byte {
		b, err := e.fs.ReadFile(path.Join(parent, file))
		if err != nil {
			errs = append(errs, fmt.Errorf("cgroup %s: read %s: %w", parent, file, cgroupfs.ErrnoOf(err)))
		}
		return b
	}
	if b := read("cpu.max"); b != nil {
		q, p, err := parseCPUMax(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("cgroup %s: %w", parent, err))
		} else {
			s.CPUPeriod = microseconds(p)
			if q >= 0 {
				s.CPUBudgetMilli = budgetMilli(q, p)
			}
		}
	}
	errs = append(errs, readLimits(e.fs, parent, &s, "memory.high", "memory.max")...)
	s.CPUIdle, _ = e.idle.read(e.fs, parent, e.cfg)
	return s, errors.Join(errs...)
}

func (e *v2) Release(ctx context.Context) []qos.IntentResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	parent := e.cfg.OfflineParent
	return releaseIntents(ctx, parent, e.cfg.Now(), e.cpusets, func(o *outcome) {
		uperiod := uint64(e.cfg.CPUPeriod.Microseconds())
		o.run(ctx, step{fs: e.fs, cgroup: parent, file: "cpu.max",
			want: string(cgroup2.NewCPUMax(nil, &uperiod)),
			same: func(cur []byte) bool {
				q, _, err := parseCPUMax(cur)
				return err == nil && q == -1
			}})
	}, func(o *outcome) {
		// Loosen the hard limit first so memory.high never sits above it.
		o.run(ctx, step{fs: e.fs, cgroup: parent, file: "memory.max", want: "max", same: sameText("max")})
		o.run(ctx, step{fs: e.fs, cgroup: parent, file: "memory.high", want: "max", same: sameText("max")})
	})
}
