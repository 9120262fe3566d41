package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/brain/safety"
	"github.com/sluicehq/sluice/brain/store"
)

// fleetBrain is a brain's cache of n reporting hosts, without etcd: what
// Fleet reads under the brain's lock.
func fleetBrain(n int) *Brain {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := &Brain{
		cfg: Config{Safety: safety.DefaultThresholds(), Liveness: DefaultLiveness()}, now: func() time.Time { return now },
		st:   &store.State{Hosts: map[string]store.Host{}, Targets: map[string]store.Target{}, Jobs: map[string]store.Job{}},
		live: map[string]*hostLive{}, byJob: map[string][]store.Placement{}, pendingReason: map[string]string{},
	}
	b.why = map[string]string{}
	for i := range n {
		name := fmt.Sprintf("host-%05d", i)
		b.st.Hosts[name] = store.Host{Name: name, Capacity: map[string]int64{"cpu": 32000, "memory": 64 << 30}, Down: i%100 == 0}
		b.st.Targets[name] = store.Target{Host: name, Version: 3, Containers: []store.Container{{ID: "a-0", Resources: map[string]int64{"cpu": 1000}}}}
		b.live[name] = &hostLive{
			lastSeen: now, reportedLend: true, lentCPUMilli: int64(i % 8000), runqP99Us: float64(i % 3000), cpuPSI: float64(i % 50),
			fleetLive: fleetLive{
				classUsage: map[string]ClassUse{"online": {CPUMilli: 4000}, "offline": {CPUMilli: 2000}},
				killTimes:  []time.Time{now.Add(-2 * time.Hour), now.Add(-time.Minute)},
			},
		}
	}
	return b
}

func TestFleetCountsKillsOfTheLastHourAndJudgesSafety(t *testing.T) {
	b := fleetBrain(3)
	f := b.Fleet()
	if len(f.Hosts) != 3 || f.Hosts[0].Name != "host-00000" || f.Hosts[0].State != "down" {
		t.Fatalf("hosts: %+v", f.Hosts)
	}
	h := f.Hosts[2]
	if h.KillsLastHour != 1 {
		t.Fatalf("kills in the last hour %d, want 1 (one kill two hours ago is out)", h.KillsLastHour)
	}
	// runq 2µs, cpu psi 2%, 1 kill, lends 2/32000 with offline running.
	if h.Safety.State != safety.Squeezing || len(h.Safety.Reasons) != 2 {
		t.Fatalf("safety %+v: want squeezing by the kill and the lent share", h.Safety)
	}
	if h.Requested["cpu"] != 1000 || h.ClassUsage["offline"].CPUMilli != 2000 {
		t.Fatalf("requested %v, usage %v", h.Requested, h.ClassUsage)
	}
	// The copy is the view's: changing it leaves the brain's alone.
	h.ClassUsage["offline"] = ClassUse{}
	if b.live["host-00002"].classUsage["offline"].CPUMilli != 2000 {
		t.Fatal("Fleet shares the brain's class usage map")
	}
}

// BenchmarkFleet10k is how long a page holds the brain's lock to copy a
// 10,000-host fleet.
func BenchmarkFleet10k(b *testing.B) {
	br := fleetBrain(10000)
	for b.Loop() {
		if f := br.Fleet(); len(f.Hosts) != 10000 {
			b.Fatal(len(f.Hosts))
		}
	}
}
