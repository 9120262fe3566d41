package qos

import "time"

// Observation is an immutable picture of the host at one instant, built by
// the agent's samplers. Rates (CPU) are averaged over the sampler's last
// window; sizes (memory) are instantaneous.
type Observation struct {
	// Time is when the sample was taken. Decide uses it as its only clock.
	Time time.Time  `json:"time,omitzero"`
	Host HostSample `json:"host"`
	// Workloads holds every discovered workload: containers and classed
	// host cgroups alike.
	Workloads []WorkloadSample `json:"workloads,omitempty"`
	// CPU is the fast tick's exact class accounting, unclassed use named
	// apart (Classes counts it as system); nil before the second tick.
	CPU *CPUAccounting `json:"cpuAccounting,omitempty"`
	// Classes aggregates usage per class (see AggregateClasses), once, when
	// the observation is built; the decision core reads class usage only
	// from here. Host usage that belongs to no classed workload is counted
	// as system (conservative: it protects online work).
	Classes map[Class]ClassUsage `json:"classes,omitempty"`
	// Network is what the network tiers' controller reads: per shaped
	// device its rate and class byte counters, and the bronze ceilings
	// the kernel holds (adopted by a restarted agent); zero while the
	// policy names no devices.
	Network NetworkSignals `json:"network,omitzero"`
	// Results reports what the enforcers did with earlier plans: the
	// inline enforcers' results of the last pass, and whatever the
	// enforcers running in their own workers reported since the previous
	// observation (a slow enforcer's results arrive some decisions later).
	Results []IntentResult `json:"results,omitempty"`
	// Cache is resctrl's hardware and monitoring counters; nil on a host
	// without resctrl (see CacheSample).
	Cache *CacheSample `json:"cache,omitempty"`
}

// HostSample is host-wide load from procfs.
type HostSample struct {
	// CPUCapacityMilli is the number of online CPUs x 1000.
	CPUCapacityMilli int64 `json:"cpuCapacityMilli"`
	// CPUUsedMilli is busy CPU (everything but idle and iowait) over the
	// last host window, in milli-CPUs.
	CPUUsedMilli      int64  `json:"cpuUsedMilli"`
	MemTotalBytes     uint64 `json:"memTotalBytes"`
	MemAvailableBytes uint64 `json:"memAvailableBytes"`
	// PageCacheBytes is Cached + Buffers from /proc/meminfo.
	PageCacheBytes uint64 `json:"pageCacheBytes"`
	PSI            PSI    `json:"psi"`
	// CPUs lists the online CPU numbers (from /sys/devices/system/cpu/online),
	// the pool cpuset modes allocate from.
	CPUs []int `json:"cpus,omitempty"`
}

// PSI holds pressure stall averages (percent of wall time, 0-100).
type PSI struct {
	CPUSomeAvg10    float64 `json:"cpuSomeAvg10"`
	MemorySomeAvg10 float64 `json:"memorySomeAvg10"`
	MemoryFullAvg10 float64 `json:"memoryFullAvg10"`
	IOSomeAvg10     float64 `json:"ioSomeAvg10"`
	IOFullAvg10     float64 `json:"ioFullAvg10"`
	// Triggered is true when a PSI trigger woke the loop for this sample.
	Triggered bool `json:"triggered"`
}

// Class is the usage of class c; zero when the observation has none.
func (o Observation) Class(c Class) ClassUsage { return o.Classes[c] }

// WorkloadSample is one workload: a container or a classed host cgroup.
type WorkloadSample struct {
	// ID is the containerd ID for containers, the cgroup path for host cgroups.
	ID string `json:"id"`
	// Name is a human name (container name, pod/container, or cgroup path).
	Name string `json:"name"`
	// Namespace is the containerd namespace; empty for host cgroups.
	Namespace string `json:"namespace"`
	Class     Class  `json:"class"`
	Priority  int    `json:"priority"`
	// CgroupPath is relative to each hierarchy root, e.g. "/sluice/offline/x".
	CgroupPath string    `json:"cgroupPath"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	// CPUUsedMilli is the average CPU use over the last container window.
	CPUUsedMilli int64 `json:"cpuUsedMilli"`
	// CPUUsageTotal is the cgroup's cumulative CPU time.
	CPUUsageTotal time.Duration `json:"cpuUsageTotalNs"`
	// MemoryUsageBytes is the working set: usage minus inactive file pages,
	// which the kernel can drop at once (v1 total_inactive_file, v2
	// inactive_file), as kubelet computes it.
	MemoryUsageBytes uint64 `json:"memoryUsageBytes"`
	// MemoryLimitBytes is the cgroup's hard limit (0 = unlimited).
	MemoryLimitBytes uint64 `json:"memoryLimitBytes"`
	// RunqLatency is present when eBPF sampling is on.
	RunqLatency *LatencySummary `json:"runqLatency,omitempty"`
	// OnCPUMilli is the eBPF-measured on-CPU rate over the container window
	// (0 without eBPF): the scheduler's own view, switch by switch.
	OnCPUMilli int64 `json:"onCPUMilli"`
	// CpusetMode is the workload's cpuset mode (label sluice.io/cpuset,
	// see ParseCpuset); empty means shared. Honoured for online work only.
	CpusetMode CpusetMode `json:"cpusetMode"`
	// CPUsWanted is how many whole CPUs an exclusive or reserved workload
	// asks for (the count in its cpuset label).
	CPUsWanted int `json:"cpusWanted"`
}

// CPUAccounting is each class's CPU over one fast tick, in milli-CPUs,
// from exact cumulative counters read back to back (the root cgroup's, the
// offline parent's, each online and system workload's), so that
// Online + Offline + System + Unclassed = HostBusy. Before it, "system"
// was host /proc/stat (sampled at the scheduler tick) minus online's
// 1-second average minus offline's fast counter: three windows, and a
// residual that swung by up to 1.5 cores on a host whose real other use
// was 0.1.
type CPUAccounting struct {
	// HostBusyMilli is the root cgroup's CPU time (v1 cpuacct.usage, v2
	// cpu.stat usage_usec): every task's, kernel threads included; from
	// /proc/stat only on a kernel without the root counter.
	HostBusyMilli int64 `json:"hostBusyMilli"`
	OnlineMilli   int64 `json:"onlineMilli"`
	// OfflineMilli is the offline parent's counter, or the offline
	// workloads' sum where there is no parent to read.
	OfflineMilli int64 `json:"offlineMilli"`
	// SystemMilli is the classed system workloads.
	SystemMilli int64 `json:"systemMilli"`
	// UnclassedMilli is host busy time no class accounts for: kernel
	// threads, daemons no rule classes. Counted as system by the decision
	// core (unknown load is protected).
	UnclassedMilli int64 `json:"unclassedMilli"`
	// SkewMilli is how far the classes add up above the host (the reads'
	// own spread: microseconds); Unclassed is zero then. Shown, so a
	// double-counted cgroup would be visible.
	SkewMilli int64 `json:"skewMilli"`
}

// ClassUsage sums a class's workloads.
type ClassUsage struct {
	CPUUsedMilli     int64           `json:"cpuUsedMilli"`
	MemoryUsageBytes uint64          `json:"memoryUsageBytes"`
	Count            int             `json:"count"`
	RunqLatency      *LatencySummary `json:"runqLatency,omitempty"`
}

// LatencySummary is a distribution summary over the last window.
type LatencySummary struct {
	P50   time.Duration `json:"p50Ns"`
	P99   time.Duration `json:"p99Ns"`
	Count uint64        `json:"count"`
}

// AggregateClasses sums workloads per class (memory, counts, and CPU from
// their container-tick averages) and counts host use that no workload
// accounts for as system (unknown load is protected like system load).
// cpu, when set, is the fast tick's exact accounting: each class's CPU then
// comes from it, over one window, with the unclassed rest of the host's
// busy time counted as system. Without it the classes' averages and the
// host's rate cover different windows, so workloads can sum above the
// host; unaccounted use is then zero, never negative. Workloads of an
// unknown class count as system.
func AggregateClasses(host HostSample, workloads []WorkloadSample, cpu *CPUAccounting) map[Class]ClassUsage {
	out := make(map[Class]ClassUsage, len(Classes))
	for _, c := range Classes {
		out[c] = ClassUsage{}
	}
	var memBytes uint64
	for _, w := range workloads {
		c := w.Class
		if _, known := out[c]; !known {
			c = ClassSystem
		}
		u := out[c]
		u.CPUUsedMilli += w.CPUUsedMilli
		u.MemoryUsageBytes += w.MemoryUsageBytes
		u.Count++
		out[c] = u
		memBytes += w.MemoryUsageBytes
	}
	sys := out[ClassSystem]
	if cpu != nil {
		on, off := out[ClassOnline], out[ClassOffline]
		on.CPUUsedMilli, off.CPUUsedMilli = cpu.OnlineMilli, cpu.OfflineMilli
		out[ClassOnline], out[ClassOffline] = on, off
		sys.CPUUsedMilli = cpu.SystemMilli + cpu.UnclassedMilli
	} else {
		accounted := sys.CPUUsedMilli + out[ClassOnline].CPUUsedMilli + out[ClassOffline].CPUUsedMilli
		if rest := host.CPUUsedMilli - accounted; rest > 0 {
			sys.CPUUsedMilli += rest
		}
	}
	var hostMem uint64
	if host.MemTotalBytes > host.MemAvailableBytes {
		hostMem = host.MemTotalBytes - host.MemAvailableBytes
	}
	if hostMem > memBytes {
		sys.MemoryUsageBytes += hostMem - memBytes
	}
	out[ClassSystem] = sys
	return out
}
