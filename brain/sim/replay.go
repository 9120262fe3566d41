package sim

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sluicehq/sluice/brain/place"
)

// DimGPU names GPU capacity in reports, in milli-GPUs. It is not a place
// dimension: place counts GPUs as devices.
const DimGPU = "gpu"

// Options tune a simulation.
type Options struct {
	// SampleFeasible bounds the hosts scored per decision
	// (place.Profile.SampleFeasible); 0 keeps the workload's profile.
	SampleFeasible int
	// CurveSamples is how many points the allocation curve gets; default 100.
	CurveSamples int
	// Progress, when set, is called with the run's name ("fgd seed 1"),
	// requests done and total as a run advances (every few hundred
	// requests and at the end). With Parallel > 1 it is called from
	// several goroutines at once.
	Progress func(run string, done, total int)
	// Parallel is how many runs Evaluate replays at once (0 or 1: one at
	// a time). Runs share the workload read-only.
	Parallel int
	// Now, when set, times runs; nil leaves run times out, which keeps
	// reports byte-for-byte reproducible.
	Now func() time.Time
	// Planner, when set, places whole workloads for the strategies it
	// handles (see Planner).
	Planner Planner
}

// profile is w's profile for strategy, with SampleFeasible applied.
func (o Options) profile(w *Workload, strategy place.Strategy) place.Profile {
	prof := w.profile(strategy)
	if o.SampleFeasible > 0 {
		prof.SampleFeasible = o.SampleFeasible
	}
	return prof
}

func (o Options) curveSamples() int {
	if o.CurveSamples <= 0 {
		return 100
	}
	return o.CurveSamples
}

// stopwatch starts timing with o.Now; the returned function gives the
// milliseconds since, or 0 when o.Now is nil (reports stay reproducible).
func (o Options) stopwatch() func() float64 {
	if o.Now == nil {
		return func() float64 { return 0 }
	}
	start := o.Now()
	return func() float64 { return float64(o.Now().Sub(start).Microseconds()) / 1000 }
}

// Run is one replay of a workload under one strategy and seed.
type Run struct {
	Strategy place.Strategy `json:"strategy"`
	Seed     uint64         `json:"seed"`
	Requests int            `json:"requests"`
	Placed   int            `json:"placed"`
	Failed   int            `json:"failed"`
	// Evicted counts placements preempted to make room.
	Evicted int `json:"evicted"`
	// Allocation is, per dimension at the end, "used": per host the peak
	// over the day of the summed curve, summed over hosts, over the
	// cluster's capacity (what the hosts must hold).
	Allocation map[string]float64 `json:"allocation_rate"`
	// Requested is, per dimension at the end, the sum of live placements'
	// peaks over capacity; with curves it exceeds Allocation by what
	// complementary shapes share.
	Requested map[string]float64 `json:"requested_rate"`
	// MeanUsed is, per dimension at the end, the summed curves' mean over
	// the day over capacity.
	MeanUsed map[string]float64 `json:"mean_used_rate"`
	// UtilBand and UtilBandBefore are, for cpu and memory when the
	// workload has curves, the min, median and max utilisation over used
	// hosts at every curve point, at the end and at the start.
	UtilBand       map[string][]BandPoint `json:"util_band,omitempty"`
	UtilBandBefore map[string][]BandPoint `json:"util_band_before,omitempty"`
	// Shapes counts hosts per shape and those used at the start and end.
	Shapes []ShapeUse `json:"host_shapes"`
	// Fragmentation is, per dimension, the share of free capacity that
	// the workload's request mix cannot use: each host's free amount
	// weighted by the share of requests (by count) that do not fit on it.
	Fragmentation map[string]float64 `json:"fragmentation_rate"`
	Hosts         int                `json:"hosts"`
	HostsUsed     int                `json:"hosts_used"`
	// FailureKinds and FailureReasons count failed requests by the reason
	// that rejected the most hosts ("insufficient cpu", "spread app_3 by
	// rack"); kinds fold reasons by their rule ("spread").
	FailureKinds   []ReasonTally `json:"failure_kinds"`
	FailureReasons []ReasonTally `json:"failure_reasons"`
	// FailureRules counts, per rule kind, the failed requests it rejected
	// at least one host for and the hosts it rejected. The placement core
	// files each host under one reason, so a rule that only shuts the
	// hosts with room (a spread, say) shows here, not as the top reason.
	FailureRules []ReasonTally `json:"failure_rules"`
	// Violations are constraints the end state breaks that the start
	// state did not, found by Validate; anything here is a placement bug.
	Violations []Violation    `json:"violations"`
	Curve      []CurvePoint   `json:"curve"`
	RunTimeMS  float64        `json:"run_time_ms,omitempty"`
	HostUtil   []HostUtil     `json:"-"`
	Decisions  []DecisionLog  `json:"-"`
	Final      place.Snapshot `json:"-"`
	// Profile is the profile the run placed with (Final plus Profile is a
	// snapshot file).
	Profile place.Profile `json:"-"`
}

// ReasonTally is a reason and how many failed requests it explains.
type ReasonTally struct {
	Reason   string `json:"reason"`
	Requests int    `json:"requests"`
	// Hosts is the hosts rejected for the reason in those requests.
	Hosts int `json:"hosts"`
}

// CurvePoint is the cluster after Requests arrivals: per dimension, the
// demand arrived so far and the demand placed (both sums of peaks), as
// shares of capacity.
type CurvePoint struct {
	Requests  int                `json:"requests"`
	Arrived   map[string]float64 `json:"arrived"`
	Allocated map[string]float64 `json:"allocated"`
}

// HostUtil is one host's utilisation per dimension at the end.
type HostUtil struct {
	Host string
	Util map[string]float64
}

// DecisionLog is the outcome of one request, for replays that must be
// compared line by line.
type DecisionLog struct {
	Request string   `json:"request"`
	Placed  bool     `json:"placed"`
	Host    string   `json:"host,omitempty"`
	GPUs    []int    `json:"gpus,omitempty"`
	Victims []string `json:"victims,omitempty"`
	Reason  string   `json:"reason,omitempty"`
}

// Replay places w's requests in order on a fresh cluster built from w's
// snapshot, with strategy and seed, and scores the outcome. Request i's
// seed, unless the request carries its own, is derived from seed and i, so
// runs with the same seed are equal.
func Replay(ctx context.Context, w *Workload, strategy place.Strategy, seed uint64, opts Options) (*Run, error) {
	elapsed := opts.stopwatch()
	prof := opts.profile(w, strategy)
	c, err := place.New(w.Snapshot, prof)
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", strategy, err)
	}
	// A whole-batch plan decided every request already: each is bound as
	// planned, none skipped as a repeat of a failed one.
	placeOne, planned, err := opts.placer(ctx, c, w, strategy, seed)
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", strategy, err)
	}
	run := &Run{Strategy: strategy, Seed: seed, Requests: len(w.Requests) + w.unplaceable(), Hosts: len(w.Snapshot.Hosts), Profile: prof}
	acc := newReplayAccount(w.Snapshot, run)
	runName := fmt.Sprintf("%s seed %d", strategy, seed)
	every := max(1, len(w.Requests)/opts.curveSamples())
	// failed is the last decision when it placed nothing: nothing has
	// changed since, so an identical request that follows fails the same
	// way and is counted without being tried.
	var failed *place.Request
	var failedDecision place.Decision
	for i, req := range w.Requests {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("replay %s: %w", strategy, err)
			}
			if opts.Progress != nil {
				opts.Progress(runName, i, len(w.Requests))
			}
		}
		if req.Seed == 0 {
			req.Seed = mixSeed(seed, uint64(i))
		}
		addDemand(acc.arrived, &req, 1)
		if !planned && failed != nil && sameRequest(failed, &w.Requests[i]) {
			acc.record(req.ID, failedDecision)
		} else {
			d, err := placeOne(i, req)
			if err != nil {
				return nil, fmt.Errorf("replay %s: request %s: %w", strategy, req.ID, err)
			}
			acc.record(req.ID, d)
			failed, failedDecision = nil, place.Decision{}
			if !d.Placed {
				failed, failedDecision = &w.Requests[i], d
			}
		}
		if (i+1)%every == 0 || i+1 == len(w.Requests) {
			acc.curvePoint(i + 1)
		}
	}
	if opts.Progress != nil {
		opts.Progress(runName, len(w.Requests), len(w.Requests))
	}
	for _, u := range w.Unplaceable {
		run.Failed += u.Count
		countN(acc.reasons, ReasonBeyondCapacity, u.Count)
		countN(acc.kinds, ReasonBeyondCapacity, u.Count)
		countN(acc.rules, ReasonBeyondCapacity, u.Count)
	}
	acc.finish(c, w, prof)
	run.RunTimeMS = elapsed()
	return run, nil
}

// replayAccount is what Replay keeps while requests arrive: demand arrived
// and placed per dimension, failures by reason, and the apps that lost
// instances to preemption.
type replayAccount struct {
	run                   *Run
	capacity              map[string]int64
	arrived, allocated    map[string]int64
	reasons, kinds, rules map[string]ReasonTally
	evictedApps           map[string]bool
}

// newReplayAccount starts from snap's placements, arrived and placed alike,
// and the curve's first point.
func newReplayAccount(snap place.Snapshot, run *Run) *replayAccount {
	a := &replayAccount{
		run:         run,
		capacity:    totalCapacity(snap.Hosts),
		allocated:   map[string]int64{},
		reasons:     map[string]ReasonTally{},
		kinds:       map[string]ReasonTally{},
		rules:       map[string]ReasonTally{},
		evictedApps: map[string]bool{},
	}
	for i := range snap.Placements {
		addDemand(a.allocated, &snap.Placements[i].Request, 1)
	}
	a.arrived = maps.Clone(a.allocated)
	a.curvePoint(0)
	return a
}

func (a *replayAccount) curvePoint(requests int) {
	a.run.Curve = append(a.run.Curve, curvePoint(requests, a.arrived, a.allocated, a.capacity))
}

// record counts one decision and logs it.
func (a *replayAccount) record(id string, d place.Decision) {
	log := newDecisionLog(id, d)
	if d.Placed {
		a.run.Placed++
		addDemand(a.allocated, &d.Placement.Request, 1)
		for k := range d.Victims {
			a.evictedApps[d.Victims[k].App] = true
			addDemand(a.allocated, &d.Victims[k].Request, -1)
		}
		a.run.Evicted += len(d.Victims)
	} else {
		a.run.Failed++
		r, hosts := "no host examined", 0
		if len(d.Rejections) > 0 {
			r, hosts = string(d.Rejections[0].Reason), d.Rejections[0].Hosts
		}
		log.Reason = r
		count(a.reasons, r, hosts)
		count(a.kinds, reasonKind(r), hosts)
		perKind := map[string]int{}
		for _, rc := range d.Rejections {
			perKind[reasonKind(string(rc.Reason))] += rc.Hosts
		}
		for k, n := range perKind {
			count(a.rules, k, n)
		}
	}
	a.run.Decisions = append(a.run.Decisions, log)
}

// finish scores the end state: failure tallies, new constraint violations,
// accounting against the cluster's own, allocation, utilisation and
// fragmentation.
func (a *replayAccount) finish(c *place.Cluster, w *Workload, prof place.Profile) {
	run := a.run
	run.FailureReasons = tally(a.reasons)
	run.FailureKinds = tally(a.kinds)
	run.FailureRules = tally(a.rules)
	run.Final = c.Snapshot()
	run.Violations = nil
	for _, v := range newViolations(Validate(w.Snapshot, prof), Validate(run.Final, prof)) {
		// Spread holds at each placement; evicting an instance later can
		// unbalance its app, as topology spread allows, so skew is only
		// a violation for apps that lost none.
		if v.Rule == "spread" && a.evictedApps[v.App] {
			continue
		}
		run.Violations = append(run.Violations, v)
	}
	usage := c.Usage()
	end := measure(run.Final, prof.CurvePoints)
	run.Violations = append(run.Violations, checkAccounting(usage, a.allocated, end)...)
	run.Requested = shares(end.requested, a.capacity)
	run.Allocation = shares(end.used, a.capacity)
	run.MeanUsed = sharesF(end.mean, a.capacity)
	run.HostUtil, run.HostsUsed = end.hostUtil, end.hostsUsed
	run.UtilBand = end.utilBand(run.Final, prof.CurvePoints)
	run.UtilBandBefore = measure(w.Snapshot, prof.CurvePoints).utilBand(w.Snapshot, prof.CurvePoints)
	run.Shapes = shapeUse(w.Snapshot, run.Final)
	run.Fragmentation = fragmentation(run.Final, w.Requests, prof.CurvePoints)
	if usage.GPUMilliCapacity > usage.GPUMilliAllocated {
		run.Fragmentation[DimGPU] = usage.GPUMilliFragmented / float64(usage.GPUMilliCapacity-usage.GPUMilliAllocated)
	}
}

// newDecisionLog is d as a log line for request id; Reason is the reason
// that rejected the most hosts when d failed.
func newDecisionLog(id string, d place.Decision) DecisionLog {
	log := DecisionLog{Request: id, Placed: d.Placed}
	for _, v := range d.Victims {
		log.Victims = append(log.Victims, v.ID)
	}
	if d.Placed {
		log.Host, log.GPUs = d.Placement.Host, d.Placement.GPUIndices
	} else if len(d.Rejections) > 0 {
		log.Reason = string(d.Rejections[0].Reason)
	}
	return log
}

// mixSeed derives a request's seed (splitmix64 of seed and index).
func mixSeed(seed, i uint64) uint64 {
	z := seed + (i+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func totalCapacity(hosts []place.Host) map[string]int64 {
	c := map[string]int64{}
	for _, h := range hosts {
		for d, v := range h.Capacity {
			c[d] += v
		}
		if h.GPUs > 0 {
			c[DimGPU] += int64(h.GPUs) * place.GPUMilliPerDevice
		}
	}
	return c
}

func addDemand(acc map[string]int64, r *place.Request, sign int64) {
	for d := range r.Demand {
		acc[d] += sign * peakOf(r, d)
	}
	for d := range r.Curves {
		if _, ok := r.Demand[d]; !ok {
			acc[d] += sign * peakOf(r, d)
		}
	}
	if m := r.GPU.Milli(); m > 0 {
		acc[DimGPU] += sign * m
	}
}

func peakOf(r *place.Request, dim string) int64 {
	p := place.Placement{Request: *r}
	return peak(&p, dim)
}

func shares(v, capacity map[string]int64) map[string]float64 {
	out := map[string]float64{}
	for d, c := range capacity {
		if c > 0 {
			out[d] = float64(v[d]) / float64(c)
		}
	}
	return out
}

func sharesF(v map[string]float64, capacity map[string]int64) map[string]float64 {
	out := map[string]float64{}
	for d, c := range capacity {
		if c > 0 {
			out[d] = v[d] / float64(c)
		}
	}
	return out
}

func curvePoint(n int, arrived, allocated, capacity map[string]int64) CurvePoint {
	return CurvePoint{Requests: n, Arrived: shares(arrived, capacity), Allocated: shares(allocated, capacity)}
}

// reasonKind folds a reason to its rule where the reason names an app,
// group or label ("spread app_3 by rack" -> "spread", "quota team-a cpu"
// -> "quota"); fixed reasons ("insufficient cpu", "no gpu with enough
// free share") stay as they are.
func reasonKind(r string) string {
	first, _, _ := strings.Cut(r, " ")
	switch first {
	case "selector", "quota", "spread", "anti-affinity":
		return first
	}
	return r
}

// countN counts n failed requests for reason, rejecting no host one by
// one (they were not tried).
func countN(m map[string]ReasonTally, reason string, n int) {
	t := m[reason]
	t.Reason = reason
	t.Requests += n
	m[reason] = t
}

// sameRequest is true when b would meet the same fate as a on an unchanged
// cluster: everything but the ID and seed is equal (feasibility does not
// depend on them).
func sameRequest(a, b *place.Request) bool {
	return a.App == b.App && a.Group == b.Group && a.Priority == b.Priority && a.Preempt == b.Preempt &&
		a.Strategy == b.Strategy && a.GPU.Count == b.GPU.Count && a.GPU.SharedMilli == b.GPU.SharedMilli &&
		slices.Equal(a.GPU.Models, b.GPU.Models) && maps.Equal(a.Demand, b.Demand) && maps.Equal(a.Selector, b.Selector) &&
		maps.EqualFunc(a.Curves, b.Curves, slices.Equal)
}

func count(m map[string]ReasonTally, reason string, hosts int) {
	t := m[reason]
	t.Reason = reason
	t.Requests++
	t.Hosts += hosts
	m[reason] = t
}

func tally(m map[string]ReasonTally) []ReasonTally {
	out := make([]ReasonTally, 0, len(m))
	for _, t := range m {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Requests != out[j].Requests {
			return out[i].Requests > out[j].Requests
		}
		if out[i].Hosts != out[j].Hosts {
			return out[i].Hosts > out[j].Hosts
		}
		return out[i].Reason < out[j].Reason
	})
	return out
}

type shape struct {
	demand map[string]int64
	weight float64
}

// fragmentation weighs each host's free capacity by the share of the
// request mix (the workload's requests, by count) that cannot fit there.
func fragmentation(snap place.Snapshot, reqs []place.Request, points int) map[string]float64 {
	index := map[string]int{}
	var mix []shape
	for i := range reqs {
		r := &reqs[i]
		d := map[string]int64{}
		for dim := range r.Demand {
			d[dim] = peakOf(r, dim)
		}
		for dim := range r.Curves {
			d[dim] = peakOf(r, dim)
		}
		key := fmt.Sprint(d)
		k, ok := index[key]
		if !ok {
			k = len(mix)
			index[key] = k
			mix = append(mix, shape{demand: d})
		}
		mix[k].weight++
	}
	byHost := placementsByHost(snap)
	free := map[string]float64{}
	frag := map[string]float64{}
	total := float64(len(reqs))
	for _, h := range snap.Hosts {
		load := hostLoad(byHost[h.Name], points)
		var unfit float64
		for _, s := range mix {
			for dim, v := range s.demand {
				if v > h.Capacity[dim]-load[dim] {
					unfit += s.weight
					break
				}
			}
		}
		for dim, c := range h.Capacity {
			f := float64(max(0, c-load[dim]))
			free[dim] += f
			if total > 0 {
				frag[dim] += f * unfit / total
			}
		}
	}
	out := map[string]float64{}
	for dim, f := range free {
		if f > 0 {
			out[dim] = frag[dim] / f
		}
	}
	return out
}
