package agent

import (
	"strings"
	"time"

	"github.com/sluicehq/sluice/ebpf"
	"github.com/sluicehq/sluice/qos"
)

// WakeSource is the eBPF programs' wake-ups as the loop sees them (see
// bpf/runq.c): an online task woken, an online task preempting an offline
// one, or an online run-queue wait above the policy's target. The
// ebpf.Sampler behind EBPFRunq is one. NextWake blocks; one goroutine calls it.
type WakeSource interface {
	SetWakeClass(cgroupID uint64, c ebpf.WakeClass) error
	SetWakes(ebpf.WakeConfig) error
	NextWake() (ebpf.WakeEvent, error)
}

// Wake-up timing. An event says online work just started to want CPU
// that offline work holds; the counters read at that instant still
// describe the time before it. So the loop marks the counters at once and
// decides confirmWait later, on a window that holds only the burst: a
// rate over 20 ms of a burst is the burst's rate, not a fifth of it.
const (
	confirmWait = 20 * time.Millisecond
	// rearmAfter bounds how long wake-ups stay off after one was acted on
	// when the offline budget does not grow again (continuous contention
	// would otherwise wake the loop at every event: the agent's own CPU).
	rearmAfter = time.Second
	// wakeMinGap is the least time between two events from one CPU.
	wakeMinGap = 10 * time.Millisecond
	// wakeBurstShare is how far online use must have jumped over the
	// confirm window, as a share of the host, for a wake-up to decide: an
	// event only says an online task took a CPU, which a steady service
	// does all the time, and online use over 20 ms swings with request
	// clustering. Deciding on such a window would cut offline for nothing
	// and cost it the grow hold; a real burst (a busy loop, a thread pool
	// waking) clears the bar by far.
	wakeBurstShare = 0.2
	// quickRearms is how many wake-ups a second re-arm the programs as
	// soon as they are dealt with (dismissed, or decided whether it cut
	// or not). A dismissal decided nothing, so the gate has no reason to
	// stay shut: shut for rearmAfter, it hid every burst that came within
	// a second of any small online wake-up (a request, a health check, a
	// shell joining the cgroup), which then waited for the host tick. A
	// decision that cut may have left offline work much of its budget
	// (the cut goes to the water level, not to nothing): shut until the
	// budget grew again, the gate hid a second burst that came during the
	// grow hold (measured: BenchmarkReactionLatency, a shell starting in
	// the online cgroup cut the budget by a third, the burst 400 ms later
	// waited for the tick). Each quick re-arm costs the agent a wake-up
	// and two reads of the fast counters; past this many a second (a
	// steady service that wakes all the time, an ongoing burst whose
	// events no longer show a jump) the gate waits for the budget to grow
	// or for rearmAfter.
	quickRearms = 4
)

// wakeGate decides when an event is worth a decision. After acting on one
// it disarms (the programs stop posting). Once the wake-up is dealt with
// (dismissed, or its decision made) the gate re-arms at once, up to
// quickRearms times a second; past that it stays disarmed until the
// offline budget grows past what the wake-up's decision left — offline
// work can interfere more only with more CPU — or rearmAfter has passed.
// Time comes in as arguments.
type wakeGate struct {
	armed      bool
	disarmedAt time.Time
	// budget is the offline CPU budget the wake-up's decision planned;
	// -1 until that decision ran.
	budget int64
	// rearms counts the quick re-arms in the second from rearmSince.
	rearms     int
	rearmSince time.Time
}

// event reports whether to act on an event at now, and disarms if so.
func (g *wakeGate) event(now time.Time) bool {
	if !g.armed {
		return false
	}
	g.armed, g.disarmedAt, g.budget = false, now, -1
	return true
}

// decided records a decision's offline budget and reports whether the
// gate re-armed (the programs must post again).
func (g *wakeGate) decided(now time.Time, budgetMilli int64) bool {
	if g.armed {
		return false
	}
	if g.budget < 0 {
		g.budget = budgetMilli // the wake-up's own decision
		return g.handled(now)
	}
	if budgetMilli > g.budget || now.Sub(g.disarmedAt) >= rearmAfter || now.Before(g.disarmedAt) {
		g.armed = true
		return true
	}
	return false
}

// handled records that the wake-up the gate let through at now was
// dealt with (dismissWake, or its decision) and reports whether the gate
// re-armed at once: up to quickRearms times a second. Otherwise it stays
// disarmed, and the next decisions re-arm it (decided).
func (g *wakeGate) handled(now time.Time) bool {
	if g.armed {
		return false
	}
	if now.Sub(g.rearmSince) >= time.Second || now.Before(g.rearmSince) {
		g.rearmSince, g.rearms = now, 0
	}
	if g.rearms >= quickRearms {
		return false
	}
	g.rearms++
	g.armed = true
	return true
}

// startWakes turns the programs' wake-ups on and starts reading them, when
// the runq source offers them. A failure leaves the loop on its ticks.
func (a *Agent) startWakes() {
	if a.runq == nil || a.runq.wake == nil {
		return
	}
	a.wakes = make(chan ebpf.WakeEvent, 1)
	if !a.armWakes() {
		a.wakes = nil
		return
	}
	src := a.runq.wake
	go func() {
		for {
			ev, err := src.NextWake()
			if err != nil {
				return // the sampler closed: the agent is stopping
			}
			select {
			case a.wakes <- ev:
			default: // one pending wake-up is as good as many
			}
		}
	}()
}

// armWakes (re-)enables the programs' wake-ups with the policy's online
// run-queue target as threshold.
func (a *Agent) armWakes() bool {
	cfg := ebpf.WakeConfig{RunqThreshold: a.policy.CPU.OnlineRunqLatencyP99, MinGap: wakeMinGap}
	if err := a.runq.wake.SetWakes(cfg); err != nil {
		a.warnOnce("wakes", "eBPF wake-ups off; the loop reacts on its ticks", "err", err)
		return false
	}
	a.gate.armed = true
	return true
}

// wakeEvent handles one wake-up: if the gate takes it, the programs stop
// posting, the fast counters are marked now (so the decision's window
// starts at the event) and the caller decides after confirmWait.
func (a *Agent) wakeEvent() bool {
	now := a.now()
	if !a.gate.event(now) {
		return false
	}
	if err := a.runq.wake.SetWakes(ebpf.WakeConfig{}); err != nil {
		a.log.Debug("disarm eBPF wake-ups", "err", err)
	}
	a.fastCPU(now, 0)
	return true
}

// dismissWake reports whether a wake-up's decision is not worth making:
// online use over the confirm window did not jump by wakeBurstShare of the
// host over the last decided tick's. The counters were still read, so the
// next tick measures from here. Other causes are never dismissed.
func (a *Agent) dismissWake(cause string, cpu *qos.CPUAccounting, capacityMilli int64) bool {
	if cpu == nil || !strings.HasPrefix(cause, "ebpf-") {
		if cpu != nil {
			a.lastOnlineMilli = cpu.OnlineMilli
		}
		return false
	}
	if float64(cpu.OnlineMilli-a.lastOnlineMilli) >= wakeBurstShare*float64(capacityMilli) {
		a.lastOnlineMilli = cpu.OnlineMilli
		return false
	}
	a.metrics.wakesDismissed.Inc()
	a.log.Debug("ebpf wake-up dismissed: online use did not jump", "cause", cause,
		"onlineMilli", cpu.OnlineMilli, "lastOnlineMilli", a.lastOnlineMilli)
	return true
}
