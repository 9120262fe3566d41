package cgroup_test

import (
	"context"
	"testing"
	"time"

	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup"
	"github.com/sluicehq/sluice/qos/cgroup/cgrouptest"
)

// With OOMScoreInterval set, the task listing behind oom_score_adj runs at
// most once per interval while the caps are held on every Apply; a changed
// dry-run switch does not wait.
func TestOOMScoreIntervalPacesTheTaskListing(t *testing.T) {
	tree, e, now := pacedV2(t)
	ctx := context.Background()
	if got := statuses(e.Apply(ctx, plan(700, 300<<20, 400<<20))); got != "offline-cpu=applied offline-memory=applied offline-oom-score=unchanged" {
		t.Fatalf("first apply: %s", got)
	}
	must(t, tree.AddProc("/sluice/offline", 101))

	*now = (*now).Add(100 * time.Millisecond)
	if got := statuses(e.Apply(ctx, plan(500, 300<<20, 400<<20))); got != "offline-cpu=applied offline-memory=unchanged" {
		t.Fatalf("apply 100ms later: %s; want the cap held and no task listing", got)
	}
	if v, _ := tree.OOMScoreAdj(101); v != 0 {
		t.Fatalf("pid 101 oom_score_adj %d within the interval, want untouched 0", v)
	}

	*now = (*now).Add(900 * time.Millisecond)
	if got := statuses(e.Apply(ctx, plan(500, 300<<20, 400<<20))); got != "offline-cpu=unchanged offline-memory=unchanged offline-oom-score=applied" {
		t.Fatalf("apply one interval later: %s", got)
	}
	if v, _ := tree.OOMScoreAdj(101); v != qos.OfflineOOMScoreAdj {
		t.Fatalf("pid 101 oom_score_adj %d, want %d", v, qos.OfflineOOMScoreAdj)
	}

	must(t, tree.AddProc("/sluice/offline", 102))
	*now = (*now).Add(100 * time.Millisecond)
	p := plan(500, 300<<20, 400<<20)
	p.DryRun = true
	if got := statuses(e.Apply(ctx, p)); got != "offline-cpu=unchanged offline-memory=unchanged offline-oom-score=dry-run" {
		t.Fatalf("dry run within the interval: %s; a changed dry-run switch lists the tasks at once", got)
	}
}

// A listing reads the score only of tasks the previous one did not hold
// at the offline score; every oomRecheckEvery-th (6th) listing reads them
// all, so a task whose score changed behind the enforcer's back gets the
// offline score again within six intervals.
func TestOOMScoreListingReadsNewTasksAndRechecksAll(t *testing.T) {
	tree, e, now := pacedV2(t)
	ctx := context.Background()
	e.Apply(ctx, plan(700, 300<<20, 400<<20))
	must(t, tree.AddProc("/sluice/offline", 101))
	*now = (*now).Add(time.Second)
	e.Apply(ctx, plan(700, 300<<20, 400<<20)) // listing 2: 101 set
	if v, _ := tree.OOMScoreAdj(101); v != qos.OfflineOOMScoreAdj {
		t.Fatalf("pid 101 oom_score_adj %d, want %d", v, qos.OfflineOOMScoreAdj)
	}
	// 101's score drops behind the enforcer's back; 102 arrives.
	must(t, tree.Proc().WriteFile("/101/oom_score_adj", []byte("0")))
	must(t, tree.AddProc("/sluice/offline", 102))
	listing := 2
	for ; listing < 6; listing++ {
		*now = (*now).Add(time.Second)
		e.Apply(ctx, plan(700, 300<<20, 400<<20))
		if v, _ := tree.OOMScoreAdj(102); v != qos.OfflineOOMScoreAdj {
			t.Fatalf("listing %d: new pid 102 oom_score_adj %d, want %d", listing+1, v, qos.OfflineOOMScoreAdj)
		}
		if v, _ := tree.OOMScoreAdj(101); v != 0 {
			t.Fatalf("listing %d: pid 101 re-read before the full re-check (score %d)", listing+1, v)
		}
	}
	*now = (*now).Add(time.Second)
	e.Apply(ctx, plan(700, 300<<20, 400<<20)) // listing 7: the full re-read
	if v, _ := tree.OOMScoreAdj(101); v != qos.OfflineOOMScoreAdj {
		t.Fatalf("after the full re-read pid 101 oom_score_adj %d, want %d", v, qos.OfflineOOMScoreAdj)
	}
}

// pacedV2 is a v2 enforcer over a fake tree with a one-second
// OOMScoreInterval and a clock the test moves (now).
func pacedV2(t *testing.T) (*cgrouptest.V2, cgroup.Enforcer, *time.Time) {
	t.Helper()
	tree := cgrouptest.NewV2(t, cgrouptest.Options{})
	now := t0
	e, err := cgroup.NewV2(cgroup.Config{
		OfflineParent: "/sluice/offline", PageSize: 4096, Proc: tree.Proc(),
		Now: func() time.Time { return now }, OOMScoreInterval: time.Second,
	}, tree)
	if err != nil {
		t.Fatal(err)
	}
	return tree, e, &now
}
