package sim

import (
	"context"
	"fmt"

	"github.com/sluicehq/sluice/brain/place"
)

// Planner places a whole workload at once for the strategies it handles
// (brain/plan's cost planner for place.StrategyCost); Replay then binds
// its choices in arrival order instead of asking the placement core, and
// scores them like any run.
type Planner interface {
	Handles(place.Strategy) bool
	// Plan returns a host per request ("" = not placed) around snap's
	// placements, or nil hosts to leave the workload to the placement
	// core request by request.
	Plan(ctx context.Context, snap place.Snapshot, prof place.Profile, reqs []place.Request, seed uint64) ([]string, error)
}

// placer is how Replay places request i: the placement core, or the
// planner's choice for it bound as it is (Add checks its capacity; the
// run's validator checks every rule at the end). planned is true when a
// whole-batch plan decided every request.
func (o Options) placer(ctx context.Context, c *place.Cluster, w *Workload, strategy place.Strategy, seed uint64) (placeOne func(i int, req place.Request) (place.Decision, error), planned bool, err error) {
	if o.Planner == nil || !o.Planner.Handles(strategy) {
		return func(_ int, req place.Request) (place.Decision, error) { return c.Place(req) }, false, nil
	}
	hosts, err := o.Planner.Plan(ctx, w.Snapshot, o.profile(w, strategy), w.Requests, seed)
	if err != nil {
		return nil, false, err
	}
	if hosts == nil {
		return func(_ int, req place.Request) (place.Decision, error) { return c.Place(req) }, false, nil
	}
	if len(hosts) != len(w.Requests) {
		return nil, false, fmt.Errorf("planner: %d hosts for %d requests", len(hosts), len(w.Requests))
	}
	return func(i int, req place.Request) (place.Decision, error) {
		d := place.Decision{Strategy: strategy}
		if hosts[i] == "" {
			d.Rejections = []place.ReasonCount{{Reason: "not placed by the planner", Hosts: len(w.Snapshot.Hosts)}}
			return d, nil
		}
		p := place.Placement{Request: req, Host: hosts[i]}
		if err := c.Add(p); err != nil {
			return d, fmt.Errorf("planner's choice: %w", err)
		}
		d.Placed, d.Placement = true, p
		return d, nil
	}, true, nil
}
