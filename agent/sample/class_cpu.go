package sample

import (
	"time"

	"github.com/sluicehq/sluice/qos"
)

// ClassCPU is each class's CPU over one fast tick, in milli-CPUs, from
// exact cumulative counters read back to back (the root cgroup's, the
// offline parent's, each online and system workload's), so that
// Online + Offline + System + Unclassed = HostBusy. Before it, "system" was
// host /proc/stat (sampled at the scheduler tick) minus online's 1-second
// average minus offline's fast counter: three windows, and a residual that
// swung by up to 1.5 cores on a host whose real other use was 0.1.
type ClassCPU struct {
	// HostBusyMilli is the root cgroup's CPU time (v1 cpuacct.usage, v2
	// cpu.stat usage_usec): every task's, kernel threads included.
	HostBusyMilli int64
	OnlineMilli   int64
	// OfflineMilli is the offline parent's counter, or the offline
	// workloads' sum where there is no parent to read.
	OfflineMilli int64
	// SystemMilli is the classed system workloads.
	SystemMilli int64
	// UnclassedMilli is host busy time no class accounts for: kernel
	// threads, interrupts charged to tasks, daemons no rule classes.
	// Counted as system by the decision core (unknown load is protected).
	UnclassedMilli int64
	// SkewMilli is how far the classes add up above the host (the reads'
	// own spread: microseconds); Unclassed is zero then. Shown, so a
	// double-counted cgroup would be visible.
	SkewMilli int64
}

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

// ClassCPUMeter turns the fast tick's cumulative counters into ClassCPU.
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

// Observe records one fast tick read at at: the root counter (hostBusy >=
// 0, or the host's busy rate from elsewhere when it is negative: a kernel
// without the root counter), the offline parent's (offlineOK false: not
// readable, use the offline workloads) and every workload's. ok is false
// until the root counter has a rate.
func (c *ClassCPUMeter) Observe(at time.Time, host HostBusy, offline time.Duration, offlineOK bool, ws []WorkloadCPU) (out ClassCPU, ok bool) {
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
		return ClassCPU{}, false
	}
	rest := out.HostBusyMilli - out.OnlineMilli - out.OfflineMilli - out.SystemMilli
	if rest >= 0 {
		out.UnclassedMilli = rest
	} else {
		out.SkewMilli = -rest
	}
	return out, true
}
