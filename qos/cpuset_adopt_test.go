package qos

import (
	"maps"
	"slices"
	"testing"
)

func TestAdoptCpusets(t *testing.T) {
	obs := Observation{
		Host: HostSample{CPUs: []int{0, 1, 2, 3}},
		Workloads: []WorkloadSample{
			{ID: "db", Class: ClassOnline, CgroupPath: "/online/db", CpusetMode: CpusetExclusive, CPUsWanted: 2},
			{ID: "cache", Class: ClassOnline, CgroupPath: "/online/cache", CpusetMode: CpusetReserved, CPUsWanted: 1},
			{ID: "web", Class: ClassOnline, CgroupPath: "/online/web", CpusetMode: CpusetExclusive, CPUsWanted: 1},
			{ID: "batch", Class: ClassOffline, CgroupPath: "/offline/batch", CpusetMode: CpusetExclusive, CPUsWanted: 1},
			{ID: "api", Class: ClassOnline, CgroupPath: "/online/api"},
		},
	}
	prev := CpusetState{Active: true, Assigned: map[string]CpusetAssignment{"old": {Mode: CpusetExclusive, CPUs: []int{0}}}}
	prevCopy := CpusetState{Active: true, Assigned: maps.Clone(prev.Assigned)}
	current := map[string][]int{
		"/online/db":     {2, 3},    // adopted: as many CPUs as it asks for
		"/online/cache":  {0},       // CPU 0 is already assigned: left to the decision
		"/online/web":    {0, 1, 2}, // the whole pool, not a dedicated set
		"/offline/batch": {1},       // offline work gets no dedicated CPUs
		"/online/api":    {1},       // shared: nothing to adopt
	}
	got := AdoptCpusets(prev, obs, current)
	want := map[string]CpusetAssignment{"old": {Mode: CpusetExclusive, CPUs: []int{0}}, "db": {Mode: CpusetExclusive, CPUs: []int{2, 3}}}
	if !got.Active || !maps.EqualFunc(got.Assigned, want, func(a, b CpusetAssignment) bool { return a.Mode == b.Mode && slices.Equal(a.CPUs, b.CPUs) }) {
		t.Errorf("adopted %+v, want %+v", got, want)
	}
	if !maps.EqualFunc(prev.Assigned, prevCopy.Assigned, func(a, b CpusetAssignment) bool { return slices.Equal(a.CPUs, b.CPUs) }) {
		t.Error("the previous state was written to")
	}
	// CPUs the host no longer has (hotplug) are not adopted.
	obs.Host.CPUs = []int{0, 1}
	if got := AdoptCpusets(CpusetState{}, obs, current); len(got.Assigned) != 1 || got.Assigned["db"].CPUs != nil {
		t.Errorf("adopted %+v; want only cache's CPU 0, not db's 2-3 the host lacks", got.Assigned)
	}
	// Then a decision keeps the adopted CPUs (no move to the lowest free).
	obs.Host.CPUs = []int{0, 1, 2, 3}
	st := AdoptCpusets(CpusetState{}, obs, map[string][]int{"/online/db": {2, 3}})
	_, next := decideCpusets(obs, DefaultPolicy(), st)
	if a := next.Assigned["db"]; !slices.Equal(a.CPUs, []int{2, 3}) {
		t.Errorf("after adoption db holds %v, want 2-3 (kept, not moved)", a.CPUs)
	}
}
