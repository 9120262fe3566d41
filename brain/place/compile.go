package place

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// compile validates a request against the cluster's dimensions and turns
// it into dense vectors. Errors name the request and the field.
func (st *state) compile(req Request) (placed, error) {
	pc := placed{p: Placement{Request: req}, demand: make([]int64, len(st.dims))}
	if req.ID == "" {
		return pc, fmt.Errorf("request: id: empty")
	}
	var buf [8]string
	for _, d := range appendSortedKeys(buf[:0], req.Demand) {
		v := req.Demand[d]
		if v < 0 {
			return pc, fmt.Errorf("request %q: demand %s: negative amount %d", req.ID, d, v)
		}
		di, ok := st.dimIndex[d]
		if !ok {
			if v > 0 && pc.missing == "" {
				pc.missing = d // fits nowhere, but is not malformed
			}
			continue
		}
		pc.demand[di] = v
	}
	if len(req.Curves) > 0 {
		if st.prof.CurvePoints == 0 {
			return pc, fmt.Errorf("request %q: curves: the profile allows no curves (curve points 0)", req.ID)
		}
		for _, d := range appendSortedKeys(buf[:0], req.Curves) {
			pts := req.Curves[d]
			di, ok := st.dimIndex[d]
			if len(pts) != st.prof.CurvePoints {
				return pc, fmt.Errorf("request %q: curve %s: %d points, the profile wants %d", req.ID, d, len(pts), st.prof.CurvePoints)
			}
			var peak int64
			for t, v := range pts {
				if v < 0 {
					return pc, fmt.Errorf("request %q: curve %s: point %d: negative amount %d", req.ID, d, t, v)
				}
				peak = max(peak, v)
			}
			if flat, ok := req.Demand[d]; ok && flat != peak {
				return pc, fmt.Errorf("request %q: demand %s: %d differs from its curve's peak %d", req.ID, d, flat, peak)
			}
			if !ok {
				if peak > 0 && pc.missing == "" {
					pc.missing = d
				}
				continue
			}
			pc.demand[di] = peak
			// The request's own slice: placements keep the request as
			// given (Request says so), and instances of one app usually
			// share one curve, which must not cost a copy per instance.
			pc.curves = append(pc.curves, curveDemand{dim: di, pts: pts})
		}
	}
	g := req.GPU
	switch {
	case g.Count < 0:
		return pc, fmt.Errorf("request %q: gpu count: negative %d", req.ID, g.Count)
	case g.SharedMilli < 0 || g.SharedMilli >= GPUMilliPerDevice:
		return pc, fmt.Errorf("request %q: gpu shared milli: %d outside 0..%d (use count for whole GPUs)", req.ID, g.SharedMilli, GPUMilliPerDevice-1)
	case g.Count > 0 && g.SharedMilli > 0:
		return pc, fmt.Errorf("request %q: gpu: count %d and shared milli %d are exclusive", req.ID, g.Count, g.SharedMilli)
	}
	for _, m := range g.Models {
		if m == "" {
			return pc, fmt.Errorf("request %q: gpu models: empty model name", req.ID)
		}
	}
	if req.Strategy != "" {
		if _, err := ParseStrategy(string(req.Strategy)); err != nil {
			return pc, fmt.Errorf("request %q: %w", req.ID, err)
		}
	}
	return pc, nil
}

func (pc *placed) needsGPU() bool { return pc.p.GPU.Count > 0 || pc.p.GPU.SharedMilli > 0 }

func (pc *placed) modelOK(st *state, h *hostState) bool {
	if len(pc.p.GPU.Models) == 0 {
		return true
	}
	if h.model < 0 {
		return false
	}
	name := st.models[h.model]
	for _, m := range pc.p.GPU.Models {
		if m == name {
			return true
		}
	}
	return false
}

// newRand is the one source of randomness: PCG seeded by two words.
func newRand(a, b uint64) *rand.Rand { return rand.New(rand.NewPCG(a, b)) }

// idHash folds a request ID into a seed word (FNV-1a), so two requests with
// the same seed still draw differently.
func idHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// appendSortedKeys appends m's keys to keys in order: requests
// compile the same way whatever the map's iteration order, so the first
// problem reported is the same too. With a buffer on the caller's stack as
// keys, the usual few dimensions cost no allocation.
func appendSortedKeys[V any](keys []string, m map[string]V) []string {
	n := len(keys)
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys[n:])
	return keys
}
