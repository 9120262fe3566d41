package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/qos"
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
	// The default policy's ramp from its floor to the water level, after
	// its hold.
	pol := qos.DefaultPolicy()
	ramp := pol.CPU.GrowHold + time.Duration((pol.CPU.HighWater-pol.CPU.OfflineFloor)/pol.CPU.RampPerSecond*float64(time.Second))
	if full.warmup <= ramp {
		t.Errorf("warm-up %v is not longer than the default ramp (%v)", full.warmup, ramp)
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
	// A subset explored: only what runs is estimated, and without cpu
	// service rounds the service is left out altogether.
	sub, err := parseOptions([]string{"-levels", "40", "-http-rounds", "0", "-rounds", "3", "-conditions", "alone,sluice"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(sub.services()); n != 1 {
		t.Errorf("-http-rounds 0: %d services, want redis only", n)
	}
	perWindow := sub.warmup + sub.duration
	if e := sub.estimate(); e < 6*perWindow || e > 6*perWindow+time.Minute {
		t.Errorf("estimate %v for 3 rounds of 2 conditions at one level (windows %v after %v warm-up): want about 6 of them", e, sub.duration, sub.warmup)
	}
	// An explicit flag wins over the quick defaults.
	q2, err := parseOptions([]string{"-duration", "10s", "-levels", "30"})
	if err != nil || !slices.Equal(q2.levels, []int{30}) {
		t.Errorf("-levels 30 with a short window: %v, %v", q2.levels, err)
	}
	if _, err := parseOptions([]string{"-levels", "20,0"}); err == nil || !strings.Contains(err.Error(), `"0"`) {
		t.Errorf("level 0 accepted or unnamed: %v", err)
	}
}

// TestPinnedCapacity checks that -redis-capacity and -http-capacity set
// what load levels are shares of, that the report says so beside what
// calibration measured, and that a negative capacity is refused.
func TestPinnedCapacity(t *testing.T) {
	o, err := parseOptions([]string{"-redis-capacity", "50000", "-http-capacity", "3000"})
	if err != nil {
		t.Fatal(err)
	}
	svcs := o.services()
	if svcs[0].pinnedRPS != 50000 || svcs[1].pinnedRPS != 3000 {
		t.Errorf("pinned %v / %v, want 50000 / 3000", svcs[0].pinnedRPS, svcs[1].pinnedRPS)
	}
	s := &service{name: "redis", conns: 32, pinnedRPS: 50000, measuredRPS: 61234}
	if got := s.capacityLine(); !strings.Contains(got, "pinned at 50000") || !strings.Contains(got, "measured 61234") {
		t.Errorf("capacity line %q: want the pinned and the measured capacity", got)
	}
	if got := s.rate(40); got != 20000 {
		t.Errorf("40%% of a pinned 50000: %v req/s", got)
	}
	s.pinnedRPS = 0
	if got := s.capacityLine(); strings.Contains(got, "pinned") || !strings.Contains(got, "61234") {
		t.Errorf("capacity line %q without a pin", got)
	}
	if _, err := parseOptions([]string{"-redis-capacity", "-1"}); err == nil {
		t.Error("negative capacity accepted")
	}
}
