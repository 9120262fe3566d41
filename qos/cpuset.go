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
	wants := dedicatedWants(obs.Workloads)
	if len(host) == 0 {
		// No CPU list in this sample: leave the kernel and the allocation as they are.
		return nil, prev
	}
	if len(wants) == 0 && !prev.Active {
		return nil, CpusetState{}
	}
	a := allocateCpusets(host, wants, prev)
	pools := a.pools(host)
	return cpusetIntents(obs.Workloads, pol.OfflineParent, host, pools, a, prev), a.next
}

// dedicatedWants lists the online workloads asking for dedicated CPUs,
// served first by priority (highest first), then oldest, then ID.
func dedicatedWants(ws []WorkloadSample) []*WorkloadSample {
	var wants []*WorkloadSample
	for i := range ws {
		w := &ws[i]
		if w.Class == ClassOnline && (w.CpusetMode == CpusetExclusive || w.CpusetMode == CpusetReserved) && w.CPUsWanted > 0 {
			wants = append(wants, w)
		}
	}
	slices.SortFunc(wants, func(a, b *WorkloadSample) int {
		if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
			return c
		}
		if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return wants
}

// cpusetAllocation is who holds which CPU after allocateCpusets.
type cpusetAllocation struct {
	next CpusetState
	// taken maps a CPU to the workload ID holding it.
	taken map[int]string
	// refused holds the free CPU count seen by each refused workload.
	refused map[string]int
}

// allocateCpusets gives each want its CPUs in two passes: existing holders
// keep a still-valid assignment first, so a newcomer never displaces
// them; then the rest take the lowest-numbered free CPUs, unless that
// would leave fewer than minSharedCPUs shared.
func allocateCpusets(host []int, wants []*WorkloadSample, prev CpusetState) cpusetAllocation {
	onHost := make(map[int]bool, len(host))
	for _, c := range host {
		onHost[c] = true
	}
	a := cpusetAllocation{
		next:    CpusetState{Active: true, Assigned: map[string]CpusetAssignment{}},
		taken:   map[int]string{},
		refused: map[string]int{},
	}
	keeps := func(w *WorkloadSample) bool {
		as, ok := prev.Assigned[w.ID]
		if !ok || as.Mode != w.CpusetMode || len(as.CPUs) != w.CPUsWanted {
			return false
		}
		for _, c := range as.CPUs {
			if !onHost[c] || a.taken[c] != "" {
				return false
			}
		}
		return true
	}
	for _, w := range wants {
		if keeps(w) {
			as := prev.Assigned[w.ID]
			for _, c := range as.CPUs {
				a.taken[c] = w.ID
			}
			a.next.Assigned[w.ID] = CpusetAssignment{Mode: as.Mode, CPUs: slices.Clone(as.CPUs)}
		}
	}
	for _, w := range wants {
		if _, done := a.next.Assigned[w.ID]; done {
			continue
		}
		var free []int
		for _, c := range host {
			if a.taken[c] == "" {
				free = append(free, c)
			}
		}
		if len(free)-w.CPUsWanted < minSharedCPUs {
			a.refused[w.ID] = len(free)
			continue
		}
		cpus := free[:w.CPUsWanted]
		for _, c := range cpus {
			a.taken[c] = w.ID
		}
		a.next.Assigned[w.ID] = CpusetAssignment{Mode: w.CpusetMode, CPUs: slices.Clone(cpus)}
	}
	return a
}

// cpusetPools are the host's CPUs by who may run on them.
type cpusetPools struct {
	// shared: online without a dedicated set, and system work.
	shared []int
	// offline: every CPU but exclusive ones (offline borrows reserved CPUs).
	offline   []int
	exclusive []int
}

func (a cpusetAllocation) pools(host []int) cpusetPools {
	var p cpusetPools
	for _, c := range host {
		id := a.taken[c]
		switch {
		case id == "":
			p.shared = append(p.shared, c)
			p.offline = append(p.offline, c)
		case a.next.Assigned[id].Mode == CpusetReserved:
			p.offline = append(p.offline, c)
		default:
			p.exclusive = append(p.exclusive, c)
		}
	}
	return p
}

// cpusetIntents lists the offline parent first and every classed workload
// after it, each with its pool or dedicated set.
func cpusetIntents(ws []WorkloadSample, offlineParent string, host []int, p cpusetPools, a cpusetAllocation, prev CpusetState) []CpusetIntent {
	intents := make([]CpusetIntent, 0, len(ws)+1)
	intents = append(intents, CpusetIntent{
		CgroupPath: offlineParent,
		Mode:       CpusetShared,
		CPUs:       p.offline,
		Reason:     Reason{Rule: RuleCpusetOfflinePool, Cpuset: CpusetFigures{CPUs: p.offline, Host: host, Exclusive: p.exclusive}},
	})
	// Listed parents first (paths sort a parent before its children). An
	// enforcer widens parents before children and narrows children before
	// parents: cgroup v1 rejects a parent cpuset that excludes CPUs a child
	// still uses. The workloads are sorted, not the intents, which are
	// large (their reasons carry figures).
	order := make([]*WorkloadSample, 0, len(ws))
	for i := range ws {
		if ws[i].CgroupPath != "" {
			order = append(order, &ws[i])
		}
	}
	slices.SortStableFunc(order, func(a, b *WorkloadSample) int { return cmp.Compare(a.CgroupPath, b.CgroupPath) })
	for _, w := range order {
		in := CpusetIntent{CgroupPath: w.CgroupPath, Mode: CpusetShared}
		fig := CpusetFigures{Workload: w.Name, Class: w.Class}
		switch as, ok := a.next.Assigned[w.ID]; {
		case ok:
			in.CPUs, in.Mode = slices.Clone(as.CPUs), as.Mode
			fig.Mode, fig.Wanted, fig.Priority = as.Mode, w.CPUsWanted, w.Priority
			if old, had := prev.Assigned[w.ID]; had && !slices.Equal(old.CPUs, as.CPUs) {
				fig.MovedFrom = old.CPUs
			}
			in.Reason = Reason{Rule: RuleCpusetDedicated}
		case w.Class == ClassOffline:
			in.CPUs = slices.Clone(p.offline)
			in.Reason = Reason{Rule: RuleCpusetOfflineMember}
		default:
			in.CPUs = slices.Clone(p.shared)
			in.Reason = Reason{Rule: RuleCpusetSharedPool}
			if free, refused := a.refused[w.ID]; refused {
				fig.Refused, fig.Mode, fig.Wanted = true, w.CpusetMode, w.CPUsWanted
				fig.Free, fig.HostCount, fig.MinShared = free, len(host), minSharedCPUs
			}
		}
		fig.CPUs = in.CPUs
		in.Reason.Cpuset = fig
		intents = append(intents, in)
	}
	return intents
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
