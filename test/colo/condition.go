package main

import (
	"fmt"
	"slices"
	"strings"
)

// condition is what runs beside the online service while it is measured.
type condition int

const (
	condAlone       condition = iota // the online service and its load, nothing else of ours
	condSpinner                      // plus a cpu.idle busy loop on every CPU: no idle vCPU to wake
	condNoIsolation                  // plus burners at default weight, no limits
	condCPUIdle                      // burners in a cpu.idle offline parent, no agent
	condKoord                        // burners at minimal shares under the koordinator-like quota loop
	condSluice                       // burners under sluice-agent with its default policy
	numConditions
)

func (c condition) String() string {
	return [...]string{"alone", "alone+idle-spinner", "no-isolation", "cpu-idle-only", "koordinator-like", "sluice"}[c]
}

// hasBurners tells whether offline work runs in the condition.
func (c condition) hasBurners() bool { return c >= condNoIsolation }

// conditionOrder is the order conditions run in round r: row r of a
// balanced Latin square (Williams design), so over numConditions rounds
// each condition runs once in every position and follows every other
// condition once: no condition always runs first, last, or right after
// the same neighbour, and a drift in the host's other load spreads over
// all of them.
func conditionOrder(r int) []condition {
	n := int(numConditions)
	out := make([]condition, 0, n)
	for j := range n {
		w := (j + 1) / 2
		if j%2 == 0 && j > 0 {
			w = n - j/2
		}
		out = append(out, condition((r+w)%n))
	}
	return out
}

// levelOrder is the order load levels run in round r: ascending in even
// rounds, descending in odd ones.
func levelOrder(levels []int, r int) []int {
	out := append([]int(nil), levels...)
	if r%2 == 1 {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// parseConditions reads -conditions: names as String prints them, comma
// separated; empty means all.
func parseConditions(s string) (map[condition]bool, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[condition]bool{}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		k := slices.Index(conditionNames(), name)
		if k < 0 {
			return nil, fmt.Errorf("unknown condition %q (want %s)", name, strings.Join(conditionNames(), ", "))
		}
		out[condition(k)] = true
	}
	return out, nil
}

func conditionNames() []string {
	var out []string
	for k := range numConditions {
		out = append(out, k.String())
	}
	return out
}

// runs reports whether condition k is to run.
func (o options) runs(k condition) bool { return o.only == nil || o.only[k] }
