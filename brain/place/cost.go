package place

import "math"

// Default penalty of the cost strategy's per-request scorer: the cost
// planner's defaults (brain/plan.DefaultPenalties), CPU above half and
// memory above 80% of a host, steepness 4, weight 1.
const (
	costCPUTarget    = 0.5
	costMemoryTarget = 0.8
	costSteepness    = 4
)

// evalCost scores host hi for the cost strategy, one request at a time:
// the rise of the cost objective (1 for opening an empty host, plus the
// change of the convex penalty above the target averaged over the curve's
// points), then the rise of the host's peaks as shares of capacity (a
// request that fills a valley of the host's curve raises none: day and
// night instances pair up), then the fuller host.
func (st *state) evalCost(hi int, pc *placed) eval {
	h := &st.hosts[hi]
	e := eval{gpu: st.pickGPUBestFit(h, pc)}
	var open float64
	if len(h.pods) == 0 {
		open = 1
	}
	points := max(1, st.prof.CurvePoints)
	var dPen, rise, fill float64
	ci := 0
	for d, v := range pc.demand {
		var pts []int64
		if ci < len(pc.curves) && pc.curves[ci].dim == d {
			pts = pc.curves[ci].pts
			ci++
		}
		c := h.capac[d]
		if c <= 0 || v == 0 && pts == nil {
			continue
		}
		target := math.Inf(1)
		switch st.dims[d] {
		case DimCPU:
			target = costCPUTarget
		case DimMemory:
			target = costMemoryTarget
		}
		inv := 1 / float64(c)
		var before, after int64
		for t := range points {
			old := h.used[d]
			if h.curve[d] != nil {
				old = h.curve[d][t]
			}
			add := v
			if pts != nil {
				add = pts[t]
			}
			before, after = max(before, old), max(after, old+add)
			fill += float64(old) * inv / float64(points)
			dPen += (costPenalty(float64(old+add)*inv, target) - costPenalty(float64(old)*inv, target)) / float64(points)
		}
		rise += float64(after-before) * inv
	}
	e.k1 = -(open + dPen)
	e.k2 = -rise + 1e-3*fill
	e.unit = 1 / (1 + open + dPen)
	return e
}

// costPenalty is exp(k·x) − 1 − k·x above the target, 0 below.
func costPenalty(u, target float64) float64 {
	x := u - target
	if x <= 0 {
		return 0
	}
	return math.Expm1(costSteepness*x) - costSteepness*x
}

// DefaultStrategyFor is the strategy for a cluster of these hosts: the
// GPU-fragmentation packer where there are GPUs, otherwise the
// curve-aware cost strategy (fgd-pack would fill CPU hosts to 100% at
// their peak point, since it only ranks by GPU fragmentation).
func DefaultStrategyFor(hosts []Host) Strategy {
	for _, h := range hosts {
		if h.GPUs > 0 {
			return defaultStrategy(true)
		}
	}
	return defaultStrategy(false)
}

// defaultStrategy is DefaultStrategyFor given whether any host has GPUs;
// placement uses it when neither the request nor the profile names a
// strategy.
func defaultStrategy(gpus bool) Strategy {
	if gpus {
		return StrategyFGDPack
	}
	return StrategyCost
}
