package rdt_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/rdt"
)

// intelL3MB is a two-socket Intel host: 11-way L3, MBA in 10% steps.
func intelL3MB() rdt.Hardware {
	return rdt.Hardware{
		Caches: []rdt.CacheResource{{Name: "L3", CBMMask: 0x7ff, MinCBMBits: 1, NumCLOSIDs: 16, Domains: []int{0, 1}}},
		MB:     &rdt.MemBandwidth{Granularity: 10, Min: 10, MaxValue: 100, DelayLinear: true, Unit: rdt.MBPercent, NumCLOSIDs: 8, Domains: []int{0, 1}},
	}
}

func dynamicPolicy() rdt.Policy {
	p := rdt.DefaultPolicy()
	p.OnlineLatencyTarget = 5 * time.Millisecond
	return p
}

func groupText(t *testing.T, p rdt.Plan, group string) string {
	t.Helper()
	for _, g := range p.Groups {
		if g.Group == group {
			return g.Schemata.String()
		}
	}
	t.Fatalf("plan has no group %q: %+v", group, p.Groups)
	return ""
}

func groupNames(p rdt.Plan) string {
	var names []string
	for _, g := range p.Groups {
		names = append(names, g.Group)
	}
	return strings.Join(names, ",")
}

// counters blames offline in domain 0 only.
func counters() map[int]map[string]rdt.Counters {
	return map[int]map[string]rdt.Counters{
		0: {rdt.GroupOnline: {OccupancyBytes: 4 << 20, TotalBytesPerSec: 3e9}, rdt.GroupOffline: {OccupancyBytes: 12 << 20, TotalBytesPerSec: 7e9}},
		1: {rdt.GroupOnline: {OccupancyBytes: 8 << 20, TotalBytesPerSec: 5e9}, rdt.GroupOffline: {OccupancyBytes: 1 << 10, TotalBytesPerSec: 1e6}},
	}
}

func TestDecideShrinksSuspectDomainAtOnceAndRampsBack(t *testing.T) {
	hw, pol := intelL3MB(), dynamicPolicy()
	if err := pol.Validate(hw); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	wl := []rdt.Workload{{CgroupPath: "/online/web", Class: rdt.ClassOnline}, {CgroupPath: "/sluice/offline/batch", Class: rdt.ClassOffline, Priority: 1}}

	// First decision: no history, calm: offline starts at its ceilings
	// (5 of 11 ways, 50%), online holds the other 6.
	plan, st := rdt.Decide(rdt.Signals{Now: t0, OnlineLatencyP99: 3 * time.Millisecond, Workloads: wl}, pol, hw, rdt.State{})
	if got, want := groupText(t, plan, rdt.GroupOffline), "L3:0=1f;1=1f\nMB:0=50;1=50\n"; got != want {
		t.Errorf("offline at start = %q, want %q", got, want)
	}
	if got, want := groupText(t, plan, rdt.GroupOnline), "L3:0=7e0;1=7e0\nMB:0=100;1=100\n"; got != want {
		t.Errorf("online at start = %q, want %q", got, want)
	}

	// Online suffers, offline holds 70% of domain 0's bandwidth and little
	// of domain 1's: domain 0 drops to the floors at once, domain 1 holds.
	plan, st = rdt.Decide(rdt.Signals{Now: t0.Add(time.Second), OnlineLatencyP99: 9 * time.Millisecond, Domains: counters(), Workloads: wl}, pol, hw, st)
	if got, want := groupText(t, plan, rdt.GroupOffline), "L3:0=3;1=1f\nMB:0=10;1=50\n"; got != want {
		t.Errorf("offline under harm = %q, want %q", got, want)
	}
	if got, want := groupText(t, plan, rdt.GroupOnline), "L3:0=7fc;1=7e0\nMB:0=100;1=100\n"; got != want {
		t.Errorf("online under harm = %q, want %q", got, want)
	}
	if got := groupNames(plan); got != "sluice-offline,sluice-online" {
		t.Errorf("order under harm = %s, want offline tightened first", got)
	}
	off := plan.Groups[0]
	if want := "offline (sluice-offline): online p99 9ms > target 5ms, offline cut to its floors where it is suspect; " +
		"domain 0: offline holds 70% of bandwidth, 75% of occupancy (suspect); offline ways 5->2, MB 50->10; " +
		"domain 1: offline holds 0% of bandwidth, 0% of occupancy; offline ways 5->5, MB 50->50"; off.Reason.Kind != rdt.ReasonHarm || off.Reason.String() != want {
		t.Errorf("reason = %s\nwant     %s", off.Reason, want)
	}
	if on := plan.Groups[1].Reason.String(); !strings.HasSuffix(on, "offline ways 5->2, MB 50->10, online ways 9; domain 1: offline holds 0% of bandwidth, 0% of occupancy; offline ways 5->5, MB 50->50, online ways 6") {
		t.Errorf("online reason = %s", on)
	}
	if got := strings.Join(off.Cgroups, ","); got != "/sluice/offline/batch" {
		t.Errorf("offline cgroups = %s", got)
	}

	// Calm: nothing grows before Ramp.Hold (5s), then one step per second.
	steps := []struct {
		at   time.Duration
		want string
		kind rdt.ReasonKind
	}{
		{2 * time.Second, "L3:0=3;1=1f\nMB:0=10;1=50\n", rdt.ReasonCalmHold},
		{6 * time.Second, "L3:0=3;1=1f\nMB:0=10;1=50\n", rdt.ReasonCalmHold},
		{7 * time.Second, "L3:0=7;1=1f\nMB:0=20;1=50\n", rdt.ReasonCalmGrow},
		{7*time.Second + 500*time.Millisecond, "L3:0=7;1=1f\nMB:0=20;1=50\n", rdt.ReasonCalmHold},
		{8 * time.Second, "L3:0=f;1=1f\nMB:0=30;1=50\n", rdt.ReasonCalmGrow},
		{9 * time.Second, "L3:0=1f;1=1f\nMB:0=40;1=50\n", rdt.ReasonCalmGrow},
		{10 * time.Second, "L3:0=1f;1=1f\nMB:0=50;1=50\n", rdt.ReasonCalmGrow},
		{11 * time.Second, "L3:0=1f;1=1f\nMB:0=50;1=50\n", rdt.ReasonAtCeiling},
	}
	for _, s := range steps {
		plan, st = rdt.Decide(rdt.Signals{Now: t0.Add(s.at), OnlineLatencyP99: 3 * time.Millisecond, Domains: counters(), Workloads: wl}, pol, hw, st)
		if got := groupText(t, plan, rdt.GroupOffline); got != s.want {
			t.Errorf("at %v offline = %q, want %q", s.at, got, s.want)
		}
		if k := plan.Groups[0].Reason.Kind; k != s.kind {
			t.Errorf("at %v reason kind = %s, want %s", s.at, k, s.kind)
		}
	}
	// Growing: online is narrowed before offline widens.
	plan, _ = rdt.Decide(rdt.Signals{Now: t0.Add(20 * time.Second), OnlineLatencyP99: 4500 * time.Microsecond, Workloads: wl}, pol, hw, st)
	if plan.Groups[0].Reason.Kind != rdt.ReasonWarm {
		t.Errorf("4.5ms of 5ms: kind %s, want warm", plan.Groups[0].Reason.Kind)
	}
}

func TestDecideHarmNotCausedByOfflineHolds(t *testing.T) {
	hw, pol := intelL3MB(), dynamicPolicy()
	quiet := map[int]map[string]rdt.Counters{
		0: {rdt.GroupOnline: {OccupancyBytes: 20 << 20, TotalBytesPerSec: 9e9}, rdt.GroupOffline: {OccupancyBytes: 1 << 10, TotalBytesPerSec: 1e6}},
		1: {rdt.GroupOnline: {OccupancyBytes: 20 << 20, TotalBytesPerSec: 9e9}, rdt.GroupOffline: {OccupancyBytes: 1 << 10, TotalBytesPerSec: 1e6}},
	}
	plan, _ := rdt.Decide(rdt.Signals{Now: time.Unix(100, 0), OnlineLatencyP99: 20 * time.Millisecond, Domains: quiet}, pol, hw, rdt.State{})
	if got := groupText(t, plan, rdt.GroupOffline); got != "L3:0=1f;1=1f\nMB:0=50;1=50\n" {
		t.Errorf("offline = %q, want held at the ceilings", got)
	}
	if k := plan.Groups[0].Reason.Kind; k != rdt.ReasonHarmNotCache {
		t.Errorf("kind = %s, want %s", k, rdt.ReasonHarmNotCache)
	}
	// Without counters latency alone judges: every domain is cut.
	plan, _ = rdt.Decide(rdt.Signals{Now: time.Unix(100, 0), OnlineLatencyP99: 20 * time.Millisecond}, pol, hw, rdt.State{})
	if got := groupText(t, plan, rdt.GroupOffline); got != "L3:0=3;1=3\nMB:0=10;1=10\n" {
		t.Errorf("unmeasured harm: offline = %q, want floors everywhere", got)
	}
}

func TestDecideStaticAndResumeFromKernel(t *testing.T) {
	hw := intelL3MB()
	pol := rdt.DefaultPolicy()
	plan, _ := rdt.Decide(rdt.Signals{Now: time.Unix(1, 0), OnlineLatencyP99: time.Second}, pol, hw, rdt.State{})
	if got := groupText(t, plan, rdt.GroupOffline); got != "L3:0=1f;1=1f\nMB:0=50;1=50\n" {
		t.Errorf("static offline = %q, want ceilings", got)
	}
	// A restarted agent with a latency target resumes from what the kernel holds.
	cur := &rdt.Allocation{Ways: map[int]int{0: 3, 1: 4}, MB: map[int]int{0: 20, 1: 30}}
	plan, st := rdt.Decide(rdt.Signals{Now: time.Unix(1, 0), OnlineLatencyP99: 4500 * time.Microsecond, Current: cur}, dynamicPolicy(), hw, rdt.State{})
	if got := groupText(t, plan, rdt.GroupOffline); got != "L3:0=7;1=f\nMB:0=20;1=30\n" {
		t.Errorf("resumed offline = %q, want the kernel's values", got)
	}
	if st.Offline.Ways[1] != 4 {
		t.Errorf("state ways = %v", st.Offline.Ways)
	}
}

func TestDecideCDPWritesCodeAndData(t *testing.T) {
	hw := rdt.Hardware{Caches: []rdt.CacheResource{
		{Name: "L3CODE", CBMMask: 0xfffff, MinCBMBits: 1, NumCLOSIDs: 8, Domains: []int{0}},
		{Name: "L3DATA", CBMMask: 0xfffff, MinCBMBits: 1, NumCLOSIDs: 8, Domains: []int{0}},
	}}
	plan, _ := rdt.Decide(rdt.Signals{Now: time.Unix(1, 0)}, rdt.DefaultPolicy(), hw, rdt.State{})
	if got, want := groupText(t, plan, rdt.GroupOffline), "L3CODE:0=3ff\nL3DATA:0=3ff\n"; got != want {
		t.Errorf("CDP offline = %q, want %q", got, want)
	}
}

func TestDecideAvoidsShareableWaysAndUsesAbsoluteMB(t *testing.T) {
	// AMD-style: 16 ways, absolute MB up to 2048, cache ids 0 and 8; the
	// low ways are shareable, so offline goes to the top.
	hw := rdt.Hardware{
		Caches: []rdt.CacheResource{{Name: "L3", CBMMask: 0xffff, ShareableBits: 0x3, NumCLOSIDs: 16, Domains: []int{0, 8}}},
		MB:     &rdt.MemBandwidth{Granularity: 1, MaxValue: 2048, Unit: rdt.MBAbsolute, NumCLOSIDs: 16, Domains: []int{0, 8}},
	}
	plan, _ := rdt.Decide(rdt.Signals{Now: time.Unix(1, 0)}, rdt.DefaultPolicy(), hw, rdt.State{})
	if got, want := groupText(t, plan, rdt.GroupOffline), "L3:0=ff00;8=ff00\nMB:0=1024;8=1024\n"; got != want {
		t.Errorf("offline = %q, want %q", got, want)
	}
	if got, want := groupText(t, plan, rdt.GroupOnline), "L3:0=ff;8=ff\nMB:0=2048;8=2048\n"; got != want {
		t.Errorf("online = %q, want %q", got, want)
	}
}

func TestDecidePriorityGroupsWhileCLOSIDsLast(t *testing.T) {
	hw := intelL3MB()
	pol := rdt.DefaultPolicy()
	pol.OfflinePriorityGroups = true
	wl := []rdt.Workload{
		{CgroupPath: "/b/1", Class: rdt.ClassOffline, Priority: 1},
		{CgroupPath: "/b/2", Class: rdt.ClassOffline, Priority: -2},
		{CgroupPath: "/b/3", Class: rdt.ClassOffline, Priority: 1},
		{CgroupPath: "/sys/d", Class: rdt.ClassSystem},
	}
	plan, _ := rdt.Decide(rdt.Signals{Now: time.Unix(1, 0), Workloads: wl}, pol, hw, rdt.State{})
	if got, want := groupNames(plan), "sluice-offline-p-2,sluice-offline-p1,,sluice-online"; got != want {
		t.Errorf("groups = %s, want %s", got, want)
	}
	// Four CLOSIDs: default + online + two priorities does not leave room
	// for a third priority: merged, and said so.
	hw.MB.NumCLOSIDs = 4
	wl = append(wl, rdt.Workload{CgroupPath: "/b/4", Class: rdt.ClassOffline, Priority: 7})
	plan, _ = rdt.Decide(rdt.Signals{Now: time.Unix(1, 0), Workloads: wl}, pol, hw, rdt.State{})
	if got, want := groupNames(plan), "sluice-offline,,sluice-online"; got != want {
		t.Errorf("groups = %s, want %s", got, want)
	}
	if g := plan.Groups[0]; !g.Reason.Merged || !strings.Contains(g.Reason.String(), "merged") || len(g.Cgroups) != 4 {
		t.Errorf("merged group = %+v, reason %s", g, g.Reason)
	}
}

func TestValidateReportsEveryHardwareProblem(t *testing.T) {
	hw := intelL3MB()
	hw.Caches[0].MinCBMBits = 2
	pol := dynamicPolicy()
	pol.Offline.WaysFloor = rdt.Ways{Count: 1}
	pol.Offline.WaysCeiling = rdt.Ways{Share: 0.8}
	pol.Offline.MBFloor = 0.05
	pol.Ramp.Ways = 0
	err := pol.Validate(hw)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"rdt.offline.waysFloor: 1 ways is 1 ways, fewer than the hardware's min_cbm_bits 2",
		"rdt.offline.mbFloor: 5% is 5, below the hardware's min_bandwidth 10",
		"rdt.offline.waysCeiling: 80% of ways (8 ways) plus online.waysFloor 50% of ways (6 ways) is more than the cache's 11 ways",
		"rdt.ramp.ways: 0",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if err := rdt.DefaultPolicy().Validate(intelL3MB()); err != nil {
		t.Errorf("default policy on Intel L3+MB: %v", err)
	}
}

func TestRatesFromCumulativeCounters(t *testing.T) {
	prev := rdt.MonSample{At: time.Unix(10, 0), Domains: map[int]map[string]rdt.RawCounters{
		0: {"g": {TotalBytes: 1000, LocalBytes: 500, HasTotal: true, HasLocal: true}},
	}}
	cur := rdt.MonSample{At: time.Unix(12, 0), Domains: map[int]map[string]rdt.RawCounters{
		0: {"g": {OccupancyBytes: 7, TotalBytes: 5000, LocalBytes: 100, HasOccupancy: true, HasTotal: true, HasLocal: true}},
	}}
	got := rdt.Rates(prev, cur)[0]["g"]
	if got.TotalBytesPerSec != 2000 || got.LocalBytesPerSec != 0 || got.OccupancyBytes != 7 {
		t.Errorf("rates = %+v, want total 2000/s, local unknown (went backwards), occupancy 7", got)
	}
}

// BenchmarkDecide is one decision on a two-socket host with counters and
// a hundred workloads.
func BenchmarkDecide(b *testing.B) {
	hw, pol := intelL3MB(), dynamicPolicy()
	var wl []rdt.Workload
	for i := range 100 {
		c := rdt.ClassOffline
		if i%2 == 0 {
			c = rdt.ClassOnline
		}
		wl = append(wl, rdt.Workload{CgroupPath: "/w/" + strings.Repeat("x", i%7) + string(rune('a'+i%26)), Class: c, Priority: i % 3})
	}
	in := rdt.Signals{Now: time.Unix(1, 0), OnlineLatencyP99: 3 * time.Millisecond, Domains: counters(), Workloads: wl}
	var st rdt.State
	b.ReportAllocs()
	for b.Loop() {
		in.Now = in.Now.Add(100 * time.Millisecond)
		_, st = rdt.Decide(in, pol, hw, st)
	}
}

func TestDecideSystemGroupWhenThePolicyGivesOne(t *testing.T) {
	hw := intelL3MB()
	pol := rdt.DefaultPolicy()
	wl := []rdt.Workload{{CgroupPath: "/system.slice/sshd.service", Class: rdt.ClassSystem}}
	plan, _ := rdt.Decide(rdt.Signals{Now: time.Unix(1, 0), Workloads: wl}, pol, hw, rdt.State{})
	if got := groupNames(plan); got != "sluice-offline,,sluice-online" {
		t.Errorf("without a system section: groups %s, want system in the default group", got)
	}
	if g := plan.Groups[1]; !g.Schemata.Empty() || len(g.Cgroups) != 1 {
		t.Errorf("default group intent = %+v, want tasks only, no schemata", g)
	}
	pol.System = &rdt.ClassPolicy{WaysFloor: rdt.Ways{Count: 1}, WaysCeiling: rdt.Ways{Share: 0.75}, MBFloor: 0.5, MBCeiling: 0.8}
	if err := pol.Validate(hw); err != nil {
		t.Fatal(err)
	}
	plan, _ = rdt.Decide(rdt.Signals{Now: time.Unix(1, 0), Workloads: wl}, pol, hw, rdt.State{})
	if got := groupNames(plan); got != "sluice-offline,sluice-system,sluice-online" {
		t.Errorf("groups = %s", got)
	}
	if got, want := groupText(t, plan, rdt.GroupSystem), "L3:0=7f8;1=7f8\nMB:0=80;1=80\n"; got != want {
		t.Errorf("system = %q, want %q (8 ways on online's side, 80%%)", got, want)
	}
}
