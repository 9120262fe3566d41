package sample

import (
	"time"

	"github.com/sluicehq/sluice/qos"
)

// HostBusy is the host's busy time at the fast tick: the root cgroup's
// cumulative counter when Exact, else a rate from /proc/stat (sampled at the
// scheduler tick; the fallback for kernels without a root counter).
type HostBusy struct {
	Exact bool
	Total time.Duration
	Milli int64
}

// WorkloadCPU is one workload's cumulative CPU counter at the fast tick.
type WorkloadCPU struct {
	CgroupPath string
	Class      qos.Class
	Total      time.Duration
}

// ClassCPUMeter turns the fast tick's cumulative counters into qos.CPUAccounting.
// Each counter's rate is over its own previous reading, so a workload that
// appears is counted from its second tick and one that goes is simply
// absent: no class jumps by a workload's lifetime total. Pure (time comes in
// as arguments); not safe for concurrent use.
type ClassCPUMeter struct {
	m *CPUMeter
	// last is the previous result and lastAt when its counters were read.
	last   qos.CPUAccounting
	lastOK bool
	lastAt time.Time
}

// MinClassWindow is the shortest window ClassCPUMeter measures over. The
// kernel brings a running task's CPU time into cpuacct only at a scheduler
// tick or a switch (every 1-10 ms with HZ 100-1000), so over a window of a
// few milliseconds one cgroup's counter may hold a tick more or less than
// another's: rates over such a window are off by whole CPUs. The agent's
// 100 ms and 1 s tickers fire within a millisecond of each other once a
// second; a read that close to the previous one returns the previous
// result instead (measured on a 2-CPU VM: "system" spiking to 1.1-1.6
// cores at every container tick, each spike cutting offline).
const MinClassWindow = 20 * time.Millisecond

// NewClassCPUMeter returns an empty meter.
func NewClassCPUMeter() *ClassCPUMeter { return &ClassCPUMeter{m: NewCPUMeter()} }

// hostKey and offlineKey cannot clash with cgroup paths, which start with /.
const (
	hostKey    = "host"
	offlineKey = "offline-parent"
)

// Observe records one fast tick read at at: the host's busy time (see
// HostBusy), the offline parent's counter (offlineOK false: not readable,
// the offline workloads are used) and every workload's. ok is false until
// the host has a rate.
func (c *ClassCPUMeter) Observe(at time.Time, host HostBusy, offline time.Duration, offlineOK bool, ws []WorkloadCPU) (out qos.CPUAccounting, ok bool) {
	if !c.lastAt.IsZero() && at.Sub(c.lastAt) < MinClassWindow && !at.Before(c.lastAt) {
		return c.last, c.lastOK
	}
	defer func() { c.last, c.lastOK, c.lastAt = out, ok, at }()
	if host.Exact {
		out.HostBusyMilli, ok = c.m.Observe(hostKey, host.Total, at)
	} else {
		c.m.Forget(hostKey)
		out.HostBusyMilli, ok = host.Milli, true
	}
	if offlineOK {
		out.OfflineMilli, _ = c.m.Observe(offlineKey, offline, at)
	} else {
		c.m.Forget(offlineKey)
	}
	for _, w := range ws {
		milli, _ := c.m.Observe(w.CgroupPath, w.Total, at)
		switch w.Class {
		case qos.ClassOnline:
			out.OnlineMilli += milli
		case qos.ClassOffline:
			if !offlineOK {
				out.OfflineMilli += milli
			}
		default:
			out.SystemMilli += milli
		}
	}
	c.m.Prune(at)
	if !ok {
		return qos.CPUAccounting{}, false
	}
	rest := out.HostBusyMilli - out.OnlineMilli - out.OfflineMilli - out.SystemMilli
	if rest >= 0 {
		out.UnclassedMilli = rest
	} else {
		out.SkewMilli = -rest
	}
	return out, true
}
