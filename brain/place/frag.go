package place

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// shapeMix is the expected mix of future requests that fragmentation is
// measured against (FGD's "target workload"): given in the profile, or
// learned from the requests seen so far.
type shapeMix struct {
	fixed bool
	list  []fragShape
	// gen changes whenever list or its weights change; host caches key on it.
	gen uint64
	// needs are the distinct per-device milli-GPU needs of the shapes.
	needs []int32

	// learning state
	counts   map[string]int
	learned  map[string]fragShape
	seen     int
	nextTune int
}

// fragShape is a shape compiled against the cluster's dimensions.
type fragShape struct {
	demand []int64 // only score dimensions are set
	count  int     // whole GPUs
	share  int64   // milli of one GPU
	models []int   // allowed model indexes; nil = any
	any    bool
	weight float64 // normalised: weights sum to 1
	// sparse lists the non-zero demands; need indexes shapeMix.needs (-1
	// for shapes without GPUs).
	sparse []dimAmount
	need   int
}

// maxLearnedShapes bounds the cost of a fragmentation measure when the mix
// is learned: the most popular shapes are kept.
const maxLearnedShapes = 32

func (m *shapeMix) init(st *state, shapes []Shape) error {
	m.gen = 1
	if len(shapes) == 0 {
		m.counts = map[string]int{}
		m.learned = map[string]fragShape{}
		m.nextTune = 1
		return nil
	}
	m.fixed = true
	var total float64
	for i, s := range shapes {
		if s.Weight <= 0 {
			return fmt.Errorf("profile: shape %d: weight %g must be positive", i, s.Weight)
		}
		fs, err := st.compileShape(s.Demand, s.GPU)
		if err != nil {
			return fmt.Errorf("profile: shape %d: %w", i, err)
		}
		fs.weight = s.Weight
		total += s.Weight
		m.list = append(m.list, fs)
	}
	for i := range m.list {
		m.list[i].weight /= total
	}
	m.index()
	return nil
}

func (st *state) compileShape(demand Resources, g GPURequest) (fragShape, error) {
	fs := fragShape{demand: make([]int64, len(st.dims)), count: g.Count, share: g.SharedMilli, any: len(g.Models) == 0}
	for d, v := range demand {
		if v < 0 {
			return fs, fmt.Errorf("demand %s: negative amount %d", d, v)
		}
		if di, ok := st.dimIndex[d]; ok && st.scoreDim[di] {
			fs.demand[di] = v
		}
	}
	if g.Count < 0 || g.SharedMilli < 0 || g.SharedMilli >= GPUMilliPerDevice || (g.Count > 0 && g.SharedMilli > 0) {
		return fs, fmt.Errorf("gpu: bad shape (count %d, shared milli %d)", g.Count, g.SharedMilli)
	}
	for _, name := range g.Models {
		if mi, ok := st.modelIndex[name]; ok {
			fs.models = append(fs.models, mi)
		}
	}
	if !fs.any && len(fs.models) == 0 {
		fs.models = []int{} // allows no model present in the cluster
	}
	return fs, nil
}

// observe learns a request's shape. The mix used for scoring is refreshed
// when the number of requests seen doubles or every 256 requests, so host
// caches survive between refreshes.
func (m *shapeMix) observe(st *state, pc *placed) {
	if m.fixed {
		return
	}
	key := shapeKey(st, pc)
	if _, ok := m.learned[key]; !ok {
		fs, err := st.compileShape(pc.p.Demand, pc.p.GPU)
		if err != nil {
			return // compile has already validated the request
		}
		m.learned[key] = fs
	}
	m.counts[key]++
	m.seen++
	if m.seen >= m.nextTune {
		m.nextTune = min(m.seen*2, m.seen+256)
		m.retune()
	}
}

func (m *shapeMix) retune() {
	keys := make([]string, 0, len(m.counts))
	for k := range m.counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m.counts[keys[i]] != m.counts[keys[j]] {
			return m.counts[keys[i]] > m.counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	if len(keys) > maxLearnedShapes {
		keys = keys[:maxLearnedShapes]
	}
	var total float64
	for _, k := range keys {
		total += float64(m.counts[k])
	}
	m.list = m.list[:0]
	for _, k := range keys {
		fs := m.learned[k]
		fs.weight = float64(m.counts[k]) / total
		m.list = append(m.list, fs)
	}
	m.index()
	m.gen++
}

func shapeKey(st *state, pc *placed) string {
	var b strings.Builder
	for d, v := range pc.demand {
		if st.scoreDim[d] {
			b.WriteString(strconv.FormatInt(v, 10))
		}
		b.WriteByte(',')
	}
	fmt.Fprintf(&b, "g%d/%d", pc.p.GPU.Count, pc.p.GPU.SharedMilli)
	models := slices.Clone(pc.p.GPU.Models)
	sort.Strings(models)
	b.WriteString(strings.Join(models, "|"))
	return b.String()
}

// fragMeasure names a way to measure a host's GPU fragmentation.
type fragMeasure int

const (
	// fragFGD is the FGD paper's measure: a shape that fits the host at
	// all can use every device big enough for it.
	fragFGD fragMeasure = iota
	// fragReach is fragFGD plus the devices a fitting shape cannot reach
	// because the host's other dimensions run out first (see shapeFrag).
	fragReach
	fragMeasures
)

// hostFrag is the host's expected GPU fragmentation in milli-GPUs under
// measure m, cached until the host or the mix changes.
func (st *state) hostFrag(hi int, m fragMeasure) float64 {
	h := &st.hosts[hi]
	if h.fragGen[m] == st.shapes.gen {
		return h.frag[m]
	}
	h.frag[m] = st.fragOf(h, h.used, h.gpu, m)
	h.fragGen[m] = st.shapes.gen
	return h.frag[m]
}

// fragOf measures fragmentation (Weng et al., ATC'23) of a host whose
// usage is used and whose devices have gpu free milli: for each shape in
// the mix, the idle GPU milli that shape could not use — all of it when
// the shape does not fit the host at all (other dimensions, model, or not
// enough devices) or needs no GPU, else the free milli on devices too
// small for it (plus, under fragReach, the devices out of the other
// dimensions' reach) — weighted by the shape's popularity.
func (st *state) fragOf(h *hostState, used []int64, gpu []int32, m fragMeasure) float64 {
	var left int64
	for _, f := range gpu {
		left += int64(f)
	}
	if left == 0 {
		return 0
	}
	// Shapes share few distinct per-device needs: count, once per need,
	// the devices that fit it and the free milli on those that do not.
	needs := st.shapes.needs
	var fitBuf [16]int32
	var smallBuf [16]int64
	fit, small := fitBuf[:0], smallBuf[:0]
	for _, need := range needs {
		var n int32
		var sm int64
		for _, f := range gpu {
			if f >= need {
				n++
			} else {
				sm += int64(f)
			}
		}
		fit, small = append(fit, n), append(small, sm)
	}
	var frag float64
	for si := range st.shapes.list {
		s := &st.shapes.list[si]
		frag += s.weight * shapeFrag(h, used, left, s, fit, small, m == fragReach)
	}
	return frag
}

// shapeFrag is the idle GPU milli shape s cannot use on the host.
//
// With reach it also counts the devices the shape fits but cannot reach:
// the devices could take n instances of the shape (whole-GPU shapes: the
// big enough devices over the count; shared shapes: one per big enough
// device, as FGD counts them), the host's free CPU and memory only k
// (fractional); when k < n, the share 1-k/n of the idle milli the shape
// could use is out of reach. FGD's one-instance test sees a host with
// seven idle GPUs and CPU for two more pods as unfragmented; this sees
// five GPUs stranded, so a CPU-heavy pod goes where CPU is plentiful
// (measured on openb: +0.3..1.6 points of final GPU allocation on the
// five traces over FGD's measure with the same tie-breaks).
func shapeFrag(h *hostState, used []int64, left int64, s *fragShape, fit []int32, small []int64, reach bool) float64 {
	if s.need < 0 {
		return float64(left) // needs no GPU: every idle GPU is lost to it
	}
	if !s.any && !slices.Contains(s.models, h.model) {
		return float64(left)
	}
	want := int32(s.count)
	if s.share > 0 {
		want = 1
	}
	if fit[s.need] < want {
		return float64(left)
	}
	n := float64(fit[s.need])
	if s.count > 0 {
		n /= float64(s.count)
	}
	k := n
	for _, da := range s.sparse {
		free := h.capac[da.dim] - used[da.dim]
		if da.v > free {
			return float64(left)
		}
		// Multiply first: most hosts have room for n, and division is
		// the dearest step of scoring a placement.
		if reach && float64(free) < k*float64(da.v) {
			k = float64(free) / float64(da.v)
		}
	}
	frag := small[s.need]
	if k >= n {
		return float64(frag)
	}
	return float64(frag) + float64(left-frag)*(1-k/n)
}

// index fills each shape's sparse demand and need index and the mix's
// distinct per-device needs.
func (m *shapeMix) index() {
	m.needs = m.needs[:0]
	for i := range m.list {
		s := &m.list[i]
		s.sparse = nil
		for d, v := range s.demand {
			if v > 0 {
				s.sparse = append(s.sparse, dimAmount{dim: d, v: v})
			}
		}
		s.need = -1
		if s.count == 0 && s.share == 0 {
			continue
		}
		need := int32(GPUMilliPerDevice)
		if s.share > 0 {
			need = int32(s.share)
		}
		j := slices.Index(m.needs, need)
		if j < 0 {
			j = len(m.needs)
			m.needs = append(m.needs, need)
		}
		s.need = j
	}
}

type dimAmount struct {
	dim int
	v   int64
}
