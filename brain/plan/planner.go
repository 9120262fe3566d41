package plan

import (
	"context"
	"fmt"

	"github.com/sluicehq/sluice/brain/place"
)

// Planner is the cost strategy as a whole-batch placer for the
// simulator: given the cluster (hosts and what runs on them) and the
// requests, it returns a host per request. It places with unit host costs
// and Penalties (nil: DefaultPenalties), keeping what runs where it is.
type Planner struct {
	Penalties []Penalty
	// Iterations is the local search's budget (0: DefaultIterations per
	// container).
	Iterations int
}

// Handles says which strategy the planner places: place.StrategyCost.
func (Planner) Handles(s place.Strategy) bool { return s == place.StrategyCost }

// Plan places reqs around snap's placements; hosts[i] is request i's
// host, "" when it fits nowhere. A workload with GPU requests gets nil
// hosts and no error: the planner does not place GPUs, and the caller
// places request by request. The context is checked while the search
// runs.
func (p Planner) Plan(ctx context.Context, snap place.Snapshot, prof place.Profile, reqs []place.Request, seed uint64) ([]string, error) {
	for _, r := range reqs {
		if r.GPU.Count > 0 || r.GPU.SharedMilli > 0 {
			return nil, nil
		}
	}
	for _, pl := range snap.Placements {
		if pl.GPU.Count > 0 || pl.GPU.SharedMilli > 0 {
			return nil, nil
		}
	}
	in := Input{Hosts: snap.Hosts, Profile: prof, Penalties: p.Penalties}
	for _, pl := range snap.Placements {
		in.Containers = append(in.Containers, pl.Request)
		in.Existing = append(in.Existing, pl.Host)
	}
	for _, r := range reqs {
		in.Containers = append(in.Containers, r)
		in.Existing = append(in.Existing, "")
	}
	m, err := Compile(in)
	if err != nil {
		return nil, fmt.Errorf("cost planner: %w", err)
	}
	res := Solve(m, Options{Seed: seed, Iterations: p.Iterations, Keep: true, Stop: func() bool { return ctx.Err() != nil }})
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cost planner: %w", err)
	}
	out := make([]string, len(reqs))
	for i := range reqs {
		if h := res.State.HostOf(len(snap.Placements) + i); h >= 0 {
			out[i] = m.HostName(h)
		}
	}
	return out, nil
}
