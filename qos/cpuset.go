package qos

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// CpusetMode is how a workload holds its CPUs (Hippo's modes).
type CpusetMode string

const (
	// CpusetShared runs on the shared pool: every CPU no exclusive or
	// reserved workload holds. The default.
	CpusetShared CpusetMode = "shared"
	// CpusetReserved gets whole CPUs no other online or system work runs
	// on; offline work may still borrow them (it yields by CFS weight).
	CpusetReserved CpusetMode = "reserved"
	// CpusetExclusive gets whole CPUs nothing else runs on.
	CpusetExclusive CpusetMode = "exclusive"
)

// minSharedCPUs is how many CPUs always stay in the shared pool, so that
// system work (and the agent) always has somewhere to run.
const minSharedCPUs = 1

// ParseCpuset reads the sluice.io/cpuset label: "shared", or
// "exclusive:N" / "reserved:N" with N whole CPUs.
func ParseCpuset(label string) (CpusetMode, int, error) {
	mode, count, hasCount := strings.Cut(strings.TrimSpace(label), ":")
	switch m := CpusetMode(mode); m {
	case CpusetShared, "":
		if hasCount {
			return "", 0, fmt.Errorf("cpuset %q: shared takes no CPU count", label)
		}
		return CpusetShared, 0, nil
	case CpusetExclusive, CpusetReserved:
		if !hasCount {
			return "", 0, fmt.Errorf("cpuset %q: want %s:N with N whole CPUs", label, m)
		}
		n, err := strconv.Atoi(count)
		if err != nil || n <= 0 || n > 4096 {
			return "", 0, fmt.Errorf("cpuset %q: CPU count %q is not a whole number from 1 to 4096", label, count)
		}
		return m, n, nil
	}
	return "", 0, fmt.Errorf("cpuset %q: unknown mode %q (want exclusive:N, reserved:N or shared)", label, mode)
}

// CpusetState remembers which CPUs each exclusive or reserved workload
// holds, so allocations stay put across decisions.
type CpusetState struct {
	// Active is set once any workload held dedicated CPUs. From then on
	// every decision lists cpusets (the pools widen back to the whole host
	// when the last holder leaves), because the kernel keeps whatever was
	// written last. A restarted agent starts inactive and does not undo
	// pinning a previous run left behind until a workload asks again.
	Active   bool                        `json:"active,omitempty"`
	Assigned map[string]CpusetAssignment `json:"assigned,omitempty"`
}

// CpusetAssignment is one workload's dedicated CPUs.
type CpusetAssignment struct {
	Mode CpusetMode `json:"mode"`
	CPUs []int      `json:"cpus"`
}

// decideCpusets allocates dedicated CPUs and derives the pools.
//
// Workloads that already hold a valid assignment keep it (no needless
// moves); the rest are served by priority (highest first), then oldest,
// then ID, each taking the lowest-numbered free CPUs. A request that
// would leave fewer than minSharedCPUs shared is refused and the workload
// stays shared, with a reason. Pools: shared = host - exclusive - reserved
// (online without a dedicated set, and system work); offline = host -
// exclusive (offline may borrow reserved CPUs).
func decideCpusets(obs Observation, pol Policy, prev CpusetState) ([]CpusetIntent, CpusetState) {
	host := slices.Clone(obs.Host.CPUs)
	slices.Sort(host)
	host = slices.Compact(host)
	var wants []*ContainerSample
	for i := range obs.Containers {
		w := &obs.Containers[i]
		if w.Class == ClassOnline && (w.CpusetMode == CpusetExclusive || w.CpusetMode == CpusetReserved) && w.CPUs > 0 {
			wants = append(wants, w)
		}
	}
	if len(host) == 0 {
		// No CPU list in this sample: leave the kernel and the allocation as they are.
		return nil, prev
	}
	if len(wants) == 0 && !prev.Active {
		return nil, CpusetState{}
	}
	onHost := make(map[int]bool, len(host))
	for _, c := range host {
		onHost[c] = true
	}
	taken := map[int]string{}
	next := CpusetState{Active: true, Assigned: map[string]CpusetAssignment{}}
	refused := map[string]string{}

	keeps := func(w *ContainerSample) bool {
		a, ok := prev.Assigned[w.ID]
		if !ok || a.Mode != w.CpusetMode || len(a.CPUs) != w.CPUs {
			return false
		}
		for _, c := range a.CPUs {
			if !onHost[c] || taken[c] != "" {
				return false
			}
		}
		return true
	}
	slices.SortFunc(wants, func(a, b *ContainerSample) int {
		if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
			return c
		}
		if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	// Two passes: existing holders first, so a newcomer never displaces them.
	for _, w := range wants {
		if keeps(w) {
			a := prev.Assigned[w.ID]
			for _, c := range a.CPUs {
				taken[c] = w.ID
			}
			next.Assigned[w.ID] = CpusetAssignment{Mode: a.Mode, CPUs: slices.Clone(a.CPUs)}
		}
	}
	for _, w := range wants {
		if _, done := next.Assigned[w.ID]; done {
			continue
		}
		var free []int
		for _, c := range host {
			if taken[c] == "" {
				free = append(free, c)
			}
		}
		if len(free)-w.CPUs < minSharedCPUs {
			refused[w.ID] = fmt.Sprintf("wants %d %s CPUs but only %d of %d are free and %d must stay shared: runs shared",
				w.CPUs, w.CpusetMode, len(free), len(host), minSharedCPUs)
			continue
		}
		cpus := free[:w.CPUs]
		for _, c := range cpus {
			taken[c] = w.ID
		}
		next.Assigned[w.ID] = CpusetAssignment{Mode: w.CpusetMode, CPUs: slices.Clone(cpus)}
	}

	var shared, offline, exclusive []int
	for _, c := range host {
		id := taken[c]
		switch {
		case id == "":
			shared = append(shared, c)
			offline = append(offline, c)
		case next.Assigned[id].Mode == CpusetReserved:
			offline = append(offline, c)
		default:
			exclusive = append(exclusive, c)
		}
	}
	intents := []CpusetIntent{{
		CgroupPath: pol.OfflineParent,
		Mode:       CpusetShared,
		CPUs:       offline,
		Reason: fmt.Sprintf("offline pool %s: host CPUs %s less exclusive %s (reserved CPUs are lent to offline)",
			formatCPUList(offline), formatCPUList(host), formatCPUList(exclusive)),
	}}
	for i := range obs.Containers {
		w := &obs.Containers[i]
		if w.CgroupPath == "" {
			continue
		}
		in := CpusetIntent{CgroupPath: w.CgroupPath, Mode: CpusetShared}
		switch a, ok := next.Assigned[w.ID]; {
		case ok:
			in.CPUs, in.Mode = slices.Clone(a.CPUs), a.Mode
			in.Reason = fmt.Sprintf("%s cpuset %s for %s (%d CPUs, priority %d)", a.Mode, formatCPUList(a.CPUs), w.Name, w.CPUs, w.Priority)
			if old, had := prev.Assigned[w.ID]; had && !slices.Equal(old.CPUs, a.CPUs) {
				in.Reason += fmt.Sprintf("; moved from %s", formatCPUList(old.CPUs))
			}
		case w.Class == ClassOffline:
			in.CPUs = slices.Clone(offline)
			in.Reason = fmt.Sprintf("offline pool %s for %s", formatCPUList(offline), w.Name)
		default:
			in.CPUs = slices.Clone(shared)
			in.Reason = fmt.Sprintf("shared pool %s for %s %s", formatCPUList(shared), w.Class, w.Name)
			if r := refused[w.ID]; r != "" {
				in.Reason += "; " + r
			}
		}
		intents = append(intents, in)
	}
	// Listed parents first (paths sort a parent before its children). An
	// enforcer widens parents before children and narrows children before
	// parents: cgroup v1 rejects a parent cpuset that excludes CPUs a child
	// still uses.
	slices.SortStableFunc(intents[1:], func(a, b CpusetIntent) int { return cmp.Compare(a.CgroupPath, b.CgroupPath) })
	return intents, next
}

// FormatCPUList prints sorted, de-duplicated CPUs in the kernel's cpulist
// format ("0-3,6"), ranges collapsed; no CPUs is "". The cgroup enforcer
// writes cpuset.cpus with it.
func FormatCPUList(cpus []int) string {
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpus[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return b.String()
}

// formatCPUList is FormatCPUList for reasons, where no CPUs reads "(none)".
func formatCPUList(cpus []int) string {
	if len(cpus) == 0 {
		return "(none)"
	}
	return FormatCPUList(cpus)
}
