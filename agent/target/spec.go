package target

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/agent/brainlink"
	"github.com/sluicehq/sluice/agent/converge"
	"github.com/sluicehq/sluice/qos"
)

// reservedLabelPrefix marks the labels the converger derives from a spec's
// own fields (job, replica, class, priority); the brain sends them too, and
// they are dropped here so the converger's values are the only ones.
const reservedLabelPrefix = "sluice.io/"

// Spec is the converge.Spec of one targeted container. Resources "cpu"
// (milli-CPUs) and "memory" (bytes) become the container's own caps; the
// replica number is the ID's suffix after "<job>-".
func Spec(c brainlink.Container) converge.Spec {
	s := converge.Spec{
		ID: c.ID, Job: c.Job, Replica: replicaOf(c.ID, c.Job), Image: c.Image, Command: slices.Clone(c.Command),
		CPUMilli: c.Resources["cpu"], Class: qos.Class(c.Class), Priority: c.Priority,
		Restart: converge.RestartPolicy(c.Restart),
	}
	if m := c.Resources["memory"]; m > 0 {
		s.MemoryBytes = uint64(m)
	}
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		s.Env = append(s.Env, k+"="+c.Env[k])
	}
	for k, v := range c.Labels {
		if strings.HasPrefix(k, reservedLabelPrefix) {
			continue
		}
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels[k] = v
	}
	return s
}

// Specs converts every targeted container.
func Specs(cs []brainlink.Container) []converge.Spec {
	out := make([]converge.Spec, 0, len(cs))
	for _, c := range cs {
		out = append(out, Spec(c))
	}
	return out
}

func replicaOf(id, job string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(id, job+"-"))
	if err != nil || n < 0 || !strings.HasPrefix(id, job+"-") {
		return 0
	}
	return n
}

// QoS is the qos.Targets of a target's overrides (zero for none).
func QoS(t brainlink.Target) qos.Targets {
	o := t.Overrides
	if o == nil {
		return qos.Targets{}
	}
	q := qos.Targets{Version: t.Version, OfflineCPUCapMilli: clonePtr(o.OfflineCPUCapMilli), OfflineMemoryCapBytes: clonePtr(o.OfflineMemoryCapBytes)}
	if o.CPUWaterLevel != nil {
		q.CPUWaterLevelPercent = *o.CPUWaterLevel * 100
	}
	if o.MemoryWaterLevel != nil {
		q.MemoryWaterLevelPercent = *o.MemoryWaterLevel * 100
	}
	return q
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// itemResults turns the converger's results into the acknowledgement's,
// in the brain's vocabulary (applied, failed, unsupported): one per
// container, the worst of its results. A container waiting for its image
// or its restart backoff is applied (the agent holds it; the message says
// pending and why); a dry-run agent's containers are unsupported (the
// host runs none of them).
func itemResults(rs []qos.IntentResult) []brainlink.ItemResult {
	rank := map[string]int{"applied": 0, "unsupported": 1, "failed": 2}
	byID := map[string]brainlink.ItemResult{}
	for _, r := range rs {
		it := brainlink.ItemResult{ID: r.Target, Result: "applied", Message: r.Err}
		switch r.Status {
		case qos.ResultFailed:
			it.Result = "failed"
		case qos.ResultUnsupported:
			it.Result = "unsupported"
		case qos.ResultDryRun:
			it.Result, it.Message = "unsupported", "dry-run: would "+strings.TrimPrefix(r.Intent, "container-")
		case converge.StatusPending:
			it.Message = "pending: " + r.Err
		}
		if prev, ok := byID[r.Target]; ok && rank[prev.Result] >= rank[it.Result] {
			continue
		}
		byID[r.Target] = it
	}
	out := make([]brainlink.ItemResult, 0, len(byID))
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		out = append(out, byID[id])
	}
	return out
}
