package main

import (
	"slices"
	"strings"
	"testing"
)

func TestConditionOrderInterleaves(t *testing.T) {
	first := map[condition]bool{}
	follows := map[[2]condition]int{}
	for r := range int(numConditions) {
		o := conditionOrder(r)
		if len(o) != int(numConditions) {
			t.Fatalf("round %d: %v", r, o)
		}
		seen := map[condition]bool{}
		for _, c := range o {
			seen[c] = true
		}
		if len(seen) != int(numConditions) {
			t.Fatalf("round %d runs %v: not every condition once", r, o)
		}
		first[o[0]] = true
		for i := 1; i < len(o); i++ {
			follows[[2]condition{o[i-1], o[i]}]++
		}
	}
	if len(first) != int(numConditions) {
		t.Errorf("over %d rounds only %v ran first", numConditions, first)
	}
	// Balanced: every ordered pair of neighbours exactly once.
	if len(follows) != int(numConditions)*(int(numConditions)-1) {
		t.Errorf("%d distinct neighbour pairs over %d rounds, want %d: %v", len(follows), numConditions, int(numConditions)*(int(numConditions)-1), follows)
	}
	if got := levelOrder([]int{20, 40, 60}, 1); !slices.Equal(got, []int{60, 40, 20}) {
		t.Errorf("levelOrder odd round = %v", got)
	}
}

func TestParseConditions(t *testing.T) {
	got, err := parseConditions(" alone, sluice,cpu-idle-only")
	if err != nil || len(got) != 3 || !got[condAlone] || !got[condSluice] || !got[condCPUIdle] {
		t.Errorf("parseConditions = %v, %v", got, err)
	}
	if all, err := parseConditions(""); all != nil || err != nil {
		t.Errorf("empty: %v, %v; want every condition (nil)", all, err)
	}
	if _, err := parseConditions("alone,sluce"); err == nil || !strings.Contains(err.Error(), `"sluce"`) {
		t.Errorf("unknown name: %v", err)
	}
}
