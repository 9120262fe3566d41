package ebpf

import "time"

// HistSlots is the number of log2 buckets in a run-queue histogram. Slot i
// counts delays d (in nanoseconds) with floor(log2(d)) == i, slot 0 also
// counts d == 0, and the last slot counts everything from 2^(HistSlots-1) ns
// (about 2.1 s) up. It must match HIST_SLOTS in bpf/runq.c.
const HistSlots = 32

// CgroupStats is what the scheduler programs counted for one cgroup.
// Sampler.Read returns it per window (what accumulated since the previous
// Read); Add sums windows or cgroups into longer or wider totals.
type CgroupStats struct {
	// RunqHist counts run-queue waits by log2 of their length in ns.
	RunqHist [HistSlots]uint64
	// RunqDelayTotal is the sum of all waits counted in RunqHist.
	RunqDelayTotal time.Duration
	// OnCPU is the time the cgroup's tasks spent running.
	OnCPU time.Duration
	// Preemptions counts switches out while still runnable (preempted by
	// another task or throttled by CFS bandwidth control).
	Preemptions uint64
}

// RunqCount is the number of run-queue waits counted.
func (c CgroupStats) RunqCount() uint64 {
	var n uint64
	for _, v := range c.RunqHist {
		n += v
	}
	return n
}

// Add adds o into c.
func (c *CgroupStats) Add(o CgroupStats) {
	for i, v := range o.RunqHist {
		c.RunqHist[i] += v
	}
	c.RunqDelayTotal += o.RunqDelayTotal
	c.OnCPU += o.OnCPU
	c.Preemptions += o.Preemptions
}

// since returns what cur accumulated after prev, both cumulative. The
// counters only grow, so a counter below its previous value means the
// entry was deleted and recreated in between: then all of cur is new.
func since(cur, prev CgroupStats) CgroupStats {
	if !grewFrom(cur, prev) {
		return cur
	}
	d := cur
	for i, v := range prev.RunqHist {
		d.RunqHist[i] -= v
	}
	d.RunqDelayTotal -= prev.RunqDelayTotal
	d.OnCPU -= prev.OnCPU
	d.Preemptions -= prev.Preemptions
	return d
}

func grewFrom(cur, prev CgroupStats) bool {
	for i, v := range prev.RunqHist {
		if cur.RunqHist[i] < v {
			return false
		}
	}
	return cur.RunqDelayTotal >= prev.RunqDelayTotal &&
		cur.OnCPU >= prev.OnCPU &&
		cur.Preemptions >= prev.Preemptions
}
