package qos

import (
	"fmt"
	"strconv"
)

// IntentSummary is one intent in words, for sluicectl, logs and the local API.
type IntentSummary struct {
	// Kind is one of IntentOfflineCPU, IntentOfflineMemory,
	// IntentOfflineOOMScore, IntentKill, IntentCpuset, IntentCacheGroup.
	Kind string `json:"kind"`
	// Target is what the intent applies to (a cgroup path or a workload ID).
	Target string `json:"target"`
	// Value is the intended value in the form people read it ("1350m").
	Value  string `json:"value"`
	Reason string `json:"reason"`
}

// Intents lists the plan's intents in enforcement order: CPU, memory,
// OOM score, cpusets, cache groups, kills. This is where reasons are worded.
func (p Plan) Intents() []IntentSummary {
	out := []IntentSummary{
		{Kind: IntentOfflineCPU, Target: p.OfflineParent, Value: fmt.Sprintf("%dm (quota %dus per %dus)",
			p.OfflineCPU.BudgetMilli, p.OfflineCPU.QuotaMicros, p.OfflineCPU.PeriodMicros), Reason: p.OfflineCPU.Reason.String()},
	}
	if !p.OfflineCPU.YieldReason.IsZero() {
		out = append(out, IntentSummary{Kind: IntentOfflineCPU, Target: p.OfflineParent,
			Value: fmt.Sprintf("weight %d idle %t", p.OfflineCPU.Weight, p.OfflineCPU.Idle), Reason: p.OfflineCPU.YieldReason.String()})
	}
	out = append(out, IntentSummary{Kind: IntentOfflineMemory, Target: p.OfflineParent, Value: fmt.Sprintf("high %s max %s",
		formatBytes(satInt64(p.OfflineMemory.HighBytes)), formatBytes(satInt64(p.OfflineMemory.MaxBytes))), Reason: p.OfflineMemory.Reason.String()})
	if !p.OfflineOOMScore.Reason.IsZero() {
		out = append(out, IntentSummary{Kind: IntentOfflineOOMScore, Target: p.OfflineParent,
			Value: strconv.Itoa(p.OfflineOOMScore.Adj), Reason: p.OfflineOOMScore.Reason.String()})
	}
	for _, c := range p.Cpusets {
		out = append(out, IntentSummary{Kind: IntentCpuset, Target: c.CgroupPath, Value: formatCPUList(c.CPUs), Reason: c.Reason.String()})
	}
	out = append(out, cacheIntents(p.Cache)...)
	for _, k := range p.Kills {
		out = append(out, IntentSummary{Kind: IntentKill, Target: k.ID, Value: k.CgroupPath, Reason: k.Reason.String()})
	}
	return append(out, p.Network.intents()...)
}

// formatBytes prints a size in binary units with two decimals ("1.50GiB").
func formatBytes(n int64) string {
	if n < 0 {
		return "-" + formatBytes(-max(n, -1<<62))
	}
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + "B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.2f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// formatSignedBytes is formatBytes for differences that may be negative.
func formatSignedBytes(n int64) string { return formatBytes(n) }
