package server

import "time"

// Liveness sets how long a silent host stays up (Nomad's rule): its TTL is
// the larger of MinTTL and hosts / HeartbeatsPerSecond seconds, plus Grace.
// Agents are asked to heartbeat every TTL/IntervalDivisor (before grace).
type Liveness struct {
	MinTTL              time.Duration
	HeartbeatsPerSecond float64
	Grace               time.Duration
	// FixedInterval, when set, is handed out instead (a stress setting for
	// benchmarks); the TTL still follows the rule above.
	FixedInterval time.Duration
}

// DefaultLiveness is the production setting.
func DefaultLiveness() Liveness {
	return Liveness{MinTTL: 10 * time.Second, HeartbeatsPerSecond: 50, Grace: 10 * time.Second}
}

const intervalDivisor = 3

func (l Liveness) base(hosts int) time.Duration {
	ttl := l.MinTTL
	if l.HeartbeatsPerSecond > 0 {
		if d := time.Duration(float64(hosts) / l.HeartbeatsPerSecond * float64(time.Second)); d > ttl {
			ttl = d
		}
	}
	return ttl
}

// TTL is how long a host of a fleet of this size may stay silent.
func (l Liveness) TTL(hosts int) time.Duration { return l.base(hosts) + l.Grace }

// Interval is the heartbeat interval handed to agents.
func (l Liveness) Interval(hosts int) time.Duration {
	if l.FixedInterval > 0 {
		return l.FixedInterval
	}
	return l.base(hosts) / intervalDivisor
}
