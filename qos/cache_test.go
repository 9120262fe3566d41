package qos

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/rdt"
	"github.com/sluicehq/sluice/rdt/resctrltest"
)

// cacheObs is an observation on an Intel L3+MB host (11 ways, MBA in 10%
// steps) where offline holds most of the memory bandwidth, with online's
// run-queue p99 at runq.
func cacheObs(at time.Duration, runq time.Duration) Observation {
	obs := hostObs(at, 8000, 16<<30, map[Class]ClassUsage{
		ClassOnline: {RunqLatency: &LatencySummary{P99: runq, Count: 1000}},
	},
		WorkloadSample{ID: "web", Class: ClassOnline, Priority: 5, CgroupPath: "/online/web"},
		WorkloadSample{ID: "batch", Class: ClassOffline, Priority: 1, CgroupPath: "/sluice/offline/batch"},
	)
	obs.Cache = &CacheSample{Hardware: resctrltest.IntelL3MB(), Domains: map[int]map[string]rdt.Counters{0: {
		rdt.GroupOffline: {TotalBytesPerSec: 9e9, OccupancyBytes: 20 << 20},
		rdt.GroupOnline:  {TotalBytesPerSec: 1e9, OccupancyBytes: 5 << 20},
	}}}
	return obs
}

func cachePolicy() Policy {
	pol := DefaultPolicy()
	pol.RDT.OnlineLatencyTarget = 5 * time.Millisecond
	return pol
}

func group(t *testing.T, p rdt.Plan, name string) rdt.GroupIntent {
	t.Helper()
	for _, g := range p.Groups {
		if g.Group == name {
			return g
		}
	}
	t.Fatalf("plan has no group %q: %+v", name, p.Groups)
	return rdt.GroupIntent{}
}

// Decide runs the cache controller on the observation: online's run-queue
// p99 above the rdt target, with offline holding the bandwidth, cuts
// offline to its floors (2 of 11 ways, MB 10) and gives online the rest;
// the workloads' cgroups are placed in their classes' groups.
func TestDecideCutsOfflineCacheOnOnlineHarm(t *testing.T) {
	pol := cachePolicy()
	plan, st := Decide(cacheObs(0, 9*time.Millisecond), pol, Targets{}, State{})
	off, on := group(t, plan.Cache, rdt.GroupOffline), group(t, plan.Cache, rdt.GroupOnline)
	if got, want := off.Schemata.String(), "L3:0=3\nMB:0=10\n"; got != want {
		t.Errorf("offline schemata %q, want %q", got, want)
	}
	if got, want := on.Schemata.String(), "L3:0=7fc\nMB:0=100\n"; got != want {
		t.Errorf("online schemata %q, want %q", got, want)
	}
	if off.Reason.Kind != rdt.ReasonHarm || off.Reason.Latency != 9*time.Millisecond {
		t.Errorf("offline reason %+v, want online-harmed at 9ms", off.Reason)
	}
	if !slicesEqual(off.Cgroups, "/sluice/offline/batch") || !slicesEqual(on.Cgroups, "/online/web") {
		t.Errorf("cgroups offline %q online %q", off.Cgroups, on.Cgroups)
	}
	if st.Cache.Offline.Ways[0] != 2 || st.Cache.Offline.MB[0] != 10 {
		t.Errorf("cache state %+v, want offline at 2 ways, MB 10", st.Cache.Offline)
	}
	var words []string
	for _, i := range plan.Intents() {
		if i.Kind == IntentCacheGroup {
			words = append(words, i.Target+" "+i.Value)
		}
	}
	if got := strings.Join(words, " | "); !strings.Contains(got, "sluice-offline L3:0=3; MB:0=10; tasks of 1 cgroup(s)") {
		t.Errorf("cache intents %q lack offline's", got)
	}
}

func slicesEqual(got []string, want ...string) bool {
	return strings.Join(got, ",") == strings.Join(want, ",")
}

// An application latency, once a source reports one, is the judge instead
// of the run-queue p99: calm requests overrule a busy run queue.
func TestDecideCacheJudgesByApplicationLatencyWhenKnown(t *testing.T) {
	obs := cacheObs(0, 9*time.Millisecond)
	obs.Cache.AppLatencyP99 = time.Millisecond
	plan, _ := Decide(obs, cachePolicy(), Targets{}, State{})
	off := group(t, plan.Cache, rdt.GroupOffline)
	if off.Reason.Latency != time.Millisecond || off.Reason.Kind == rdt.ReasonHarm {
		t.Errorf("reason %+v, want judged by the 1ms application p99, not harmed", off.Reason)
	}
	if got := off.Schemata.String(); got != "L3:0=1f\nMB:0=50\n" {
		t.Errorf("offline schemata %q, want its ceilings", got)
	}
}

// Without resctrl (no Cache in the observation) or with the section off,
// the plan has no cache intents and the state forgets the controller.
func TestDecideCacheNeedsResctrlAndThePolicy(t *testing.T) {
	pol := cachePolicy()
	obs := cacheObs(0, 9*time.Millisecond)
	obs.Cache = nil
	if plan, st := Decide(obs, pol, Targets{}, State{}); len(plan.Cache.Groups) != 0 || st.Cache.Offline.Ways != nil {
		t.Errorf("no resctrl: cache plan %+v state %+v, want none", plan.Cache, st.Cache)
	}
	pol.RDT.Enabled = false
	if plan, _ := Decide(cacheObs(0, 9*time.Millisecond), pol, Targets{}, State{}); len(plan.Cache.Groups) != 0 {
		t.Errorf("rdt disabled: cache plan %+v, want none", plan.Cache)
	}
	pol = cachePolicy()
	pol.DryRun = true
	if plan, _ := Decide(cacheObs(0, 9*time.Millisecond), pol, Targets{}, State{}); !plan.Cache.DryRun {
		t.Error("dry-run policy: the cache plan is not dry-run")
	}
}

// Plan.Equal sees a cache change alone, so the agent does not skip a plan
// whose only change is offline's ways.
func TestPlanEqualComparesCache(t *testing.T) {
	pol := cachePolicy()
	harmed, _ := Decide(cacheObs(0, 9*time.Millisecond), pol, Targets{}, State{})
	again, _ := Decide(cacheObs(0, 9*time.Millisecond), pol, Targets{}, State{})
	if !harmed.Equal(again) {
		t.Error("the same decision twice is not Equal")
	}
	pol.RDT.OnlineLatencyTarget = 0 // static: offline at its ceilings
	static, _ := Decide(cacheObs(0, 9*time.Millisecond), pol, Targets{}, State{})
	static.OfflineCPU, static.OfflineMemory = harmed.OfflineCPU, harmed.OfflineMemory
	if harmed.Equal(static) {
		t.Error("plans that differ only in offline's cache ways are Equal")
	}
}

// A policy impossible on the host's resctrl hardware is a policy error
// with lines: the field's own line, the llc alias's line, the rdt
// section's line for a default value, no line when nothing was written.
func TestParsePolicyForChecksResctrlHardware(t *testing.T) {
	twoBits := resctrltest.IntelTwoSocket() // min_cbm_bits 2
	minMB20 := resctrltest.IntelL3MB()
	minMB20.MB.Min = 20
	for _, tc := range []struct {
		name string
		hw   rdt.Hardware
		file string
		want string
	}{
		{"field line", twoBits, "version: 1\nrdt:\n  offline:\n    waysFloor: 1\n",
			"f.yaml:4: rdt.offline.waysFloor: 1 ways is 1 ways, fewer than the hardware's min_cbm_bits 2 (on this host's resctrl hardware)"},
		{"default under the section", minMB20, "version: 1\nrdt:\n  enabled: true\n",
			"f.yaml:2: rdt.offline.mbFloor: 10% is 10, below the hardware's min_bandwidth 20 (on this host's resctrl hardware)"},
		{"default, no section", minMB20, "version: 1\n",
			"f.yaml: rdt.offline.mbFloor: 10% is 10, below the hardware's min_bandwidth 20 (on this host's resctrl hardware)"},
		{"llc alias", resctrltest.IntelL3(), "version: 1\nllc:\n  offlineWaysMax: 60%\n",
			"f.yaml:3: rdt.offline.waysCeiling: 60% of ways (6 ways) plus online.waysFloor 50% of ways (6 ways) is more than the cache's 11 ways (on this host's resctrl hardware)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParsePolicy("f.yaml", []byte(tc.file)); err != nil {
				t.Fatalf("without hardware: %v", err)
			}
			_, err := ParsePolicyFor("f.yaml", []byte(tc.file), &tc.hw)
			var pe *PolicyError
			if !errors.As(err, &pe) || err.Error() != tc.want {
				t.Errorf("err %v, want the policy error %q", err, tc.want)
			}
		})
	}
	hw := resctrltest.IntelL3MB()
	if _, err := ParsePolicyFor("f.yaml", DefaultPolicyYAML, &hw); err != nil {
		t.Errorf("the default policy on an Intel L3+MB host: %v", err)
	}
}

// A plan with cache groups survives the /state round trip (sluicectl
// decodes it): schemata text reads back to the same values.
func TestCachePlanJSONRoundTrip(t *testing.T) {
	plan, st := Decide(cacheObs(0, 9*time.Millisecond), cachePolicy(), Targets{}, State{})
	data, err := json.Marshal(struct {
		Plan  Plan  `json:"plan"`
		State State `json:"state"`
	}{plan, st})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"schemata":"L3:0=3\nMB:0=10\n"`) {
		t.Errorf("JSON lacks offline's schemata text: %.600s", data)
	}
	var back struct {
		Plan  Plan  `json:"plan"`
		State State `json:"state"`
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Plan.Equal(plan) || !reflect.DeepEqual(back.Plan.Intents(), plan.Intents()) {
		t.Errorf("cache plan changed in the round trip:\n%+v\nwant\n%+v", back.Plan.Cache, plan.Cache)
	}
	if !reflect.DeepEqual(back.State.Cache.Offline, st.Cache.Offline) {
		t.Errorf("cache state %+v after the round trip, want %+v", back.State.Cache.Offline, st.Cache.Offline)
	}
}
