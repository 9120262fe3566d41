package cgroup

import (
	"path"

	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
)

// ReadCpusets reads cpuset.cpus of each cgroup path in fsys (the v1 cpuset
// hierarchy, or the v2 unified one), for a restarted agent to adopt the
// dedicated CPUs workloads already hold (qos.AdoptCpusets). Cgroups that
// cannot be read or hold an empty or unparsable list are left out: there
// is nothing to adopt from them.
func ReadCpusets(fsys FS, paths []string) map[string][]int {
	out := make(map[string][]int, len(paths))
	for _, p := range paths {
		data, err := fsys.ReadFile(path.Join(path.Clean("/"+p), "cpuset.cpus"))
		if err != nil {
			continue
		}
		if cpus, err := cgroupfs.ParseCPUList(data); err == nil && len(cpus) > 0 {
			out[p] = cpus
		}
	}
	return out
}
