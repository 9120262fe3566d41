package main

import (
	"math"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/qos"
)

func TestOfflineShare(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := phaseResult{
		start: counters{at: t0, online: 5 * time.Second, loadgen: 1 * time.Second, offline: 2 * time.Second},
		// 10 s on 2 CPUs = 20 CPU s; online used 3 s and loadgen 2 s, so
		// 15 s were left idle by them; offline used 12 s of it.
		end: counters{at: t0.Add(10 * time.Second), host: hostCPU{cpus: 2},
			online: 8 * time.Second, loadgen: 3 * time.Second, offline: 14 * time.Second},
	}
	share, idle := offlineShare(r)
	if math.Abs(idle-15) > 1e-9 || math.Abs(share-0.8) > 1e-9 {
		t.Fatalf("offlineShare = %v, idle-left %v s; want 0.8, 15 s", share, idle)
	}
	// Online and load generator using every CPU leave nothing: no share.
	r.end.online = r.start.online + 20*time.Second
	if share, idle := offlineShare(r); share != 0 || idle > 0 {
		t.Fatalf("saturated host: share %v, idle-left %v; want 0 and <= 0", share, idle)
	}
}

func TestMedianSpread(t *testing.T) {
	xs := []float64{3, 1, 2}
	if m := median(xs); m != 2 {
		t.Fatalf("median = %v, want 2", m)
	}
	if xs[0] != 3 {
		t.Fatal("median sorted its argument in place")
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Fatalf("median of even count = %v, want 2.5", m)
	}
	if got := spread(xs, "%.1f"); got != "2.0 (1.0-3.0)" {
		t.Fatalf("spread = %q", got)
	}
	if got := spread([]float64{7}, "%.0f"); got != "7" {
		t.Fatalf("spread of one round = %q", got)
	}
}

// TestAgentPolicy checks that the policy the sluice phase writes is one the
// agent accepts and that it says what the benchmark relies on.
func TestAgentPolicy(t *testing.T) {
	tr := tree{root: "/sys/fs/cgroup", base: "/sluice-colo-test"}
	o := options{highWater: "95%", rampPerSecond: "20%", growHold: "2s"}
	pol, err := qos.ParsePolicy("colo.yaml", []byte(agentPolicy(tr, o)))
	if err != nil {
		t.Fatal(err)
	}
	if pol.DryRun || pol.OfflineParent != tr.offline() || pol.OnStop != qos.StopRelease {
		t.Errorf("dryRun %v, offlineParent %q, onStop %q; want false, %q, release", pol.DryRun, pol.OfflineParent, pol.OnStop, tr.offline())
	}
	if pol.CPU.HighWater != 0.95 || pol.CPU.RampPerSecond != 0.2 || pol.CPU.GrowHold != 2*time.Second || pol.CPU.OnlineRunqLatencyP99 != 0 {
		t.Errorf("cpu policy %+v; want highWater 0.95, ramp 0.2, growHold 2s, runq target off", pol.CPU)
	}
	o.runqP99 = 1500 * time.Microsecond
	if pol, err := qos.ParsePolicy("colo.yaml", []byte(agentPolicy(tr, o))); err != nil || pol.CPU.OnlineRunqLatencyP99 != o.runqP99 {
		t.Errorf("runq target %v: got %v, %v", o.runqP99, pol.CPU.OnlineRunqLatencyP99, err)
	}
	o.runqP99 = 0
	want := map[string]qos.Class{tr.online(): qos.ClassOnline, tr.loadgen(): qos.ClassSystem, tr.stress(): qos.ClassOffline}
	for cg, class := range want {
		var got qos.Class
		for _, r := range pol.Rules {
			if ok, _ := path.Match(r.Cgroup, cg); ok {
				got = r.Class
				break
			}
		}
		if got != class {
			t.Errorf("cgroup %s classed %q, want %q", cg, got, class)
		}
	}
	// A bad flag value is the policy loader's error, naming the field.
	o.highWater = "0.95"
	if _, err := qos.ParsePolicy("colo.yaml", []byte(agentPolicy(tr, o))); err == nil || !strings.Contains(err.Error(), "highWater") {
		t.Errorf("bare high water accepted or unnamed: %v", err)
	}
}
