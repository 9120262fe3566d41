package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRunBudget checks the plan the defaults make, not a timing: the full
// run fits in 90 minutes with every window at least 30 s after a warm-up
// longer than the default policy's ramp, and the quick look fits in 5.
func TestRunBudget(t *testing.T) {
	full, err := parseOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	if full.quick || full.rounds != 5 || full.httpRounds != 3 || full.duration < 30*time.Second ||
		!slices.Equal(full.levels, []int{20, 40, 60}) || !slices.Equal(full.httpLevels, []int{20, 60}) {
		t.Errorf("full run plan %+v: want 5 redis rounds at 20/40/60%%, 3 http rounds at 20/60%%, windows >= 30 s", full)
	}
	// Default policy: ramp 10%/s of capacity after a 2 s hold: 12 s to full.
	if full.warmup <= 12*time.Second {
		t.Errorf("warm-up %v is not longer than the default ramp (12 s)", full.warmup)
	}
	if e := full.estimate(); e > 90*time.Minute {
		t.Errorf("full run estimate %v, budget 90 min", e)
	}
	quick, err := parseOptions([]string{"-rounds", "1", "-duration", "10s"})
	if err != nil {
		t.Fatal(err)
	}
	if e := quick.estimate(); !quick.quick || e > 5*time.Minute {
		t.Errorf("quick run (quick=%v) estimate %v, budget 5 min", quick.quick, e)
	}
	t.Logf("estimates: full %v, quick %v", full.estimate(), quick.estimate())
	// An explicit flag wins over the quick defaults.
	q2, err := parseOptions([]string{"-duration", "10s", "-levels", "30"})
	if err != nil || !slices.Equal(q2.levels, []int{30}) {
		t.Errorf("-levels 30 with a short window: %v, %v", q2.levels, err)
	}
	if _, err := parseOptions([]string{"-levels", "20,0"}); err == nil || !strings.Contains(err.Error(), `"0"`) {
		t.Errorf("level 0 accepted or unnamed: %v", err)
	}
}
