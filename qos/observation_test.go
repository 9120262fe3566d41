package qos_test

import (
	"reflect"
	"testing"

	"github.com/sluicehq/sluice/qos"
)

func TestAggregateClasses(t *testing.T) {
	const gib = 1 << 30
	host := qos.HostSample{CPUCapacityMilli: 8000, CPUUsedMilli: 5000, MemTotalBytes: 32 * gib, MemAvailableBytes: 20 * gib}
	workloads := []qos.WorkloadSample{
		{ID: "web", Class: qos.ClassOnline, CPUUsedMilli: 2000, MemoryUsageBytes: 4 * gib},
		{ID: "api", Class: qos.ClassOnline, CPUUsedMilli: 500, MemoryUsageBytes: 1 * gib},
		{ID: "batch", Class: qos.ClassOffline, CPUUsedMilli: 1500, MemoryUsageBytes: 3 * gib},
		{ID: "sshd", Class: qos.ClassSystem, CPUUsedMilli: 100, MemoryUsageBytes: gib / 4},
		{ID: "odd", Class: "gold", CPUUsedMilli: 100, MemoryUsageBytes: gib / 4},
	}
	got := qos.AggregateClasses(host, workloads, nil)
	want := map[qos.Class]qos.ClassUsage{
		qos.ClassOnline:  {CPUUsedMilli: 2500, MemoryUsageBytes: 5 * gib, Count: 2},
		qos.ClassOffline: {CPUUsedMilli: 1500, MemoryUsageBytes: 3 * gib, Count: 1},
		// sshd + odd (unknown class) = 200 milli, 0.5 GiB, plus what no
		// workload accounts for: 5000-4200 = 800 milli, 12-8.5 = 3.5 GiB.
		qos.ClassSystem: {CPUUsedMilli: 1000, MemoryUsageBytes: 4 * gib, Count: 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("AggregateClasses =\n %+v\nwant\n %+v", got, want)
	}

	// Workloads summing above the host (different windows) leave nothing
	// unaccounted rather than a negative system share.
	over := qos.AggregateClasses(qos.HostSample{CPUUsedMilli: 1000, MemTotalBytes: 4 * gib, MemAvailableBytes: 3 * gib},
		[]qos.WorkloadSample{{Class: qos.ClassOffline, CPUUsedMilli: 1200, MemoryUsageBytes: 2 * gib}}, nil)
	if s := over[qos.ClassSystem]; s != (qos.ClassUsage{}) {
		t.Errorf("system with workloads above host = %+v, want zero", s)
	}

	// No workloads: everything is system, and every class is present.
	empty := qos.AggregateClasses(host, nil, nil)
	if len(empty) != 3 || empty[qos.ClassSystem].CPUUsedMilli != 5000 || empty[qos.ClassSystem].MemoryUsageBytes != 12*gib {
		t.Errorf("no workloads: %+v", empty)
	}

	// The fast tick's exact accounting replaces every class's CPU sum:
	// unclassed host use is counted as system, the workloads' counts and
	// memory stay.
	fast := qos.AggregateClasses(host, workloads, &qos.CPUAccounting{
		HostBusyMilli: 4700, OnlineMilli: 1200, OfflineMilli: 2000, SystemMilli: 300, UnclassedMilli: 1200})
	on, off, sys := fast[qos.ClassOnline], fast[qos.ClassOffline], fast[qos.ClassSystem]
	if on.CPUUsedMilli != 1200 || off.CPUUsedMilli != 2000 || off.Count != 1 || sys.CPUUsedMilli != 1500 {
		t.Errorf("exact accounting: online %+v offline %+v system %+v, want 1200m, 2000m and 300+1200 = 1500m", on, off, sys)
	}
}
