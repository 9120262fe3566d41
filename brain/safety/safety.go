package safety

import (
	"fmt"
	"time"
)

// State is a host's colocation safety.
type State string

const (
	Unknown   State = "unknown"
	Safe      State = "safe"
	Squeezing State = "squeezing"
	Unsafe    State = "unsafe"
)

// rank orders states by severity.
func (s State) rank() int {
	switch s {
	case Squeezing:
		return 1
	case Unsafe:
		return 2
	}
	return 0
}

// Signals are one host's interference signals as its last heartbeat
// reported them.
type Signals struct {
	// Reported is false until the host's first heartbeat.
	Reported bool
	// OnlineRunqP99 is the online class's 99th-percentile run-queue
	// latency (0: not measured, e.g. no eBPF).
	OnlineRunqP99 time.Duration
	// CPUPressureSomePct and MemoryPressureSomePct are PSI "some" avg10, in
	// percent of wall time (0-100).
	CPUPressureSomePct    float64
	MemoryPressureSomePct float64
	// KillsLastHour is how many offline containers the agent killed in the
	// last hour.
	KillsLastHour int
	// LentCPUShare is what the host lends to offline work now, as a share
	// of its CPU capacity (0-1).
	LentCPUShare float64
	// OfflineCPUMilli is what offline work uses on the host now.
	OfflineCPUMilli int64
}

// Thresholds are the written lines between the states. A signal at or
// above a Squeeze line makes the host squeezing; at or above an Unsafe
// line, unsafe.
type Thresholds struct {
	RunqSqueeze, RunqUnsafe           time.Duration
	CPUPSISqueezePct, CPUPSIUnsafePct float64
	MemPSISqueezePct, MemPSIUnsafePct float64
	KillsSqueeze, KillsUnsafe         int
	// LentShareSqueeze: lending less than this share of the CPU while
	// offline work runs means the agent has squeezed offline down.
	LentShareSqueeze float64
}

// DefaultThresholds are the lines the web view and the event stream use.
//
//   - Run-queue latency p99: 1 ms squeezing, 5 ms unsafe. An uncontended
//     host waits tens of microseconds; a millisecond is already a visible
//     share of a fast service's latency budget, and 5 ms is most of CFS's
//     scheduling period (online work waiting behind offline for a slice).
//   - CPU PSI some avg10: 10% squeezing, 40% unsafe. Some task stalled on
//     CPU a tenth of the time is contention worth knowing; 40% means
//     runnable work waits most of the time.
//   - Memory PSI some avg10: 5% squeezing, 20% unsafe. Memory stalls
//     (reclaim, refaults) cost more per percent than CPU waits, so the
//     lines are lower.
//   - Offline kills in the last hour: 1 squeezing, 5 unsafe. One kill is
//     the agent doing its job; five in an hour means memory keeps running
//     out and offline work keeps being lost.
//   - Lent CPU share: under 5% while offline work runs is squeezing: the
//     agent has taken back nearly all it lends.
func DefaultThresholds() Thresholds {
	return Thresholds{
		RunqSqueeze: time.Millisecond, RunqUnsafe: 5 * time.Millisecond,
		CPUPSISqueezePct: 10, CPUPSIUnsafePct: 40,
		MemPSISqueezePct: 5, MemPSIUnsafePct: 20,
		KillsSqueeze: 1, KillsUnsafe: 5,
		LentShareSqueeze: 0.05,
	}
}

// Validate reports thresholds that cannot order the states.
func (t Thresholds) Validate() error {
	switch {
	case t.RunqSqueeze <= 0 || t.RunqUnsafe < t.RunqSqueeze:
		return fmt.Errorf("safety thresholds: run-queue latency: want 0 < squeeze (%s) <= unsafe (%s)", t.RunqSqueeze, t.RunqUnsafe)
	case t.CPUPSISqueezePct <= 0 || t.CPUPSIUnsafePct < t.CPUPSISqueezePct || t.CPUPSIUnsafePct > 100:
		return fmt.Errorf("safety thresholds: cpu psi: want 0 < squeeze (%g) <= unsafe (%g) <= 100", t.CPUPSISqueezePct, t.CPUPSIUnsafePct)
	case t.MemPSISqueezePct <= 0 || t.MemPSIUnsafePct < t.MemPSISqueezePct || t.MemPSIUnsafePct > 100:
		return fmt.Errorf("safety thresholds: memory psi: want 0 < squeeze (%g) <= unsafe (%g) <= 100", t.MemPSISqueezePct, t.MemPSIUnsafePct)
	case t.KillsSqueeze <= 0 || t.KillsUnsafe < t.KillsSqueeze:
		return fmt.Errorf("safety thresholds: kills: want 0 < squeeze (%d) <= unsafe (%d)", t.KillsSqueeze, t.KillsUnsafe)
	case t.LentShareSqueeze < 0 || t.LentShareSqueeze > 1:
		return fmt.Errorf("safety thresholds: lent share: %g is outside [0, 1]", t.LentShareSqueeze)
	}
	return nil
}

// Verdict is a host's state with every signal that put it there.
type Verdict struct {
	State State
	// Reasons name each signal at or past a line, most severe first
	// ("run-queue p99 6ms >= 5ms (unsafe)").
	Reasons []string
}

// Assess judges one host. The state is the most severe any signal reaches.
func Assess(s Signals, t Thresholds) Verdict {
	if !s.Reported {
		return Verdict{State: Unknown}
	}
	var unsafe, squeeze []string
	// judge files a signal by the line it reaches; why, given that line's
	// severity, is only called for a signal past a line (most hosts are
	// calm, and a fleet view judges every host).
	judge := func(level State, why func(unsafe bool) string) {
		switch level {
		case Unsafe:
			unsafe = append(unsafe, why(true)+" (unsafe)")
		case Squeezing:
			squeeze = append(squeeze, why(false)+" (squeezing)")
		}
	}
	if r := s.OnlineRunqP99; r > 0 {
		judge(level(r >= t.RunqUnsafe, r >= t.RunqSqueeze), func(u bool) string {
			return fmt.Sprintf("online run-queue p99 %s >= %s", r, pick(u, t.RunqUnsafe, t.RunqSqueeze))
		})
	}
	cpu, mem := s.CPUPressureSomePct, s.MemoryPressureSomePct
	judge(level(cpu >= t.CPUPSIUnsafePct, cpu >= t.CPUPSISqueezePct), func(u bool) string {
		return fmt.Sprintf("cpu psi some %.1f%% >= %g%%", cpu, pick(u, t.CPUPSIUnsafePct, t.CPUPSISqueezePct))
	})
	judge(level(mem >= t.MemPSIUnsafePct, mem >= t.MemPSISqueezePct), func(u bool) string {
		return fmt.Sprintf("memory psi some %.1f%% >= %g%%", mem, pick(u, t.MemPSIUnsafePct, t.MemPSISqueezePct))
	})
	k := s.KillsLastHour
	judge(level(k >= t.KillsUnsafe, k >= t.KillsSqueeze), func(u bool) string {
		return fmt.Sprintf("%d offline kills in the last hour >= %d", k, pick(u, t.KillsUnsafe, t.KillsSqueeze))
	})
	judge(level(false, s.OfflineCPUMilli > 0 && s.LentCPUShare < t.LentShareSqueeze), func(bool) string {
		return fmt.Sprintf("lends %.1f%% of its cpu < %g%% while offline runs", 100*s.LentCPUShare, 100*t.LentShareSqueeze)
	})
	v := Verdict{State: Safe, Reasons: append(unsafe, squeeze...)}
	switch {
	case len(unsafe) > 0:
		v.State = Unsafe
	case len(squeeze) > 0:
		v.State = Squeezing
	}
	return v
}

// pick is the unsafe line when unsafe, else the squeeze line.
func pick[T any](unsafe bool, unsafeLine, squeezeLine T) T {
	if unsafe {
		return unsafeLine
	}
	return squeezeLine
}

func level(unsafe, squeeze bool) State {
	switch {
	case unsafe:
		return Unsafe
	case squeeze:
		return Squeezing
	}
	return Safe
}

// Worse reports whether a is more severe than b (unknown counts as safe).
func Worse(a, b State) bool { return a.rank() > b.rank() }
