package target

import (
	"github.com/sluicehq/sluice/agent/brainlink"
	"github.com/sluicehq/sluice/agent/capability"
)

// Registration is what the agent tells the brain about its host: capacity
// ("cpu" in milli-CPUs, "memory" in bytes, plus extended resources in
// their own units), labels, failure domain, the cgroup mode and the
// capabilities probed at start, named as the brain lists them.
func Registration(caps capability.Capabilities, cpuMilli, memoryBytes int64, extended map[string]int64,
	labels map[string]string, failureDomain string) brainlink.Registration {
	capacity := map[string]int64{"cpu": cpuMilli, "memory": memoryBytes}
	for k, v := range extended {
		if k != "cpu" && k != "memory" {
			capacity[k] = v
		}
	}
	r := brainlink.Registration{Capacity: capacity, Labels: labels, FailureDomain: failureDomain}
	if caps.CgroupErr == "" {
		r.CgroupMode = caps.Cgroup.Mode().String()
	}
	for _, c := range caps.Controllers {
		r.Capabilities = append(r.Capabilities, "cgroup-"+string(c))
	}
	add := func(ok bool, name string) {
		if ok {
			r.Capabilities = append(r.Capabilities, name)
		}
	}
	add(caps.PSI, "psi")
	add(caps.BPFUsable, "ebpf-runq")
	add(caps.Resctrl.Supported, "resctrl")
	add(caps.TC.Probed, "tc")
	return r
}
