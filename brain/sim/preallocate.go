package sim

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/brain/place"
)

// PreAllocation is a pre-allocation plan: where the batch goes on the
// inventory, and how many more hosts of one type the rest needs.
type PreAllocation struct {
	HostType string `json:"host_type"`
	Placed   int    `json:"placed"`
	// Unplaced is how many requests did not fit the inventory.
	Unplaced int `json:"unplaced"`
	// Plan is one decision per request on the inventory alone.
	Plan []DecisionLog `json:"plan"`
	// ExtraHosts is the fewest hypothetical hosts of HostType found to
	// take every unplaced request (0 when everything fit); -1 when even
	// MaxExtraHosts were not enough.
	ExtraHosts    int `json:"extra_hosts_needed"`
	MaxExtraHosts int `json:"max_extra_hosts_tried"`
	// ExtraPlan places the unplaced requests with ExtraHosts more hosts.
	ExtraPlan []DecisionLog `json:"extra_plan,omitempty"`
	// NeverFit lists requests that fit no number of extra hosts tried.
	NeverFit []string `json:"never_fit,omitempty"`
}

// PreAllocate places w's requests on w's inventory with strategy and seed,
// then binary-searches the number of hypothetical hosts shaped like
// hostType (named "<name>-new-<i>") that takes every request that did not
// fit. The search assumes more hosts never hurt; it doubles an upper
// bound, at most one host per unplaced request, then bisects.
func PreAllocate(ctx context.Context, w *Workload, strategy place.Strategy, seed uint64, hostType place.Host, opts Options) (*Report, error) {
	elapsed := opts.stopwatch()
	if n := w.unplaceable(); n > 0 {
		// Those instances were bounded by the inventory alone; extra hosts
		// would change the bound, so they cannot be planned here.
		return nil, fmt.Errorf("pre-allocate: %d instances of %s ask for more than the inventory could ever hold (%d); pre-allocate plans for countable batches",
			n, w.Unplaceable[0].App, w.Unplaceable[0].Bound)
	}
	run, err := Replay(ctx, w, strategy, seed, opts)
	if err != nil {
		return nil, fmt.Errorf("pre-allocate: %w", err)
	}
	ex := extraHosts{
		final: run.Final, hostType: hostType, prof: opts.profile(w, strategy), seed: seed,
		rest: unplaced(w.Requests, run.Final),
	}
	pa := &PreAllocation{
		HostType: hostType.Name, Placed: len(run.Final.Placements) - len(w.Snapshot.Placements), Plan: run.Decisions,
		Unplaced: len(ex.rest),
	}
	if err := ex.search(ctx, pa); err != nil {
		return nil, fmt.Errorf("pre-allocate: %w", err)
	}
	rep := &Report{Mode: "pre-allocate", Workload: w.Name, Hosts: len(w.Snapshot.Hosts), Requests: len(w.Requests) + w.unplaceable(), PrePlaced: len(w.Snapshot.Placements), Runs: []*Run{run}, PreAllocation: pa}
	rep.RunTimeMS = elapsed()
	return rep, nil
}

// unplaced lists the requests that have no live placement in final.
func unplaced(reqs []place.Request, final place.Snapshot) []place.Request {
	live := map[string]bool{}
	for _, p := range final.Placements {
		live[p.ID] = true
	}
	var rest []place.Request
	for _, r := range reqs {
		if !live[r.ID] {
			rest = append(rest, r)
		}
	}
	return rest
}

// extraHosts places the requests the inventory could not take (rest) on
// the replay's end state (final) plus some number of hypothetical hosts.
type extraHosts struct {
	final    place.Snapshot
	hostType place.Host
	prof     place.Profile
	seed     uint64
	rest     []place.Request
}

// search finds the fewest extra hosts that take every request of rest and
// fills pa's extra-host fields: it doubles an upper bound, at most one host
// per request, then bisects.
func (ex extraHosts) search(ctx context.Context, pa *PreAllocation) error {
	if len(ex.rest) == 0 {
		return nil
	}
	pa.MaxExtraHosts = len(ex.rest)
	var best []DecisionLog
	lo, hi := 0, 1 // fits(lo) is false, fits(hi) unknown
	for {
		logs, failed, err := ex.try(ctx, hi)
		if err != nil {
			return fmt.Errorf("%d extra hosts: %w", hi, err)
		}
		if len(failed) == 0 {
			best = logs
			break
		}
		if hi == pa.MaxExtraHosts {
			pa.ExtraHosts = -1
			pa.NeverFit = failed
			return nil
		}
		lo, hi = hi, min(2*hi, pa.MaxExtraHosts)
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		logs, failed, err := ex.try(ctx, mid)
		if err != nil {
			return fmt.Errorf("%d extra hosts: %w", mid, err)
		}
		if len(failed) == 0 {
			hi, best = mid, logs
		} else {
			lo = mid
		}
	}
	pa.ExtraHosts, pa.ExtraPlan = hi, best
	return nil
}

// try places rest with k extra hosts and returns the decisions and the
// requests left without a host (failed, or evicted to make room: an
// eviction only moves the shortage elsewhere).
func (ex extraHosts) try(ctx context.Context, k int) ([]DecisionLog, []string, error) {
	snap := place.Snapshot{Hosts: append([]place.Host(nil), ex.final.Hosts...), Placements: ex.final.Placements}
	names := map[string]bool{}
	for _, h := range ex.final.Hosts {
		names[h.Name] = true
	}
	for i := range k {
		h := ex.hostType
		h.Name = ex.hostType.Name + "-new-" + strconv.Itoa(i)
		if names[h.Name] {
			return nil, nil, fmt.Errorf("hypothetical host %s clashes with an inventory host", h.Name)
		}
		h.Labels = maps.Clone(ex.hostType.Labels)
		h.Capacity = maps.Clone(ex.hostType.Capacity)
		snap.Hosts = append(snap.Hosts, h)
	}
	c, err := place.New(snap, ex.prof)
	if err != nil {
		return nil, nil, err
	}
	var logs []DecisionLog
	var failed []string
	for i, r := range ex.rest {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		r.Seed = mixSeed(ex.seed^0xa110c, uint64(i))
		d, err := c.Place(r)
		if err != nil {
			return nil, nil, fmt.Errorf("request %s: %w", r.ID, err)
		}
		log := newDecisionLog(r.ID, d)
		failed = append(failed, log.Victims...)
		if !d.Placed {
			failed = append(failed, r.ID)
		}
		logs = append(logs, log)
	}
	return logs, failed, nil
}

func (pa *PreAllocation) writeText(b *strings.Builder) {
	fmt.Fprintf(b, "\npre-allocation: %d placed on the inventory, %d did not fit\n", pa.Placed, pa.Unplaced)
	switch {
	case pa.Unplaced == 0:
		fmt.Fprintf(b, "no extra hosts needed\n")
	case pa.ExtraHosts < 0:
		fmt.Fprintf(b, "even %d extra %s hosts do not take the rest; never fit: %s\n", pa.MaxExtraHosts, pa.HostType, strings.Join(pa.NeverFit, ", "))
	default:
		fmt.Fprintf(b, "extra %s hosts needed: %d\n", pa.HostType, pa.ExtraHosts)
	}
}
