package resctrl

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// TaskLister lists the thread ids in one cgroup. Contract: a cgroup that
// no longer exists is an error wrapping fs.ErrNotExist (the enforcer
// then skips it); safe for one goroutine at a time.
type TaskLister interface {
	Threads(cgroupPath string) ([]int, error)
}

// CgroupTasks lists threads from a cgroup hierarchy: Root is its mount
// (e.g. /sys/fs/cgroup/cpu) and File the thread list, "tasks" on v1 or
// "cgroup.threads" on v2. resctrl groups hold threads, not processes, so
// cgroup.procs would miss every thread but the leader.
type CgroupTasks struct {
	Root string
	File string
}

// Threads implements TaskLister.
func (c CgroupTasks) Threads(cgroupPath string) ([]int, error) {
	b, err := readFile(path.Join(c.Root, cgroupPath, c.File))
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", cgroupPath, err)
	}
	return parseTids(string(b))
}

func parseTids(s string) ([]int, error) {
	var out []int
	for f := range strings.FieldsSeq(s) {
		v, err := strconv.Atoi(f)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("task id %q is not a positive integer", f)
		}
		out = append(out, v)
	}
	return out, nil
}
