package sample

import (
	"fmt"
	"path/filepath"
	"time"
)

// Kernel bounds on a PSI trigger window (kernel/sched/psi.c WINDOW_MIN_US,
// WINDOW_MAX_US), and the granularity the kernel demands of writers without
// CAP_SYS_RESOURCE since Linux 6.5, whose triggers ride the 2 s averaging
// worker instead of the real-time poller.
const (
	psiWindowMin          = 500 * time.Millisecond
	psiWindowMax          = 10 * time.Second
	psiUnprivilegedWindow = 2 * time.Second
)

// PSITrigger asks the kernel to signal when tasks stalled on a resource for
// at least Stall within any Window.
type PSITrigger struct {
	// Resource is "cpu", "memory" or "io".
	Resource string
	// Full watches the "full" line (every non-idle task stalled at once)
	// instead of "some" (at least one task stalled).
	Full bool
	// Stall is the stall time within Window that fires the trigger; it must
	// be positive and no longer than Window.
	Stall time.Duration
	// Window is the sliding window, 500 ms to 10 s, microsecond granularity.
	Window time.Duration
	// Cgroup is an absolute cgroup2 directory whose <Resource>.pressure
	// file is watched; empty watches the whole host (<proc>/pressure/<Resource>).
	Cgroup string
}

func (t PSITrigger) String() string {
	where := "host"
	if t.Cgroup != "" {
		where = t.Cgroup
	}
	return fmt.Sprintf("%s %s %s %v/%v", where, t.Resource, t.kind(), t.Stall, t.Window)
}

func (t PSITrigger) kind() string {
	if t.Full {
		return "full"
	}
	return "some"
}

// validate rejects what the kernel would reject for any caller, so that an
// EINVAL after validation can only be the unprivileged-window rule.
func (t PSITrigger) validate() error {
	switch t.Resource {
	case "cpu", "memory", "io":
	default:
		return fmt.Errorf("psi trigger %v: resource %q: want cpu, memory or io", t, t.Resource)
	}
	if t.Window < psiWindowMin || t.Window > psiWindowMax {
		return fmt.Errorf("psi trigger %v: window %v outside [%v, %v]", t, t.Window, psiWindowMin, psiWindowMax)
	}
	if t.Window%time.Microsecond != 0 || t.Stall%time.Microsecond != 0 {
		return fmt.Errorf("psi trigger %v: stall and window must be whole microseconds", t)
	}
	if t.Stall <= 0 || t.Stall > t.Window {
		return fmt.Errorf("psi trigger %v: stall %v must be positive and at most the window", t, t.Stall)
	}
	return nil
}

// file is the pressure file the trigger is written to.
func (t PSITrigger) file(procRoot string) string {
	if t.Cgroup != "" {
		return filepath.Join(t.Cgroup, t.Resource+".pressure")
	}
	return filepath.Join(procRoot, "pressure", t.Resource)
}

// text is what is written to the pressure file. The kernel overwrites the
// last byte written with NUL before parsing, so the NUL is part of the
// write: without it the window would lose its last digit.
func (t PSITrigger) text() string {
	return fmt.Sprintf("%s %d %d\x00", t.kind(), t.Stall.Microseconds(), t.Window.Microseconds())
}

// unprivilegedFallback returns the trigger the kernel accepts from a writer
// without CAP_SYS_RESOURCE: the window rounded up to a multiple of 2 s and
// the stall scaled with it, so the trigger still fires at the same share of
// stalled time. ok is false when the window already is such a multiple
// (the refusal had another cause).
func (t PSITrigger) unprivilegedFallback() (PSITrigger, bool) {
	if t.Window%psiUnprivilegedWindow == 0 {
		return t, false
	}
	w := (t.Window/psiUnprivilegedWindow + 1) * psiUnprivilegedWindow
	f := t
	// Scale in microseconds (the kernel's unit); windows are at most 10 s,
	// so the product fits easily.
	stallUS := (t.Stall.Microseconds()*w.Microseconds() + t.Window.Microseconds() - 1) / t.Window.Microseconds()
	f.Window, f.Stall = w, time.Duration(stallUS)*time.Microsecond
	return f, true
}

// PSIEvent reports that a trigger fired, or that it stopped working.
type PSIEvent struct {
	// Trigger is the trigger in force (after any window fallback).
	Trigger PSITrigger
	// Err is non-nil when the trigger is dead, e.g. its cgroup was removed
	// (wraps ErrCgroupGone); the watcher stops watching it.
	Err error
}
