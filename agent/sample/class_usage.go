package sample

import "github.com/sluicehq/sluice/qos"

// AggregateClasses sums workloads per class and counts host use that no
// workload accounts for as system, as qos.Observation documents: a kernel
// thread or an unclassed daemon then protects online work instead of
// looking like idle capacity to lend.
//
// Workloads must be disjoint cgroups (none inside another), as discovery
// yields them; a nested pair would be counted twice. Host memory in use is
// MemTotal - MemAvailable. Every class is present in the result, with zero
// usage when it has no workload. Unknown classes are counted as system.
func AggregateClasses(host qos.HostSample, workloads []qos.ContainerSample) map[qos.Class]qos.ClassUsage {
	out := make(map[qos.Class]qos.ClassUsage, len(qos.Classes))
	for _, c := range qos.Classes {
		out[c] = qos.ClassUsage{}
	}
	var cpuMilli int64
	var memBytes uint64
	for _, w := range workloads {
		c := w.Class
		if _, known := out[c]; !known {
			c = qos.ClassSystem
		}
		u := out[c]
		u.CPUUsedMilli += w.CPUUsedMilli
		u.MemoryUsageBytes += w.MemoryUsageBytes
		u.Count++
		out[c] = u
		cpuMilli += w.CPUUsedMilli
		memBytes += w.MemoryUsageBytes
	}
	sys := out[qos.ClassSystem]
	// Workload rates and the host rate cover slightly different windows, so
	// workloads can sum above the host; unaccounted use is then zero, never
	// negative.
	if rest := host.CPUUsedMilli - cpuMilli; rest > 0 {
		sys.CPUUsedMilli += rest
	}
	var hostMem uint64
	if host.MemTotalBytes > host.MemAvailableBytes {
		hostMem = host.MemTotalBytes - host.MemAvailableBytes
	}
	if hostMem > memBytes {
		sys.MemoryUsageBytes += hostMem - memBytes
	}
	out[qos.ClassSystem] = sys
	return out
}
