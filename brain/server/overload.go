package server

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Overload sets when the brain sheds agent work. The signal is the number
// of agent RPCs (heartbeats and acknowledgements) in progress at once: it
// grows when handlers wait for the brain's lock or for CPU, i.e. when the
// brain falls behind its fleet. Work is shed in a fixed order:
//
//  1. heartbeat detail (usage, lending, interference signals, containers):
//     a heartbeat still proves liveness and carries the applied version;
//  2. liveness: heartbeats are answered without being recorded, and while
//     that lasts no host is marked down (a heartbeat the brain dropped is
//     no evidence a host is gone): every host counts as heard from when
//     the last heartbeat was shed.
//
// Placement is never shed: submissions, acknowledgements, target streams
// and every committed placement go on, so no acknowledged placement is
// dropped. Shed work is counted in sluice_brain_shed_total and the level
// is sluice_brain_overload_level.
type Overload struct {
	// DetailInFlight: above this many agent RPCs in progress, heartbeat
	// detail is shed. Default 256.
	DetailInFlight int
	// LivenessInFlight: above this many, heartbeats are shed whole.
	// Default 1024.
	LivenessInFlight int
}

// DefaultOverload is the production setting.
func DefaultOverload() Overload { return Overload{DetailInFlight: 256, LivenessInFlight: 1024} }

// shedLevel is how much agent work is being shed, in order.
type shedLevel int

const (
	shedNothing shedLevel = iota
	shedDetail
	shedLiveness
)

// shedder tracks agent RPCs in progress and decides what to shed. Safe
// for concurrent use; it takes no brain lock, so shedding costs nothing
// the overloaded lock would have to give.
type shedder struct {
	cfg      Overload
	inFlight atomic.Int64
	// livenessShedAt is when the last heartbeat was shed whole (unix ns).
	livenessShedAt atomic.Int64
	// intervalNs is the last heartbeat interval handed out, for shed
	// heartbeats' answers.
	intervalNs atomic.Int64
	shed       *prometheus.CounterVec
	level      prometheus.Gauge
}

func newShedder(reg prometheus.Registerer, cfg Overload) *shedder {
	if cfg == (Overload{}) {
		cfg = DefaultOverload()
	}
	s := &shedder{
		cfg: cfg,
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_brain_shed_total",
			Help: "Agent work shed under overload, in the order it is shed: heartbeat_detail (heartbeat kept for liveness, detail dropped), liveness (heartbeat dropped whole; no host marked down meanwhile). Placement is never shed.",
		}, []string{"work"}),
		level: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_brain_overload_level",
			Help: "What the brain sheds now: 0 nothing, 1 heartbeat detail, 2 heartbeat detail and liveness.",
		}),
	}
	s.intervalNs.Store(int64(10 * time.Second))
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sluice_brain_agent_rpcs_in_flight",
		Help: "Agent heartbeats and acknowledgements in progress: the overload signal.",
	}, func() float64 { return float64(s.inFlight.Load()) })
	reg.MustRegister(s.shed, s.level, inFlight)
	s.shed.WithLabelValues("heartbeat_detail")
	s.shed.WithLabelValues("liveness")
	return s
}

// enter counts an agent RPC in and says what it must shed; call done
// when it ends.
func (s *shedder) enter() (shedLevel, func()) {
	n := s.inFlight.Add(1)
	lvl := shedNothing
	switch {
	case n > int64(s.cfg.LivenessInFlight):
		lvl = shedLiveness
	case n > int64(s.cfg.DetailInFlight):
		lvl = shedDetail
	}
	s.level.Set(float64(lvl))
	return lvl, func() { s.inFlight.Add(-1) }
}

// shedLiveness counts a heartbeat dropped whole at now.
func (s *shedder) shedLiveness(now time.Time) {
	s.livenessShedAt.Store(now.UnixNano())
	s.shed.WithLabelValues("liveness").Inc()
}

func (s *shedder) shedDetail() { s.shed.WithLabelValues("heartbeat_detail").Inc() }

// heardBy is the later of a host's last heartbeat and the last shed one:
// the time liveness counts the host as heard from.
func (s *shedder) heardBy(lastSeen time.Time) time.Time {
	if ns := s.livenessShedAt.Load(); ns > 0 {
		if t := time.Unix(0, ns); t.After(lastSeen) {
			return t
		}
	}
	return lastSeen
}

func (s *shedder) setInterval(d time.Duration) { s.intervalNs.Store(int64(d)) }
func (s *shedder) interval() time.Duration     { return time.Duration(s.intervalNs.Load()) }

// Check refuses thresholds that would shed liveness before detail.
func (o Overload) Check() error {
	if o.DetailInFlight <= 0 || o.LivenessInFlight < o.DetailInFlight {
		return fmt.Errorf("overload: detail threshold %d, liveness threshold %d: want 0 < detail <= liveness (detail is shed first)", o.DetailInFlight, o.LivenessInFlight)
	}
	return nil
}
