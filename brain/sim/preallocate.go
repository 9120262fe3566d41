package sim

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

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
	var start time.Time
	if opts.Now != nil {
		start = opts.Now()
	}
	run, err := Replay(ctx, w, strategy, seed, opts)
	if err != nil {
		return nil, fmt.Errorf("pre-allocate: %w", err)
	}
	pa := &PreAllocation{HostType: hostType.Name, Placed: len(run.Final.Placements) - len(w.Snapshot.Placements), Plan: run.Decisions}
	live := map[string]bool{}
	for _, p := range run.Final.Placements {
		live[p.ID] = true
	}
	var rest []place.Request
	for _, r := range w.Requests {
		if !live[r.ID] {
			rest = append(rest, r)
		}
	}
	pa.Unplaced = len(rest)
	prof := w.profile(strategy)
	if opts.SampleFeasible > 0 {
		prof.SampleFeasible = opts.SampleFeasible
	}
	names := map[string]bool{}
	for _, h := range run.Final.Hosts {
		names[h.Name] = true
	}
	try := func(k int) ([]DecisionLog, []string, error) {
		snap := place.Snapshot{Hosts: append([]place.Host(nil), run.Final.Hosts...), Placements: run.Final.Placements}
		for i := range k {
			h := hostType
			h.Name = hostType.Name + "-new-" + strconv.Itoa(i)
			if names[h.Name] {
				return nil, nil, fmt.Errorf("hypothetical host %s clashes with an inventory host", h.Name)
			}
			h.Labels = maps.Clone(hostType.Labels)
			h.Capacity = maps.Clone(hostType.Capacity)
			snap.Hosts = append(snap.Hosts, h)
		}
		c, err := place.New(snap, prof)
		if err != nil {
			return nil, nil, err
		}
		var logs []DecisionLog
		var failed []string
		for i, r := range rest {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
			r.Seed = mixSeed(seed^0xa110c, uint64(i))
			d, err := c.Place(r)
			if err != nil {
				return nil, nil, fmt.Errorf("request %s: %w", r.ID, err)
			}
			log := DecisionLog{Request: r.ID, Placed: d.Placed, Host: d.Placement.Host, GPUs: d.Placement.GPUIndices}
			for _, v := range d.Victims {
				log.Victims = append(log.Victims, v.ID)
				// An eviction only moves the shortage elsewhere.
				failed = append(failed, v.ID)
			}
			if !d.Placed {
				log.Host = ""
				if len(d.Rejections) > 0 {
					log.Reason = string(d.Rejections[0].Reason)
				}
				failed = append(failed, r.ID)
			}
			logs = append(logs, log)
		}
		return logs, failed, nil
	}
	if len(rest) > 0 {
		pa.MaxExtraHosts = len(rest)
		var best []DecisionLog
		lo, hi := 0, 1 // fits(lo) is false, fits(hi) unknown
		for {
			logs, failed, err := try(hi)
			if err != nil {
				return nil, fmt.Errorf("pre-allocate: %d extra hosts: %w", hi, err)
			}
			if len(failed) == 0 {
				best = logs
				break
			}
			if hi == pa.MaxExtraHosts {
				pa.ExtraHosts = -1
				pa.NeverFit = failed
				break
			}
			lo, hi = hi, min(2*hi, pa.MaxExtraHosts)
		}
		if best != nil {
			for hi-lo > 1 {
				mid := (lo + hi) / 2
				logs, failed, err := try(mid)
				if err != nil {
					return nil, fmt.Errorf("pre-allocate: %d extra hosts: %w", mid, err)
				}
				if len(failed) == 0 {
					hi, best = mid, logs
				} else {
					lo = mid
				}
			}
			pa.ExtraHosts, pa.ExtraPlan = hi, best
		}
	}
	rep := &Report{Mode: "pre-allocate", Workload: w.Name, Hosts: len(w.Snapshot.Hosts), Requests: len(w.Requests), Runs: []*Run{run}, PreAllocation: pa}
	if opts.Now != nil {
		rep.RunTimeMS = float64(opts.Now().Sub(start).Microseconds()) / 1000
	}
	return rep, nil
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
