package main

import (
	"math"
	"slices"
	"time"
)

// loadResult is what one load generator run measured over its window; the
// load generator prints it as JSON for the driver.
type loadResult struct {
	Service        string        `json:"service"`
	OfferedPerSec  float64       `json:"offeredPerSec"`
	AchievedPerSec float64       `json:"achievedPerSec"` // answered without error / window
	Requests       int           `json:"requests"`       // scheduled in the window
	Errors         int           `json:"errors"`
	FirstError     string        `json:"firstError,omitempty"`
	P50            time.Duration `json:"p50Ns"`
	P99            time.Duration `json:"p99Ns"`
	P999           time.Duration `json:"p999Ns"`
	LagP99         time.Duration `json:"lagP99Ns"` // dispatcher lateness
	LagMax         time.Duration `json:"lagMaxNs"`
	WindowSeconds  float64       `json:"windowSeconds"`
}

// summarize turns outcomes into a loadResult. Failed requests count in the
// latency percentiles with the latency they had when they failed: dropping
// them would flatter a service that times out.
func summarize(service string, rate float64, window time.Duration, outs []outcome) loadResult {
	r := loadResult{Service: service, OfferedPerSec: rate, Requests: len(outs), WindowSeconds: window.Seconds()}
	lat := make([]time.Duration, 0, len(outs))
	lag := make([]time.Duration, 0, len(outs))
	ok := 0
	for _, o := range outs {
		lat = append(lat, o.latency)
		lag = append(lag, o.lag)
		if o.err != nil {
			if r.Errors == 0 {
				r.FirstError = o.err.Error()
			}
			r.Errors++
			continue
		}
		ok++
	}
	slices.Sort(lat)
	slices.Sort(lag)
	r.P50, r.P99, r.P999 = rankPercentile(lat, 50), rankPercentile(lat, 99), rankPercentile(lat, 99.9)
	r.LagP99 = rankPercentile(lag, 99)
	if len(lag) > 0 {
		r.LagMax = lag[len(lag)-1]
	}
	if window > 0 {
		r.AchievedPerSec = float64(ok) / window.Seconds()
	}
	return r
}

// rankPercentile is the nearest-rank p-th percentile of sorted: the
// smallest value with at least p% of the values at or below it; 0 for none.
func rankPercentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// The epsilon keeps 99.9% of 1000 from rounding up to rank 1000.
	k := int(math.Ceil(p/100*float64(len(sorted)) - 1e-9))
	return sorted[min(max(k, 1), len(sorted))-1]
}

// quartiles returns the 25th, 50th and 75th percentiles of xs, linearly
// interpolated between order statistics (xs is not modified). With one
// value all three are that value; with none, NaN.
func quartiles(xs []float64) (q1, med, q3 float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	q := func(p float64) float64 {
		h := p * float64(len(s)-1)
		lo := int(math.Floor(h))
		if lo+1 >= len(s) {
			return s[lo]
		}
		return s[lo] + (h-float64(lo))*(s[lo+1]-s[lo])
	}
	return q(0.25), q(0.5), q(0.75)
}

// starved tells whether a load generator run must be discarded: its
// dispatcher handed requests out late (its own CPU was taken), so the
// offered load was not what the schedule said.
func starved(r loadResult, maxLagP99 time.Duration) bool {
	return r.LagP99 > maxLagP99
}

// cpuWindow is the CPU seconds each part of the host used over one
// window, from cgroup counters (v1 cpuacct.usage; host busy from the
// root's), and the capacity (CPUs x window seconds).
type cpuWindow struct {
	capacity, host           float64
	online, loadgen, offline float64
	spinner                  float64 // the idle-spinner condition's busy loop
}

// system is host busy time outside the benchmark's cgroups: daemons, the
// agent, other users of the machine. Never negative (counters are read a
// few microseconds apart).
func (w cpuWindow) system() float64 {
	return max(0, w.host-w.online-w.loadgen-w.offline-w.spinner)
}

// idleLeft is what online, system and the load generator left: the CPU
// offline work could have had.
func (w cpuWindow) idleLeft() float64 {
	return w.capacity - w.online - w.system() - w.loadgen
}

// offlineShare = offline CPU / (capacity - online - system - load
// generator). The spinner's time counts as idle: it only fills what
// everything else leaves. NaN when nothing was left.
func (w cpuWindow) offlineShare() float64 {
	left := w.idleLeft()
	if left <= 0 {
		return math.NaN()
	}
	return w.offline / left
}
