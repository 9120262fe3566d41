package qos

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/rdt"
)

// IntentCacheGroup is the IntentResult.Intent and IntentSummary.Kind of a
// resctrl group intent (Plan.Cache); its Target is the group's directory
// name ("" for the default group).
const IntentCacheGroup = "rdt-group"

// CacheSample is the cache and memory-bandwidth part of an Observation.
// The agent sets it only on a host where resctrl was found; a nil
// Observation.Cache makes Decide plan no cache intents.
type CacheSample struct {
	// Hardware is what resctrl offers, probed once at start by the agent;
	// the decision core reads hardware facts only from here.
	Hardware rdt.Hardware `json:"hardware"`
	// Domains holds each group's monitoring counters per L3 domain id
	// (occupancy now, bandwidth as rates over the last interval, see
	// rdt.Rates); empty when the host cannot monitor.
	Domains map[int]map[string]rdt.Counters `json:"domains,omitempty"`
	// Current is the offline allocation the kernel held when the agent
	// started, so a restarted agent resumes from it instead of jumping;
	// nil when Sluice's offline group did not exist.
	Current *rdt.Allocation `json:"current,omitempty"`
	// OfflineMerged is set once the enforcer ran out of CLOSIDs and put
	// every offline priority into one group.
	OfflineMerged bool `json:"offlineMerged,omitempty"`
	// AppLatencyP99 is the online services' own request latency (p99),
	// the judge of cache harm the controller was designed for. No source
	// reports it yet: while it is zero, the online class's run-queue p99
	// (eBPF) stands in, which judges CPU contention, not cache
	// contention. A latency source fills this field and nothing else
	// changes.
	AppLatencyP99 time.Duration `json:"appLatencyP99Ns,omitempty"`
}

// cacheLatency is online latency as the cache controller judges harm by:
// the application's p99 when a source reports it, else the online class's
// run-queue p99; 0 when neither is known.
func cacheLatency(obs Observation) time.Duration {
	if obs.Cache.AppLatencyP99 > 0 {
		return obs.Cache.AppLatencyP99
	}
	if l := obs.Classes[ClassOnline].RunqLatency; l != nil {
		return l.P99
	}
	return 0
}

// decideCache runs the cache and bandwidth controller (rdt.Decide) on the
// observation's counters and workloads. Without resctrl, or with the rdt
// section disabled, it plans nothing and forgets its state.
func decideCache(obs Observation, pol Policy, prev rdt.State) (rdt.Plan, rdt.State) {
	if obs.Cache == nil || !pol.RDT.Enabled {
		return rdt.Plan{}, rdt.State{}
	}
	in := rdt.Signals{
		Now:              obs.Time,
		OnlineLatencyP99: cacheLatency(obs),
		Domains:          obs.Cache.Domains,
		Current:          obs.Cache.Current,
		OfflineMerged:    obs.Cache.OfflineMerged,
	}
	for _, w := range obs.Workloads {
		in.Workloads = append(in.Workloads, rdt.Workload{CgroupPath: w.CgroupPath, Class: rdt.Class(w.Class), Priority: w.Priority})
	}
	plan, next := rdt.Decide(in, pol.RDT, obs.Cache.Hardware, prev)
	plan.DryRun = pol.DryRun
	return plan, next
}

func cacheEqual(p, q rdt.Plan) bool {
	return p.DryRun == q.DryRun && slices.EqualFunc(p.Groups, q.Groups, func(g, h rdt.GroupIntent) bool {
		return g.Group == h.Group && g.Class == h.Class && slices.Equal(g.Priorities, h.Priorities) &&
			g.Schemata.String() == h.Schemata.String() && slices.Equal(g.Cgroups, h.Cgroups)
	})
}

// cacheIntents words the plan's resctrl group intents.
func cacheIntents(p rdt.Plan) []IntentSummary {
	var out []IntentSummary
	for _, g := range p.Groups {
		target := g.Group
		if target == rdt.GroupDefault {
			target = "default group"
		}
		value := strings.ReplaceAll(strings.TrimSpace(g.Schemata.String()), "\n", "; ")
		if value == "" {
			value = "schemata untouched"
		}
		if n := len(g.Cgroups); n > 0 {
			value += "; tasks of " + strconv.Itoa(n) + " cgroup(s)"
		}
		out = append(out, IntentSummary{Kind: IntentCacheGroup, Target: target, Value: value, Reason: g.Reason.String()})
	}
	return out
}
