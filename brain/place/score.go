package place

import (
	"math"
	"math/rand/v2"
)

// eval is one host's rank for one request: k1 then k2, higher wins; unit is
// the score mapped into [0,1] for quantised ranking; gpu is the device a
// shared request takes (-1 otherwise).
type eval struct {
	k1, k2 float64
	unit   float64
	gpu    int
	// fragBefore and fragAfter are set by the fragmentation strategies.
	fragBefore, fragAfter float64
}

// scratch holds buffers reused across evaluations.
type scratch struct {
	used []int64
	gpu  []int32
}

func (st *state) evaluate(hi int, pc *placed, strat Strategy, rng *rand.Rand, sc *scratch) eval {
	h := &st.hosts[hi]
	switch strat {
	case StrategyRandom:
		u := rng.Float64()
		return eval{k1: u, unit: u, gpu: st.pickGPURandom(h, pc, rng)}
	case StrategyFGD, StrategyFGDPack:
		return st.evalFrag(hi, pc, strat, sc)
	case StrategyCost:
		return st.evalCost(hi, pc)
	}
	e := eval{gpu: st.pickGPUBestFit(h, pc)}
	switch strat {
	case StrategyDotProduct:
		var dot float64
		n := 0
		st.eachScoreDim(h, pc, func(req, free, norm float64) {
			dot += (req / norm) * (free / norm)
			n++
		})
		e.unit = 1 - dot/float64(max(n, 1))
	case StrategyBestFit:
		var left float64
		n := 0
		st.eachScoreDim(h, pc, func(req, free, norm float64) {
			left += (free - req) / norm
			n++
		})
		e.unit = 1 - left/float64(max(n, 1))
	case StrategySpread, StrategyStack, StrategyBalanced:
		var sum, sq float64
		n := 0
		st.eachHostDim(h, pc, func(req, free, capac float64) {
			u := (capac - free + req) / capac
			sum += u
			sq += u * u
			n++
		})
		mean := sum / float64(max(n, 1))
		switch strat {
		case StrategySpread:
			e.unit = 1 - mean
		case StrategyStack:
			inUse := 0.0
			if len(h.pods) > 0 {
				inUse = 1
			}
			e.unit = 0.5*mean + 0.5*inUse
		default:
			variance := sq/float64(max(n, 1)) - mean*mean
			e.unit = 1 - math.Sqrt(max(variance, 0))
		}
	}
	e.k1 = e.unit
	return e
}

// eachScoreDim visits the weighed dimensions plus GPU (merged over devices)
// with the request, the host's free amount and the cluster-wide maximum
// capacity used to normalise (as the FGD paper's baselines do).
func (st *state) eachScoreDim(h *hostState, pc *placed, f func(req, free, norm float64)) {
	for d, w := range st.scoreDim {
		if w && st.maxCap[d] > 0 {
			f(float64(pc.demand[d]), float64(h.capac[d]-h.used[d]), float64(st.maxCap[d]))
		}
	}
	if st.maxGPUs > 0 {
		var left int64
		for _, g := range h.gpu {
			left += int64(g)
		}
		f(float64(pc.p.GPU.Milli()), float64(left), float64(st.maxGPUs*GPUMilliPerDevice))
	}
}

// eachHostDim visits the weighed dimensions the host has, plus GPU, with
// the host's own capacity (utilisation-based scorers).
func (st *state) eachHostDim(h *hostState, pc *placed, f func(req, free, capac float64)) {
	for d, w := range st.scoreDim {
		if w && h.capac[d] > 0 {
			f(float64(pc.demand[d]), float64(h.capac[d]-h.used[d]), float64(h.capac[d]))
		}
	}
	if len(h.gpu) > 0 {
		var left int64
		for _, g := range h.gpu {
			left += int64(g)
		}
		f(float64(pc.p.GPU.Milli()), float64(left), float64(len(h.gpu)*GPUMilliPerDevice))
	}
}

// pickGPUBestFit returns the device with the least free share that still
// fits a shared request (lowest index on ties), -1 for other requests.
func (st *state) pickGPUBestFit(h *hostState, pc *placed) int {
	m := int32(pc.p.GPU.SharedMilli)
	if m == 0 {
		return -1
	}
	best := -1
	for i, f := range h.gpu {
		if f >= m && (best < 0 || f < h.gpu[best]) {
			best = i
		}
	}
	return best
}

func (st *state) pickGPURandom(h *hostState, pc *placed, rng *rand.Rand) int {
	m := int32(pc.p.GPU.SharedMilli)
	if m == 0 {
		return -1
	}
	pick, n := -1, 0
	for i, f := range h.gpu {
		if f >= m {
			n++
			if rng.IntN(n) == 0 {
				pick = i
			}
		}
	}
	return pick
}

// wholeGPUs names the lowest-index free devices for a whole-GPU request.
// Which free devices a whole request takes does not change fragmentation:
// free devices are interchangeable.
func wholeGPUs(h *hostState, n int) []int {
	out := make([]int, 0, n)
	for i, f := range h.gpu {
		if len(out) == n {
			break
		}
		if f == GPUMilliPerDevice {
			out = append(out, i)
		}
	}
	return out
}

// evalFrag scores by fragmentation growth: the placement (and, for a
// shared request, the device) that increases the host's expected
// fragmentation the least. Both strategies rank by sigmoid(-growth/1000)
// on 100 steps, as the paper's scheduler plugin does. FGD measures with
// the paper's fragFGD and leaves ties to the tie-break rule. fgd-pack
// measures with fragReach, breaks ties by packing GPUs (the host left
// with the fewest free milli-GPUs wins) and, among devices of a host that
// tie, takes the fuller device.
//
// Why fgd-pack is what it is, measured on openb (10 seeds, final GPU
// allocation %, default/gpushare100/multigpu50/gpuspec33/cpu250):
// published FGD 95.4/86.9/97.2/94.5/93.4; packing tie-breaks on the FGD
// measure 95.33/86.90/97.40/95.08/93.53 (not above on default and
// gpushare100); with fragReach as well 95.75/87.24/97.32/95.62/94.99.
// On openb the cluster runs short of CPU as well as GPUs, and FGD's
// one-instance test cannot see a GPU-dense host's CPU going to one
// CPU-heavy pod. Screened on 5 seeds and not kept: exact growth instead
// of steps (default -0.9), 30..200 steps (80..150 with fragReach; 100 is
// best), a continuous packing term added to growth, CPU-first or
// host-normalised tie-breaks, weighting shapes by GPU demand, and under
// fragReach counting only whole instances (floor) or several shared
// instances per device. Scaling fragReach's extra term by 0.5 (10 seeds)
// trades cpu250 and gpuspec33 (-0.87, -0.12) for multigpu50 (+0.04).
func (st *state) evalFrag(hi int, pc *placed, strat Strategy, sc *scratch) eval {
	h := &st.hosts[hi]
	m := fragFGD
	if strat == StrategyFGDPack {
		m = fragReach
	}
	before := st.hostFrag(hi, m)
	sc.used = append(sc.used[:0], h.used...)
	for d, v := range pc.demand {
		sc.used[d] += v
	}
	e := eval{gpu: -1, fragBefore: before}
	share := int32(pc.p.GPU.SharedMilli)
	switch {
	case share > 0:
		best := math.Inf(1)
		for i, f := range h.gpu {
			if f < share {
				continue
			}
			dup := false // devices with equal free share give equal results
			for j := 0; j < i; j++ {
				if h.gpu[j] == f {
					dup = true
					break
				}
			}
			if dup {
				continue
			}
			sc.gpu = append(sc.gpu[:0], h.gpu...)
			sc.gpu[i] -= share
			after := st.fragOf(h, sc.used, sc.gpu, m)
			better := after < best
			if strat == StrategyFGDPack && after == best && f < h.gpu[e.gpu] {
				better = true // pack into the fuller device
			}
			if better {
				best, e.gpu = after, i
			}
		}
		e.fragAfter = best
	case pc.p.GPU.Count > 0:
		sc.gpu = append(sc.gpu[:0], h.gpu...)
		left := pc.p.GPU.Count
		for i := range sc.gpu {
			if left > 0 && sc.gpu[i] == GPUMilliPerDevice {
				sc.gpu[i] = 0
				left--
			}
		}
		e.fragAfter = st.fragOf(h, sc.used, sc.gpu, m)
	default:
		e.fragAfter = st.fragOf(h, sc.used, h.gpu, m)
	}
	e.unit = 0.5 // sigmoid(0): hosts without GPUs never fragment any
	if growth := e.fragAfter - e.fragBefore; growth != 0 {
		e.unit = 1 / (1 + math.Exp(growth/1000))
	}
	if strat == StrategyFGD {
		e.k1 = e.unit
		return e
	}
	e.k1 = math.Floor(e.unit * fragSteps)
	var gpuLeft int64
	for _, g := range h.gpu {
		gpuLeft += int64(g)
	}
	e.k2 = -float64(gpuLeft - pc.p.GPU.Milli())
	if cpu := st.cpuDim; cpu >= 0 {
		e.k2 -= 1e-6 * float64(h.capac[cpu]-h.used[cpu]-pc.demand[cpu])
	}
	return e
}

// fragSteps is fgd-pack's resolution of sigmoid(-growth/1000): 100 steps
// is one step per ~40 milli-GPU of growth near zero.
const fragSteps = 100
