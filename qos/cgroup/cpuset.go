package cgroup

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/qos"
)

// cpusetWriter pins cgroups to CPUs. Exclusivity (Hippo's exclusive and
// reserved modes) comes from the decision core's allocation — no two
// intents share an exclusive CPU — not from the kernel's cpu_exclusive
// flag, which needs every ancestor exclusive too and fails on overlapping
// siblings that the agent does not own.
type cpusetWriter struct {
	fs   FS // nil: no cpuset hierarchy, intents are unsupported
	mode Mode
}

func (w cpusetWriter) apply(ctx context.Context, intents []qos.CpusetIntent, dryRun bool, at time.Time) []qos.IntentResult {
	var res []qos.IntentResult
	for _, in := range intents {
		target := path.Clean("/" + in.CgroupPath)
		if w.fs == nil {
			res = append(res, qos.IntentResult{Intent: qos.IntentCpuset, Target: target, Status: qos.ResultUnsupported,
				Err: "no cpuset hierarchy configured", At: at})
			continue
		}
		o := outcome{dryRun: dryRun}
		w.one(ctx, &o, target, in.CPUs)
		res = append(res, o.result(qos.IntentCpuset, target, at))
	}
	return res
}

func (w cpusetWriter) one(ctx context.Context, o *outcome, cg string, cpus []int) {
	if len(cpus) == 0 {
		o.fail(fmt.Errorf("cgroup %s: refusing an empty cpuset: the kernel would reject it and the tasks would have nowhere to run", cg))
		return
	}
	want := slices.Sorted(slices.Values(cpus))
	if !exists(w.fs, cg) {
		return // the container exited: nothing to pin
	}
	// A parent must contain its children's CPUs (v1 rejects the child's
	// write otherwise, v2 silently narrows the effective set), so widen
	// ancestors first, top down. Ancestors are never narrowed here.
	for anc := range ancestors(cg) {
		if anc == "/" {
			continue
		}
		o.run(ctx, step{fs: w.fs, cgroup: anc, file: "cpuset.cpus",
			next: func(cur []byte) (string, bool) {
				have, err := parseCPUList(cur)
				// v2: an empty cpuset.cpus inherits the parent's, so it
				// already holds everything the parent has.
				if err == nil && ((w.mode == ModeV2 && len(have) == 0) || containsAll(have, want)) {
					return "", true
				}
				return formatCPUList(union(have, want)), false
			}})
	}
	o.run(ctx, step{fs: w.fs, cgroup: cg, file: "cpuset.cpus", want: formatCPUList(want),
		same: func(cur []byte) bool {
			have, err := parseCPUList(cur)
			return err == nil && slices.Equal(have, want)
		}})
}

func containsAll(have, want []int) bool {
	for _, c := range want {
		if !slices.Contains(have, c) {
			return false
		}
	}
	return true
}

func union(a, b []int) []int {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// parseCPUList parses the kernel's CPU list format ("0-3,8,10-11\n").
func parseCPUList(data []byte) ([]int, error) {
	s := strings.TrimSpace(string(data))
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("parse cpu list %q: bad cpu %q", s, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("parse cpu list %q: bad range %q", s, part)
			}
		}
		if b-a > 1<<16 {
			return nil, fmt.Errorf("parse cpu list %q: range %q too large", s, part)
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// formatCPUList writes sorted, de-duplicated CPUs in the kernel's list
// format, ranges collapsed.
func formatCPUList(cpus []int) string {
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
