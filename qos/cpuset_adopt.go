package qos

import "slices"

// AdoptCpusets folds the dedicated CPUs the kernel already gives workloads
// (current: cgroup path -> cpuset.cpus as read) into the cpuset state, so
// that an agent restarted while online workloads hold exclusive or reserved
// CPUs keeps them where they are instead of moving them to the
// lowest-numbered free ones. A workload is adopted when it is online, asks
// for exclusive or reserved CPUs, holds no assignment yet, and its cpuset
// has exactly the number of CPUs it asks for, all on the host and none
// already assigned; anything else is left to decideCpusets as usual.
// Adopting any makes the state active (pinning is in force). Pure.
func AdoptCpusets(prev CpusetState, obs Observation, current map[string][]int) CpusetState {
	if len(current) == 0 {
		return prev
	}
	onHost := make(map[int]bool, len(obs.Host.CPUs))
	for _, c := range obs.Host.CPUs {
		onHost[c] = true
	}
	taken := map[int]bool{}
	for _, a := range prev.Assigned {
		for _, c := range a.CPUs {
			taken[c] = true
		}
	}
	next, copied := prev, false
	for _, w := range obs.Workloads {
		cpus, ok := current[w.CgroupPath]
		if !ok || w.Class != ClassOnline || (w.CpusetMode != CpusetExclusive && w.CpusetMode != CpusetReserved) ||
			w.CPUsWanted <= 0 || len(cpus) != w.CPUsWanted {
			continue
		}
		if _, assigned := next.Assigned[w.ID]; assigned {
			continue
		}
		if slices.ContainsFunc(cpus, func(c int) bool { return !onHost[c] || taken[c] }) {
			continue
		}
		if !copied { // prev is the caller's: never written
			next.Assigned = make(map[string]CpusetAssignment, len(prev.Assigned)+1)
			for id, a := range prev.Assigned {
				next.Assigned[id] = a
			}
			copied = true
		}
		next.Assigned[w.ID] = CpusetAssignment{Mode: w.CpusetMode, CPUs: slices.Clone(cpus)}
		next.Active = true
		for _, c := range cpus {
			taken[c] = true
		}
	}
	return next
}
