package qos

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Rule names the decision rule behind an intent.
type Rule uint8

// Rules. The zero Rule marks an absent intent (see Reason.IsZero).
const (
	RuleNone Rule = iota
	// RuleCPULend: offline CPU budget = capacity x water level - online -
	// system, floored, squeezed by run-queue latency, ramped (Reason.Lend,
	// Reason.Runq).
	RuleCPULend
	// RuleCPUCapacityUnknown: no host CPU capacity; the budget is kept.
	RuleCPUCapacityUnknown
	// RuleMemoryLend: offline memory limit, the same shape as RuleCPULend.
	RuleMemoryLend
	// RuleMemoryCapacityUnknown: no host memory size; the limit is kept.
	RuleMemoryCapacityUnknown
	// RuleOfflineYields: offline gets the minimal CPU weight and, where the
	// kernel has it, cpu.idle, so online work always runs first.
	RuleOfflineYields
	// RuleOfflineOOMFirst: offline tasks' oom_score_adj makes the kernel
	// OOM killer choose offline work first, as Sluice's killer would.
	RuleOfflineOOMFirst
	// RuleKillOverLimit: offline memory stayed above its limit for the
	// grace window; the victim is chosen by priority, age and share (Reason.Kill).
	RuleKillOverLimit
	// RuleCpusetOfflinePool: the offline parent's CPUs: host less
	// exclusive CPUs (Reason.Cpuset).
	RuleCpusetOfflinePool
	// RuleCpusetDedicated: an online workload's exclusive or reserved CPUs.
	RuleCpusetDedicated
	// RuleCpusetOfflineMember: an offline workload runs on the offline pool.
	RuleCpusetOfflineMember
	// RuleCpusetSharedPool: a workload without dedicated CPUs runs on the
	// shared pool (possibly because its request was refused).
	RuleCpusetSharedPool
	ruleCount
)

var ruleNames = [ruleCount]string{
	"", "cpu-lend", "cpu-capacity-unknown", "memory-lend", "memory-capacity-unknown",
	"offline-yields", "offline-oom-first", "kill-over-limit",
	"cpuset-offline-pool", "cpuset-dedicated", "cpuset-offline-member", "cpuset-shared-pool",
}

func (r Rule) String() string {
	if r < ruleCount {
		return ruleNames[r]
	}
	return fmt.Sprintf("rule(%d)", uint8(r))
}

// MarshalText spells the rule by name.
func (r Rule) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a rule name.
func (r *Rule) UnmarshalText(b []byte) error {
	for i, n := range ruleNames {
		if n == string(b) {
			*r = Rule(i)
			return nil
		}
	}
	return fmt.Errorf("unknown rule %q", b)
}

// Reason says why an intent has its value: which rule and the figures it
// used. It is plain data, so deciding builds no text; String (and the
// "text" field of its JSON) words it for people. Only the figures of the
// rule's group are set. The figures that occur once per plan are behind
// pointers, so the per-workload cpuset intents stay small to copy.
type Reason struct {
	Rule   Rule          `json:"rule"`
	Lend   *LendFigures  `json:"lend,omitempty"`
	Runq   *RunqFigures  `json:"runq,omitempty"`
	Kill   *KillFigures  `json:"kill,omitempty"`
	Cpuset CpusetFigures `json:"cpuset,omitzero"`
	// worded holds a reason read from an agent that wrote reasons as
	// plain text (before they were structured), so a newer sluicectl still
	// reads an older agent's /state.
	worded string
}

func (r Reason) lend() LendFigures {
	if r.Lend == nil {
		return LendFigures{}
	}
	return *r.Lend
}

// IsZero reports an absent intent.
func (r Reason) IsZero() bool { return r.Rule == RuleNone && r.worded == "" }

// LendAction says what the lending hysteresis did.
type LendAction uint8

// Lend actions.
const (
	LendStart  LendAction = iota // first decision or capacity changed
	LendSteady                   // within the dead band: unchanged
	LendCut                      // cut at once
	LendFloor                    // raised at once to the floor
	LendWait                     // computed value is higher; waiting for the hold
	LendGrow                     // ramping up
)

// LendFigures are one lent resource's inputs and outcome, in its own unit
// (milli-CPUs or bytes).
type LendFigures struct {
	Value      int64   `json:"value"`
	Capacity   int64   `json:"capacity"`
	Level      float64 `json:"level,omitempty"`
	FromTarget bool    `json:"fromTarget,omitempty"`
	Online     int64   `json:"online,omitempty"`
	System     int64   `json:"system,omitempty"`
	// SystemNow is system use in the decision's window, where System is
	// its average (CPU: see SystemCPUSmoothing).
	SystemNow int64 `json:"systemNow,omitempty"`
	// Raw is capacity x level - online - system; may be negative.
	Raw        int64      `json:"raw,omitempty"`
	Floor      int64      `json:"floor,omitempty"`
	FloorShare float64    `json:"floorShare,omitempty"`
	Desired    int64      `json:"desired,omitempty"`
	Action     LendAction `json:"action,omitempty"`
	// From is the value before this decision.
	From int64 `json:"from,omitempty"`
	// WaitLeft is how long growth still waits (LendWait).
	WaitLeft time.Duration `json:"waitLeftNs,omitempty"`
	Hold     time.Duration `json:"holdNs,omitempty"`
	// Step is the largest step the ramp allowed (LendGrow).
	Step      int64   `json:"step,omitempty"`
	RampShare float64 `json:"rampShare,omitempty"`
	Band      int64   `json:"band,omitempty"`
	// HighBytes is the reclaim line of a memory limit.
	HighBytes int64 `json:"highBytes,omitempty"`
	// Target is the brain's override of this resource, as bounded by the
	// policy; nil when the brain overrides nothing here.
	Target *TargetOverride `json:"target,omitempty"`
}

// TargetOverride is one resource's override from the brain's target and
// how the local policy bounded it (see Targets).
type TargetOverride struct {
	// Version is the brain target's version (0: unknown).
	Version uint64 `json:"version,omitempty"`
	// Level is the water level the brain asked for (0..1); 0: none.
	Level float64 `json:"level,omitempty"`
	// LevelBounded: Level was above the policy's, which stays in force.
	LevelBounded bool `json:"levelBounded,omitempty"`
	// Cap is the offline cap the brain asked for, when CapSet.
	Cap    int64 `json:"cap,omitempty"`
	CapSet bool  `json:"capSet,omitempty"`
	// CapBounded: Cap was below the policy's floor, which holds instead.
	CapBounded bool `json:"capBounded,omitempty"`
}

// words names the override for people; f formats the resource's unit.
func (o TargetOverride) words(policyLevel float64, floor int64, f func(int64) string) string {
	var parts []string
	if o.Level > 0 {
		w := "water level " + formatPercent(o.Level)
		if o.LevelBounded {
			w += fmt.Sprintf(" (above the policy's %s: the policy's holds)", formatPercent(policyLevel))
		}
		parts = append(parts, w)
	}
	if o.CapSet {
		w := "offline cap " + f(o.Cap)
		if o.CapBounded {
			w += fmt.Sprintf(" (below the policy's floor: the floor %s holds)", f(floor))
		}
		parts = append(parts, w)
	}
	v := ""
	if o.Version > 0 {
		v = fmt.Sprintf(" v%d", o.Version)
	}
	return fmt.Sprintf("brain target%s overrides %s", v, strings.Join(parts, ", "))
}

// RunqAction says what the run-queue latency squeeze did.
type RunqAction uint8

// Squeeze actions; RunqOff means no latency target (or nothing to say).
const (
	RunqOff RunqAction = iota
	RunqNoOnline
	RunqBreach
	RunqWithin
	RunqHeld
	RunqCalming
	RunqLifted
)

// RunqFigures are the run-queue squeeze's inputs and outcome.
type RunqFigures struct {
	Action  RunqAction    `json:"action,omitempty"`
	P99     time.Duration `json:"p99Ns,omitempty"`
	Target  time.Duration `json:"targetNs,omitempty"`
	Calm    time.Duration `json:"calmNs,omitempty"`
	CalmFor time.Duration `json:"calmForNs,omitempty"`
	Hold    time.Duration `json:"holdNs,omitempty"`
	// Keep is the share of the span above the floor offline keeps now,
	// PrevKeep before this decision.
	Keep     float64 `json:"keep,omitempty"`
	PrevKeep float64 `json:"prevKeep,omitempty"`
}

// KillFigures explain a planned kill.
type KillFigures struct {
	OfflineUsedBytes uint64        `json:"offlineUsedBytes"`
	LimitBytes       uint64        `json:"limitBytes"`
	OverFor          time.Duration `json:"overForNs"`
	Grace            time.Duration `json:"graceNs"`
	CoolDown         time.Duration `json:"coolDownNs"`
	Victim           string        `json:"victim"`
	Candidates       int           `json:"candidates"`
	Priority         int           `json:"priority"`
	StartedAt        time.Time     `json:"startedAt,omitzero"`
	// Share is the victim's usage over VictimLimitBytes.
	Share            float64 `json:"share"`
	VictimLimitBytes uint64  `json:"victimLimitBytes"`
	VictimUsedBytes  uint64  `json:"victimUsedBytes"`
}

// CpusetFigures explain a cpuset intent. The CPU lists share memory with
// the plan: treat them as read-only.
type CpusetFigures struct {
	Workload string     `json:"workload,omitempty"`
	Class    Class      `json:"class,omitempty"`
	Mode     CpusetMode `json:"mode,omitempty"`
	// CPUs is the pool or the dedicated set.
	CPUs      []int `json:"cpus,omitempty"`
	Host      []int `json:"host,omitempty"`
	Exclusive []int `json:"exclusive,omitempty"`
	MovedFrom []int `json:"movedFrom,omitempty"`
	// Wanted is how many dedicated CPUs the workload asked for.
	Wanted   int `json:"wanted,omitempty"`
	Priority int `json:"priority,omitempty"`
	// Refused is set when a dedicated request could not be met: Free of
	// HostCount CPUs were free and MinShared must stay shared.
	Refused   bool `json:"refused,omitempty"`
	Free      int  `json:"free,omitempty"`
	HostCount int  `json:"hostCount,omitempty"`
	MinShared int  `json:"minShared,omitempty"`
}

// MarshalJSON writes the structured reason with its wording as "text".
func (r Reason) MarshalJSON() ([]byte, error) {
	type plain Reason
	return json.Marshal(struct {
		plain
		Text string `json:"text"`
	}{plain(r), r.String()})
}

// UnmarshalJSON reads what MarshalJSON wrote; the text is derived, so it
// is not kept. A plain string (an older agent's reason) is kept as words.
func (r *Reason) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*r = Reason{}
		return json.Unmarshal(b, &r.worded)
	}
	type plain Reason
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*r = Reason(p)
	return nil
}

// String words the reason for people (sluicectl, logs, /state).
func (r Reason) String() string {
	var b strings.Builder
	switch r.Rule {
	case RuleNone:
		b.WriteString(r.worded)
	case RuleCPUCapacityUnknown:
		fmt.Fprintf(&b, "host cpu capacity unknown (%dm): offline cpu budget kept at %dm", r.lend().Capacity, r.lend().Value)
	case RuleMemoryCapacityUnknown:
		fmt.Fprintf(&b, "host memory size unknown: offline memory limit kept at %s", formatBytes(r.lend().Value))
	case RuleCPULend:
		r.writeCPU(&b)
	case RuleMemoryLend:
		r.writeMemory(&b)
	case RuleOfflineYields:
		b.WriteString("offline yields: minimal cpu weight and cpu.idle where the kernel has it, so online work always runs first")
	case RuleOfflineOOMFirst:
		b.WriteString("the kernel OOM killer chooses offline tasks first, as Sluice's killer would (backstop)")
	case RuleKillOverLimit:
		r.writeKill(&b)
	default:
		r.writeCpuset(&b)
	}
	return b.String()
}

func milli(v int64) string { return fmt.Sprintf("%dm", v) }

func (r Reason) writeCPU(b *strings.Builder) {
	l := r.lend()
	fmt.Fprintf(b, "offline cpu budget %dm: %dm x %s", l.Value, l.Capacity, formatPercent(l.Level))
	if l.FromTarget {
		b.WriteString(" (brain target)")
	}
	fmt.Fprintf(b, " - online %dm - system %dm", l.Online, l.System)
	if l.SystemNow != l.System {
		fmt.Fprintf(b, " (1s average; %dm now)", l.SystemNow)
	}
	fmt.Fprintf(b, " = %dm", l.Raw)
	if l.Raw < l.Floor {
		fmt.Fprintf(b, ", below the floor %dm (%s)", l.Floor, formatPercent(l.FloorShare))
	} else {
		fmt.Fprintf(b, ", floor %dm", l.Floor)
	}
	if r.Runq != nil && r.Runq.String() != "" {
		note := r.Runq.String()
		b.WriteString("; ")
		b.WriteString(note)
	}
	l.writeTarget(b, milli)
	b.WriteString("; ")
	b.WriteString(l.describe(milli))
}

func (r Reason) writeMemory(b *strings.Builder) {
	l := r.lend()
	fmt.Fprintf(b, "offline memory limit %s (reclaim from %s): %s x %s", formatBytes(l.Value),
		formatBytes(l.HighBytes), formatBytes(l.Capacity), formatPercent(l.Level))
	if l.FromTarget {
		b.WriteString(" (brain target)")
	}
	fmt.Fprintf(b, " - online %s - system %s = %s", formatBytes(l.Online), formatBytes(l.System), formatSignedBytes(l.Raw))
	if l.Raw < l.Floor {
		fmt.Fprintf(b, ", below the floor %s (%s)", formatBytes(l.Floor), formatPercent(l.FloorShare))
	} else {
		fmt.Fprintf(b, ", floor %s", formatBytes(l.Floor))
	}
	l.writeTarget(b, formatBytes)
	b.WriteString("; ")
	b.WriteString(l.describe(formatBytes))
}

// describe says what the hysteresis did, with its figures.
// writeTarget names the brain's override, if any.
func (l LendFigures) writeTarget(b *strings.Builder, f func(int64) string) {
	if l.Target == nil {
		return
	}
	b.WriteString("; ")
	// The policy's level is the one in force when the asked one was bounded.
	b.WriteString(l.Target.words(l.Level, l.Floor, f))
}

func (l LendFigures) describe(f func(int64) string) string {
	switch l.Action {
	case LendStart:
		return fmt.Sprintf("first decision: starting at offline's current use clamped to [floor, %s]", f(l.Desired))
	case LendCut:
		return fmt.Sprintf("cut at once from %s", f(l.From))
	case LendFloor:
		return fmt.Sprintf("raised at once from %s to the floor", f(l.From))
	case LendWait:
		return fmt.Sprintf("computed %s, holding %s for %v more (grow hold %v)", f(l.Desired), f(l.Value), l.WaitLeft, l.Hold)
	case LendGrow:
		return fmt.Sprintf("ramping up from %s toward %s by at most %s this step (%s of capacity per second)",
			f(l.From), f(l.Desired), f(l.Step), formatPercent(l.RampShare))
	}
	return fmt.Sprintf("unchanged: computed %s is within the dead band %s", f(l.Desired), f(l.Band))
}

// String words the squeeze; "" when there is nothing to say.
func (q RunqFigures) String() string {
	switch q.Action {
	case RunqNoOnline:
		return "no online work: run-queue squeeze lifted"
	case RunqBreach:
		return fmt.Sprintf("online run-queue p99 %v above target %v: offline keeps %s of its span above the floor (was %s)",
			q.P99, q.Target, formatPercent(q.Keep), formatPercent(q.PrevKeep))
	case RunqWithin:
		return fmt.Sprintf("online run-queue p99 %v within target %v", q.P99, q.Target)
	case RunqHeld:
		return fmt.Sprintf("online run-queue p99 %v not yet below %v (80%% of target %v): squeeze held (offline keeps %s)",
			q.P99, q.Calm, q.Target, formatPercent(q.Keep))
	case RunqCalming:
		return fmt.Sprintf("online run-queue p99 %v below %v for %v of %v hold: squeeze held (offline keeps %s)",
			q.P99, q.Calm, q.CalmFor, q.Hold, formatPercent(q.Keep))
	case RunqLifted:
		return fmt.Sprintf("online run-queue p99 %v below %v for the %v hold: squeeze lifted", q.P99, q.Calm, q.Hold)
	}
	return ""
}

func (r Reason) writeKill(b *strings.Builder) {
	var k KillFigures
	if r.Kill != nil {
		k = *r.Kill
	}
	fmt.Fprintf(b, "offline memory %s above its limit %s for %v (grace %v): kill %s, chosen of %d offline "+
		"candidates by priority %d (lowest first), start %s (youngest first), %s of its %s limit (largest share first), "+
		"using %s; cool-down %v",
		formatBytes(satInt64(k.OfflineUsedBytes)), formatBytes(satInt64(k.LimitBytes)), k.OverFor, k.Grace,
		k.Victim, k.Candidates, k.Priority, k.StartedAt.UTC().Format(time.RFC3339), formatShare(k.Share),
		formatBytes(satInt64(k.VictimLimitBytes)), formatBytes(satInt64(k.VictimUsedBytes)), k.CoolDown)
}

func (r Reason) writeCpuset(b *strings.Builder) {
	c := r.Cpuset
	switch r.Rule {
	case RuleCpusetOfflinePool:
		fmt.Fprintf(b, "offline pool %s: host CPUs %s less exclusive %s (reserved CPUs are lent to offline)",
			formatCPUList(c.CPUs), formatCPUList(c.Host), formatCPUList(c.Exclusive))
	case RuleCpusetDedicated:
		fmt.Fprintf(b, "%s cpuset %s for %s (%d CPUs, priority %d)", c.Mode, formatCPUList(c.CPUs), c.Workload, c.Wanted, c.Priority)
		if c.MovedFrom != nil {
			fmt.Fprintf(b, "; moved from %s", formatCPUList(c.MovedFrom))
		}
	case RuleCpusetOfflineMember:
		fmt.Fprintf(b, "offline pool %s for %s", formatCPUList(c.CPUs), c.Workload)
	case RuleCpusetSharedPool:
		fmt.Fprintf(b, "shared pool %s for %s %s", formatCPUList(c.CPUs), c.Class, c.Workload)
		if c.Refused {
			fmt.Fprintf(b, "; wants %d %s CPUs but only %d of %d are free and %d must stay shared: runs shared",
				c.Wanted, c.Mode, c.Free, c.HostCount, c.MinShared)
		}
	default:
		b.WriteString(r.Rule.String())
	}
}
