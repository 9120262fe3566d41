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
}

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
