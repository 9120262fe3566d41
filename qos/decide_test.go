package qos

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func hostObs(at time.Duration, cpuMilli int64, memBytes uint64, classes map[Class]ClassUsage, ws ...WorkloadSample) Observation {
	return Observation{
		Time:      t0.Add(at),
		Host:      HostSample{CPUCapacityMilli: cpuMilli, MemTotalBytes: memBytes},
		Classes:   classes,
		Workloads: ws,
	}
}

func TestLend(t *testing.T) {
	base := lendInput{capacity: 1000, level: 0.7, floorShare: 0.1, rampShare: 0.1, bandShare: 0.02, hold: 2 * time.Second, keep: 1}
	set := func(v int64) LendState { return LendState{Value: v, Set: true, Capacity: 1000} }
	for _, tc := range []struct {
		name    string
		in      func(lendInput) lendInput
		prev    LendState
		elapsed time.Duration
		want    int64
		action  LendAction
	}{
		{"first decision starts at offline use", func(i lendInput) lendInput { i.online, i.offlineUsed = 200, 300; return i }, LendState{}, 0, 300, LendStart},
		{"first decision clamps to desired", func(i lendInput) lendInput { i.online, i.offlineUsed = 500, 900; return i }, LendState{}, 0, 200, LendStart},
		{"first decision clamps to floor", func(i lendInput) lendInput { i.offlineUsed = 0; return i }, LendState{}, 0, 100, LendStart},
		{"capacity change restarts", func(i lendInput) lendInput { i.offlineUsed = 250; return i }, LendState{Value: 50, Set: true, Capacity: 2000}, time.Second, 250, LendStart},
		{"cut at once", func(i lendInput) lendInput { i.online = 500; return i }, set(600), time.Second, 200, LendCut},
		{"small cut inside band ignored", func(i lendInput) lendInput { i.online = 110; return i }, set(600), time.Second, 600, LendSteady},
		{"floor wins over water level", func(i lendInput) lendInput { i.online, i.system = 900, 300; return i }, set(600), time.Second, 100, LendCut},
		{"raised floor applies at once", func(i lendInput) lendInput { i.online = 650; return i }, set(20), time.Second, 100, LendFloor},
		{"growth waits for hold", func(i lendInput) lendInput { return i }, set(200), time.Second, 200, LendWait},
		{"growth ramps after hold", func(i lendInput) lendInput { return i },
			LendState{Value: 200, Set: true, Capacity: 1000, GrowSince: t0.Add(-3 * time.Second)}, time.Second, 300, LendGrow},
		{"ramp stops at desired", func(i lendInput) lendInput { i.online = 450; return i },
			LendState{Value: 200, Set: true, Capacity: 1000, GrowSince: t0.Add(-3 * time.Second)}, 2 * time.Second, 250, LendGrow},
		{"squeeze keeps part of the span", func(i lendInput) lendInput { i.keep = 0.5; return i }, set(700), time.Second, 400, LendCut},
		{"full squeeze holds at floor", func(i lendInput) lendInput { i.keep = 0; return i }, set(700), time.Second, 100, LendCut},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, out := lend(tc.in(base), tc.prev, t0, tc.elapsed)
			if out.Value != tc.want || out.Action != tc.action || next.Value != tc.want || !next.Set {
				t.Errorf("value %d action %d (state %+v), want %d action %d", out.Value, out.Action, next, tc.want, tc.action)
			}
		})
	}
}

func TestDecideMirrorsPolicy(t *testing.T) {
	pol := DefaultPolicy()
	pol.DryRun, pol.OfflineParent = true, "/kubepods/besteffort"
	plan, _ := Decide(hostObs(0, 2000, 8<<30, nil), pol, Targets{}, State{})
	if !plan.DryRun || plan.OfflineParent != "/kubepods/besteffort" {
		t.Errorf("plan %+v does not mirror dryRun/offlineParent", plan)
	}
	in := plan.Intents()
	if len(in) != 4 || in[0].Kind != IntentOfflineCPU || in[1].Kind != IntentOfflineCPU || in[2].Kind != IntentOfflineMemory ||
		in[3].Kind != IntentOfflineOOMScore || in[0].Target != "/kubepods/besteffort" {
		t.Fatalf("intents %+v", in)
	}
	if in[0].Value != fmt.Sprintf("%dm (quota %dus per 100000us)", plan.OfflineCPU.BudgetMilli, plan.OfflineCPU.BudgetMilli*100) ||
		in[1].Value != "weight 1 idle true" || !strings.HasPrefix(in[2].Value, "high ") || in[3].Value != "1000" {
		t.Errorf("intent values %q %q %q %q", in[0].Value, in[1].Value, in[2].Value, in[3].Value)
	}
}

// TestDecideReadsClassUsage: class usage is aggregated once, when the
// observation is built (AggregateClasses); Decide reads it from there and
// does not sum the workloads again.
func TestDecideReadsClassUsage(t *testing.T) {
	ws := []WorkloadSample{
		{ID: "web", Class: ClassOnline, CPUUsedMilli: 900, MemoryUsageBytes: 4 << 30},
		{ID: "db", Class: ClassOnline, CPUUsedMilli: 300, MemoryUsageBytes: 2 << 30},
		{ID: "job", Class: ClassOffline, CPUUsedMilli: 600, MemoryUsageBytes: 1 << 30},
	}
	obs := hostObs(0, 2000, 10<<30, nil, ws...)
	if plan, _ := Decide(obs, lendingPolicy(), Targets{}, State{}); plan.OfflineCPU.BudgetMilli != 100 {
		t.Errorf("without Classes: budget %d, want the floor 100 (no class usage read, offline's own use included): %s",
			plan.OfflineCPU.BudgetMilli, plan.OfflineCPU.Reason)
	}
	obs.Host.MemAvailableBytes = 3 << 30 // the workloads' 7GiB is all the host uses
	obs.Classes = AggregateClasses(obs.Host, ws, nil)
	plan, _ := Decide(obs, lendingPolicy(), Targets{}, State{})
	// 1400 - 1200 = 200 < offline's 600: starts at 200.
	if plan.OfflineCPU.BudgetMilli != 200 {
		t.Errorf("budget %d, want 200: %s", plan.OfflineCPU.BudgetMilli, plan.OfflineCPU.Reason.String())
	}
	// 8GiB - 6GiB = 2GiB above offline's 1GiB: starts at 1GiB.
	if plan.OfflineMemory.MaxBytes != 1<<30 {
		t.Errorf("memory max %d, want 1GiB: %s", plan.OfflineMemory.MaxBytes, plan.OfflineMemory.Reason.String())
	}
}

// TestDecideBrokenSample: a sample without capacity keeps the previous
// budgets and never kills.
func TestDecideBrokenSample(t *testing.T) {
	pol := DefaultPolicy()
	pol.Kill.Grace = 0
	classes := map[Class]ClassUsage{ClassOnline: {CPUUsedMilli: 100, MemoryUsageBytes: 1 << 30}, ClassOffline: {MemoryUsageBytes: 3 << 30}}
	victim := WorkloadSample{ID: "x", Class: ClassOffline, MemoryUsageBytes: 3 << 30}
	plan, st := Decide(hostObs(0, 2000, 4<<30, classes, victim), pol, Targets{}, State{})
	if len(plan.Kills) != 1 {
		t.Fatalf("setup: expected a kill, got %+v", plan)
	}
	plan, st2 := Decide(hostObs(time.Minute, 0, 0, classes, victim), pol, Targets{}, st)
	if len(plan.Kills) != 0 {
		t.Errorf("killed on a sample without memory figures: %+v", plan.Kills)
	}
	if plan.OfflineCPU.BudgetMilli != st.CPU.Value || plan.OfflineMemory.MaxBytes != uint64(st.Memory.Value) {
		t.Errorf("budgets not kept: %+v vs state %+v", plan, st)
	}
	if !strings.Contains(plan.OfflineCPU.Reason.String(), "unknown") || !strings.Contains(plan.OfflineMemory.Reason.String(), "unknown") {
		t.Errorf("reasons do not say the sample was broken: %q / %q", plan.OfflineCPU.Reason.String(), plan.OfflineMemory.Reason.String())
	}
	if st2.CPU != st.CPU || st2.Memory != st.Memory {
		t.Errorf("lending state changed on a broken sample")
	}
}

// TestDecideClockBackwards: a sample older than the last decision grants
// no ramp and does not end a cool-down.
func TestDecideClockBackwards(t *testing.T) {
	pol := DefaultPolicy()
	pol.Kill.Grace = 0
	prev := State{
		Time: t0.Add(10 * time.Second),
		CPU:  LendState{Value: 200, Set: true, Capacity: 2000, GrowSince: t0},
		Kill: KillState{LastKillAt: t0.Add(10 * time.Second)},
	}
	classes := map[Class]ClassUsage{ClassOnline: {MemoryUsageBytes: 7 << 30}, ClassOffline: {MemoryUsageBytes: 1 << 30}}
	obs := hostObs(-time.Hour, 2000, 8<<30, classes, WorkloadSample{ID: "x", Class: ClassOffline, MemoryUsageBytes: 1 << 30})
	plan, _ := Decide(obs, pol, Targets{}, prev)
	if plan.OfflineCPU.BudgetMilli != 200 {
		t.Errorf("budget moved to %d on a clock step back: %s", plan.OfflineCPU.BudgetMilli, plan.OfflineCPU.Reason.String())
	}
	if len(plan.Kills) != 0 {
		t.Errorf("kill inside the cool-down after a clock step back")
	}
}

func TestDecideIsDeterministicAndLeavesInputsAlone(t *testing.T) {
	obs, pol := bigObservation(200, 7), DefaultPolicy()
	pol.Kill.Grace = 0
	pol.CPU.OnlineRunqLatencyP99 = time.Millisecond
	keep := slices.Clone(obs.Workloads)
	p1, s1 := Decide(obs, pol, Targets{}, State{})
	p2, s2 := Decide(obs, pol, Targets{}, State{})
	if !reflect.DeepEqual(p1, p2) || !reflect.DeepEqual(s1, s2) {
		t.Error("same inputs gave different outputs")
	}
	if !reflect.DeepEqual(obs.Workloads, keep) {
		t.Error("Decide modified the observation's workloads")
	}
	if len(p1.Kills) != 1 {
		t.Errorf("expected one kill in the big observation, got %d", len(p1.Kills))
	}
}

// TestStateJSON: the state survives JSON (the agent shows and may persist
// it) and deciding from the decoded state gives the same plan.
func TestStateJSON(t *testing.T) {
	obs, pol := bigObservation(50, 3), DefaultPolicy()
	pol.Kill.Grace = 0
	pol.CPU.OnlineRunqLatencyP99 = time.Millisecond
	_, st := Decide(obs, pol, Targets{}, State{})
	obs.Time = obs.Time.Add(time.Second)
	obs.Results = []IntentResult{{Intent: IntentKill, Target: st.Kill.Pending.ID, Status: ResultFailed}}
	_, st = Decide(obs, pol, Targets{}, st)
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	obs.Time = obs.Time.Add(3 * time.Second)
	obs.Results = nil
	pa, sa := Decide(obs, pol, Targets{}, st)
	pb, sb := Decide(obs, pol, Targets{}, back)
	if !reflect.DeepEqual(pa, pb) || !reflect.DeepEqual(sa, sb) {
		t.Errorf("decision from JSON-decoded state differs\nstate %s", data)
	}
}

// bestVictim is the brute-force oracle for victimOrder: filter step by step.
func bestVictim(ws []WorkloadSample, parentLimit uint64) string {
	var c []WorkloadSample
	for _, w := range ws {
		if w.Class == ClassOffline && w.MemoryUsageBytes > 0 {
			c = append(c, w)
		}
	}
	if len(c) == 0 {
		return ""
	}
	keep := func(better func(a, b WorkloadSample) bool) {
		best := c[0]
		for _, w := range c {
			if better(w, best) {
				best = w
			}
		}
		c = slices.DeleteFunc(c, func(w WorkloadSample) bool { return better(best, w) })
	}
	share := func(w WorkloadSample) float64 {
		l := w.MemoryLimitBytes
		if l == 0 || l > parentLimit {
			l = parentLimit
		}
		return float64(w.MemoryUsageBytes) / float64(l)
	}
	keep(func(a, b WorkloadSample) bool { return a.Priority < b.Priority })
	keep(func(a, b WorkloadSample) bool { return a.StartedAt.After(b.StartedAt) })
	keep(func(a, b WorkloadSample) bool { return share(a) > share(b) })
	keep(func(a, b WorkloadSample) bool { return a.ID < b.ID })
	return c[0].ID
}

func TestVictimOrderMatchesOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pol := DefaultPolicy()
	pol.Kill.Grace = 0
	kills := 0
	for i := range 2000 {
		n := 1 + rng.IntN(12)
		var ws []WorkloadSample
		var offlineMem uint64
		for j := range n {
			w := WorkloadSample{
				ID:               fmt.Sprintf("w%02d", rng.IntN(40)+j*40),
				Class:            Classes[rng.IntN(3)],
				Priority:         rng.IntN(3),
				StartedAt:        t0.Add(time.Duration(rng.IntN(4)) * time.Minute),
				MemoryUsageBytes: uint64(rng.IntN(4)) << 28,
			}
			if rng.IntN(2) == 0 {
				w.MemoryLimitBytes = uint64(1+rng.IntN(4)) << 28
			}
			if w.Class == ClassOffline {
				offlineMem += w.MemoryUsageBytes
			}
			ws = append(ws, w)
		}
		classes := map[Class]ClassUsage{ClassOnline: {MemoryUsageBytes: 7 << 30}, ClassOffline: {MemoryUsageBytes: offlineMem}}
		plan, _ := Decide(hostObs(time.Hour, 2000, 8<<30, classes, ws...), pol, Targets{}, State{})
		want := ""
		if offlineMem > plan.OfflineMemory.MaxBytes {
			want = bestVictim(ws, plan.OfflineMemory.MaxBytes)
		}
		got := ""
		if len(plan.Kills) > 0 {
			got = plan.Kills[0].ID
		}
		if got != want {
			t.Fatalf("case %d: victim %q, oracle %q\nworkloads %+v\nlimit %d", i, got, want, ws, plan.OfflineMemory.MaxBytes)
		}
		if got != "" {
			kills++
		}
	}
	if kills < 500 || kills > 1900 {
		t.Errorf("%d of 2000 cases killed: the generator does not exercise both paths", kills)
	}
}

func TestParseCpuset(t *testing.T) {
	for _, tc := range []struct {
		in   string
		mode CpusetMode
		n    int
		err  bool
	}{
		{"exclusive:2", CpusetExclusive, 2, false},
		{"reserved:1", CpusetReserved, 1, false},
		{"shared", CpusetShared, 0, false},
		{"", CpusetShared, 0, false},
		{"exclusive", "", 0, true},
		{"exclusive:0", "", 0, true},
		{"exclusive:-1", "", 0, true},
		{"shared:2", "", 0, true},
		{"pinned:2", "", 0, true},
	} {
		mode, n, err := ParseCpuset(tc.in)
		if mode != tc.mode || n != tc.n || (err != nil) != tc.err {
			t.Errorf("ParseCpuset(%q) = %q, %d, %v", tc.in, mode, n, err)
		}
	}
}

// TestCpusetsIgnoreWorkloadOrder: the allocation depends on priorities and
// start times, not on the order the sampler listed workloads in, and no
// CPU is handed out twice.
func TestCpusetsIgnoreWorkloadOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ws := []WorkloadSample{
		{ID: "a", CgroupPath: "/on/a", Class: ClassOnline, Priority: 3, CpusetMode: CpusetExclusive, CPUsWanted: 2},
		{ID: "b", CgroupPath: "/on/b", Class: ClassOnline, Priority: 3, CpusetMode: CpusetReserved, CPUsWanted: 1, StartedAt: t0},
		{ID: "c", CgroupPath: "/on/c", Class: ClassOnline, Priority: 1, CpusetMode: CpusetExclusive, CPUsWanted: 3},
		{ID: "d", CgroupPath: "/on/d", Class: ClassOnline, Priority: 7, CpusetMode: CpusetExclusive, CPUsWanted: 1},
		{ID: "e", CgroupPath: "/sluice/offline/e", Class: ClassOffline, CpusetMode: CpusetExclusive, CPUsWanted: 1},
		{ID: "f", CgroupPath: "/sys/f", Class: ClassSystem},
	}
	obs := Observation{Time: t0, Host: HostSample{CPUs: []int{0, 1, 2, 3, 4, 5, 6, 7}}}
	var first map[string]string
	for range 50 {
		obs.Workloads = slices.Clone(ws)
		rng.Shuffle(len(obs.Workloads), func(i, j int) { obs.Workloads[i], obs.Workloads[j] = obs.Workloads[j], obs.Workloads[i] })
		intents, _ := decideCpusets(obs, DefaultPolicy(), CpusetState{})
		got := map[string]string{}
		for _, in := range intents {
			got[in.CgroupPath] = formatCPUList(in.CPUs)
		}
		if first == nil {
			first = got
			// d (prio 7) takes 0, a and b (prio 3; a older) 1-2 and 3; c
			// (3 CPUs) would leave 1 shared of 4 free: it fits, 4-6; 7 shared.
			want := map[string]string{"/sluice/offline": "3,7", "/on/d": "0", "/on/a": "1-2", "/on/b": "3",
				"/on/c": "4-6", "/sluice/offline/e": "3,7", "/sys/f": "7"}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("cpusets %v, want %v", got, want)
			}
			continue
		}
		if !reflect.DeepEqual(got, first) {
			t.Fatalf("allocation depends on workload order: %v vs %v", got, first)
		}
	}
}

func TestFormatting(t *testing.T) {
	for in, want := range map[int64]string{0: "0B", 1023: "1023B", 1024: "1.00KiB", 1536 << 20: "1.50GiB", -(2 << 30): "-2.00GiB"} {
		if got := formatBytes(in); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", in, got, want)
		}
	}
	for want, in := range map[string][]int{"(none)": nil, "0": {0}, "0-3": {0, 1, 2, 3}, "0-1,3,5-6": {0, 1, 3, 5, 6}} {
		if got := formatCPUList(in); got != want {
			t.Errorf("formatCPUList(%v) = %q, want %q", in, got, want)
		}
	}
}

// bigObservation is a host with n workloads, a third of each class, with
// offline memory well above its limit.
func bigObservation(n int, seed uint64) Observation {
	rng := rand.New(rand.NewPCG(seed, seed))
	obs := Observation{
		Time:    t0,
		Host:    HostSample{CPUCapacityMilli: 64000, MemTotalBytes: 256 << 30, CPUUsedMilli: 40000},
		Classes: map[Class]ClassUsage{},
	}
	for i := range n {
		c := Classes[i%3]
		w := WorkloadSample{
			ID: fmt.Sprintf("c%04d", i), Name: fmt.Sprintf("w%d", i), Class: c, Priority: rng.IntN(5),
			CgroupPath: fmt.Sprintf("/%s/c%04d", c, i), StartedAt: t0.Add(-time.Duration(rng.IntN(3600)) * time.Second),
			CPUUsedMilli: int64(rng.IntN(1000)), MemoryUsageBytes: uint64(1+rng.IntN(2048)) << 20,
			RunqLatency: &LatencySummary{P99: time.Duration(rng.IntN(4000)) * time.Microsecond, Count: 10},
		}
		u := obs.Classes[c]
		u.CPUUsedMilli += w.CPUUsedMilli
		u.MemoryUsageBytes += w.MemoryUsageBytes
		u.Count++
		if u.RunqLatency == nil || w.RunqLatency.P99 > u.RunqLatency.P99 {
			u.RunqLatency = w.RunqLatency
		}
		obs.Classes[c] = u
		obs.Workloads = append(obs.Workloads, w)
	}
	// Push offline above its limit so the kill path runs.
	u := obs.Classes[ClassOnline]
	u.MemoryUsageBytes += 180 << 30
	obs.Classes[ClassOnline] = u
	slices.SortFunc(obs.Workloads, func(a, b WorkloadSample) int { return cmp.Compare(a.ID, b.ID) })
	return obs
}

// BenchmarkDecide measures a decision over n workloads with the kill path
// running; with cpusets, every tenth online workload holds one exclusive
// CPU of 64, so every workload gets a cpuset intent.
func BenchmarkDecide(b *testing.B) {
	for _, bc := range []struct {
		n       int
		cpusets bool
	}{{100, false}, {1000, false}, {100, true}, {1000, true}} {
		name := fmt.Sprintf("containers=%d", bc.n)
		if bc.cpusets {
			name += "/cpusets"
		}
		b.Run(name, func(b *testing.B) {
			obs, pol := bigObservation(bc.n, 1), DefaultPolicy()
			if bc.cpusets {
				for c := range 64 {
					obs.Host.CPUs = append(obs.Host.CPUs, c)
				}
				for i := range obs.Workloads {
					if w := &obs.Workloads[i]; w.Class == ClassOnline && i%10 == 1 {
						w.CpusetMode, w.CPUsWanted = CpusetExclusive, 1
					}
				}
			}
			pol.Kill.Grace = 0
			pol.CPU.OnlineRunqLatencyP99 = time.Millisecond
			_, st := Decide(obs, pol, Targets{}, State{})
			b.ReportAllocs()
			for b.Loop() {
				obs.Time = obs.Time.Add(100 * time.Millisecond)
				_, st = Decide(obs, pol, Targets{}, st)
			}
		})
	}
}

func BenchmarkParsePolicy(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePolicy("default-policy.yaml", DefaultPolicyYAML); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParseCpuset(f *testing.F) {
	for _, s := range []string{"exclusive:2", "reserved:1", "shared", "", "exclusive:0", "shared:1", "x:y", "reserved:+3", " exclusive:4 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, label string) {
		mode, n, err := ParseCpuset(label)
		if err != nil {
			if mode != "" || n != 0 || err.Error() == "" {
				t.Fatalf("error %v with mode %q n %d", err, mode, n)
			}
			return
		}
		switch mode {
		case CpusetShared:
			if n != 0 {
				t.Fatalf("shared with %d CPUs", n)
			}
		case CpusetExclusive, CpusetReserved:
			if n < 1 || n > 4096 {
				t.Fatalf("%s with %d CPUs", mode, n)
			}
			m2, n2, err := ParseCpuset(fmt.Sprintf("%s:%d", mode, n))
			if err != nil || m2 != mode || n2 != n {
				t.Fatalf("round trip of %q: %q %d %v", label, m2, n2, err)
			}
		default:
			t.Fatalf("unknown mode %q accepted from %q", mode, label)
		}
	})
}

// TestLendProperties drives lend with seeded random load and checks its
// contract at every step: never below the floor, cuts at once, growth only
// after the computed value stayed above the budget for the whole hold, and
// never faster than the ramp.
func TestLendProperties(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 99))
		in := lendInput{capacity: 8000, level: 0.7, floorShare: 0.05, rampShare: 0.1, bandShare: 0.02, hold: 2 * time.Second, keep: 1}
		band := scale(in.capacity, in.bandShare)
		var st LendState
		type step struct {
			at      time.Time
			desired int64
			value   int64
		}
		var hist []step
		now, online := t0, int64(3000)
		for i := range 3000 {
			gap := time.Duration(50+rng.IntN(300)) * time.Millisecond
			if i > 0 {
				now = now.Add(gap)
			}
			online = min(max(online+int64(rng.IntN(801))-400, 0), 8000)
			in.online, in.system, in.keep = online, int64(rng.IntN(200)), 1-float64(rng.IntN(3))/4
			elapsed := time.Duration(0)
			if i > 0 {
				elapsed = now.Sub(hist[len(hist)-1].at)
			}
			prevValue := st.Value
			next, out := lend(in, st, now, elapsed)
			if out.Value < out.Floor {
				t.Fatalf("seed %d step %d: value %d below floor %d", seed, i, out.Value, out.Floor)
			}
			if i > 0 {
				if out.Desired < prevValue-band && out.Value != out.Desired {
					t.Fatalf("seed %d step %d: desired %d far below %d but value %d", seed, i, out.Desired, prevValue, out.Value)
				}
				if out.Value > prevValue {
					if grow := out.Value - prevValue; grow > int64(float64(in.capacity)*in.rampShare*elapsed.Seconds())+1 {
						t.Fatalf("seed %d step %d: grew %d in %v, faster than the ramp", seed, i, grow, elapsed)
					}
					// Every decision within the hold before this one must have
					// wanted more than the budget it had.
					for j := len(hist) - 1; j >= 1 && now.Sub(hist[j].at) <= in.hold; j-- {
						if before := hist[j-1].value; hist[j].desired <= before {
							t.Fatalf("seed %d step %d: grew although %v earlier the computed value %d did not exceed the budget %d",
								seed, i, now.Sub(hist[j].at), hist[j].desired, before)
						}
					}
				}
			}
			st = next
			hist = append(hist, step{at: now, desired: out.Desired, value: out.Value})
		}
	}
}

// A brain target tightens what the policy allows and never loosens it, and
// every override is named in the reason, bounded or not.
func TestTargetsBoundedByPolicy(t *testing.T) {
	pol := lendingPolicy() // CPU: water level 70%, floor 5%
	classes := map[Class]ClassUsage{
		ClassOnline:  {CPUUsedMilli: 400},
		ClassOffline: {CPUUsedMilli: 2000},
	}
	capOf := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		name   string
		tgt    Targets
		budget int64
		reason string
	}{
		{"no target: policy", Targets{}, 1000, "2000m x 70% - online"},
		{"lower water level tightens", Targets{CPUWaterLevelPercent: 50, Version: 3}, 600, "brain target v3 overrides water level 50%"},
		{"higher water level is held at the policy's", Targets{CPUWaterLevelPercent: 95}, 1000,
			"water level 95% (above the policy's 70%: the policy's holds)"},
		{"cap tightens", Targets{OfflineCPUCapMilli: capOf(300)}, 300, "brain target overrides offline cap 300m"},
		{"cap above the computed value changes nothing", Targets{OfflineCPUCapMilli: capOf(1500)}, 1000, "offline cap 1500m"},
		{"cap below the floor is held at the floor", Targets{OfflineCPUCapMilli: capOf(0)}, 100,
			"offline cap 0m (below the policy's floor: the floor 100m holds)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, _ := Decide(hostObs(0, 2000, 8<<30, classes), pol, tc.tgt, State{})
			why := plan.OfflineCPU.Reason.String()
			if plan.OfflineCPU.BudgetMilli != tc.budget || !strings.Contains(why, tc.reason) {
				t.Errorf("budget %d, want %d; reason %q lacks %q", plan.OfflineCPU.BudgetMilli, tc.budget, why, tc.reason)
			}
			if got := plan.OfflineCPU.Reason.Lend.Target != nil; got != !tc.tgt.IsZero() {
				t.Errorf("structured reason names the override: %v, want %v", got, !tc.tgt.IsZero())
			}
		})
	}
}

// lendingPolicy is the default policy with the CPU lending figures these
// tests' arithmetic was written for (water level 70%, ramp 10%/s, hold
// 2s), so they test the mechanics whatever the defaults are.
func lendingPolicy() Policy {
	p := DefaultPolicy()
	p.CPU.HighWater, p.CPU.RampPerSecond, p.CPU.GrowHold = 0.70, 0.10, 2*time.Second
	return p
}

// TestSystemAverageSkipsTheStartWindow: the first decision's sample spans
// an unknown window (at start-up, the agent's own start) and leaves the
// average alone; the first sample over a known window seeds it, and until
// then the decision subtracts its own sample.
func TestSystemAverageSkipsTheStartWindow(t *testing.T) {
	pol := lendingPolicy()
	obs := func(at time.Duration, system int64) Observation {
		return hostObs(at, 2000, 8<<30, map[Class]ClassUsage{ClassSystem: {CPUUsedMilli: system}})
	}
	plan, st := Decide(obs(0, 1500), pol, Targets{}, State{})
	if st.SystemCPU.Set {
		t.Errorf("average %+v seeded by a decision without a window", st.SystemCPU)
	}
	if got := plan.OfflineCPU.Reason.Lend.System; got != 1500 {
		t.Errorf("first decision subtracts %dm of system use, want its own sample's 1500m", got)
	}
	_, st = Decide(obs(100*time.Millisecond, 50), pol, Targets{}, st)
	if !st.SystemCPU.Set || st.SystemCPU.Milli != 50 {
		t.Errorf("average %+v after the first 100 ms window, want seeded at its 50m", st.SystemCPU)
	}
	_, st = Decide(obs(time.Second+100*time.Millisecond, 1050), pol, Targets{}, st)
	if want := 50 + (1-math.Exp(-time.Second.Seconds()/SystemCPUSmoothing.Seconds()))*1000; math.Abs(st.SystemCPU.Milli-want) > 0.01 {
		t.Errorf("average %.2fm after a second at 1050m, want %.2fm", st.SystemCPU.Milli, want)
	}
}
