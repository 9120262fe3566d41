package sim

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/brain/place"
	"github.com/sluicehq/sluice/brain/trace"
)

// Two billion instances on one 4-CPU host: four are tried, the rest are
// counted as one entry, and the run says so. Memory follows the four.
func TestHugeCountIsCountedNotExpanded(t *testing.T) {
	w, err := FromGeneric(decodeGeneric(t, `version: 1
hosts:
  - {name: h, cpu: 4, memory: 4Gi}
apps:
  - {name: a, cpu: 1, memory: 512Mi}
requests:
  - {app: a, count: 2000000000}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Requests) != 4 || len(w.Unplaceable) != 1 || w.Unplaceable[0].Count != 2000000000-4 {
		t.Fatalf("%d requests, unplaceable %+v; want 4 and 1999999996", len(w.Requests), w.Unplaceable)
	}
	rep, err := Evaluate(context.Background(), w, []place.Strategy{place.StrategyBestFit}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	run := rep.Runs[0]
	if rep.Requests != 2000000000 || run.Placed != 4 || run.Failed != 1999999996 || len(run.Decisions) != 4 {
		t.Fatalf("requests %d placed %d failed %d decision lines %d", rep.Requests, run.Placed, run.Failed, len(run.Decisions))
	}
	if len(run.FailureKinds) != 1 || run.FailureKinds[0] != (ReasonTally{Reason: ReasonBeyondCapacity, Requests: 1999999996}) {
		t.Fatalf("failure kinds %+v", run.FailureKinds)
	}
}

// Instances nothing bounds (no demand) are refused past MaxInstances with
// the limit named.
func TestUnboundedCountIsRefused(t *testing.T) {
	_, err := FromGeneric(decodeGeneric(t, `version: 1
hosts:
  - {name: h, cpu: 4, memory: 4Gi}
apps:
  - {name: a, cpu: 0, memory: 0}
requests:
  - {app: a, count: 2000000000}
`))
	if err == nil || !errors.Is(err, trace.ErrLimit) || !strings.Contains(err.Error(), "requests[0]") || !strings.Contains(err.Error(), "at most 2000000") {
		t.Fatalf("got %v", err)
	}
}

// After a failure, identical requests fail the same way; a request that
// differs in anything but ID and seed is tried again.
func TestSameRequest(t *testing.T) {
	base := place.Request{ID: "a-1", App: "a", Seed: 1, Demand: place.Resources{"cpu": 1000},
		Curves: map[string][]int64{"cpu": {500, 1000}}, Selector: map[string]string{"zone": "a"}}
	same := base
	same.ID, same.Seed = "a-2", 9
	if !sameRequest(&base, &same) {
		t.Error("requests differing in ID and seed only are not the same")
	}
	for name, change := range map[string]func(r *place.Request){
		"demand":   func(r *place.Request) { r.Demand = place.Resources{"cpu": 999} },
		"curve":    func(r *place.Request) { r.Curves = map[string][]int64{"cpu": {1000, 500}} },
		"selector": func(r *place.Request) { r.Selector = nil },
		"priority": func(r *place.Request) { r.Priority = 5 },
		"preempt":  func(r *place.Request) { r.Preempt = true },
		"gpu":      func(r *place.Request) { r.GPU.SharedMilli = 100 },
		"app":      func(r *place.Request) { r.App = "b" },
	} {
		other := base
		change(&other)
		if sameRequest(&base, &other) {
			t.Errorf("%s differs but the requests count as the same", name)
		}
	}
}

func TestReadBoundedNamesTheLimit(t *testing.T) {
	if _, err := readBounded(strings.NewReader("0123456789"), "s.json", 10); err != nil {
		t.Fatalf("10 bytes under a limit of 10: %v", err)
	}
	_, err := readBounded(strings.NewReader("0123456789a"), "s.json", 10)
	if err == nil || !errors.Is(err, trace.ErrLimit) || !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), "s.json") || !strings.Contains(err.Error(), "larger than 10 bytes") {
		t.Fatalf("got %v", err)
	}
}
