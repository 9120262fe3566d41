package sim

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/sluicehq/sluice/brain/place"
)

// With demand curves a cluster's "allocation" is two different numbers,
// and the reports name both:
//
//   - requested: the sum of every placement's peak, what a scheduler
//     that ignores the shape of the day would have to reserve;
//   - used: per host, the peak over the day of the summed curve, summed
//     over hosts; what the hosts must actually hold (day and night work
//     on one host share its capacity).
//
// Mean is the summed curve's mean over the day, summed over hosts. Without
// curves the three agree.

// totals is a placement state measured per dimension (DimGPU in milli-GPUs,
// counted flat).
type totals struct {
	requested map[string]int64
	used      map[string]int64
	mean      map[string]float64
	hostUtil  []HostUtil
	hostsUsed int
	// curves[h][dim] is host h's summed demand at every point.
	curves []map[string][]int64
}

// measure sums snap's placements per host at every curve point (flat
// demands count at every point; points 0 is one point).
func measure(snap place.Snapshot, points int) totals {
	t := totals{requested: map[string]int64{}, used: map[string]int64{}, mean: map[string]float64{}}
	byHost := placementsByHost(snap)
	t.curves = make([]map[string][]int64, len(snap.Hosts))
	t.hostUtil = make([]HostUtil, 0, len(snap.Hosts))
	for hi, h := range snap.Hosts {
		ps := byHost[h.Name]
		if len(ps) > 0 {
			t.hostsUsed++
		}
		curves := hostCurves(ps, points)
		t.curves[hi] = curves
		load := place.Resources{}
		for dim, c := range curves {
			top, sum := int64(0), int64(0)
			for _, v := range c {
				top = max(top, v)
				sum += v
			}
			load[dim] = top
			t.used[dim] += top
			t.mean[dim] += float64(sum) / float64(len(c))
		}
		for _, p := range ps {
			for dim := range p.Demand {
				t.requested[dim] += peak(p, dim)
			}
			for dim := range p.Curves {
				if _, ok := p.Demand[dim]; !ok {
					t.requested[dim] += peak(p, dim)
				}
			}
			if m := p.GPU.Milli(); m > 0 {
				load[DimGPU] += m
				t.requested[DimGPU] += m
				t.used[DimGPU] += m
				t.mean[DimGPU] += float64(m)
			}
		}
		t.hostUtil = append(t.hostUtil, HostUtil{Host: h.Name, Util: shares(load, hostCapacity(&h))})
	}
	return t
}

func placementsByHost(snap place.Snapshot) map[string][]*place.Placement {
	byHost := make(map[string][]*place.Placement, len(snap.Hosts))
	for i := range snap.Placements {
		p := &snap.Placements[i]
		byHost[p.Host] = append(byHost[p.Host], p)
	}
	return byHost
}

// hostCapacity is h's capacity per dimension, GPUs in milli-GPUs.
func hostCapacity(h *place.Host) place.Resources {
	c := make(place.Resources, len(h.Capacity)+1)
	for d, v := range h.Capacity {
		c[d] = v
	}
	if h.GPUs > 0 {
		c[DimGPU] = int64(h.GPUs) * place.GPUMilliPerDevice
	}
	return c
}

// hostCurves is, per dimension, the sum of what ps demand at each of
// max(points, 1) points; a flat demand counts at every point.
func hostCurves(ps []*place.Placement, points int) map[string][]int64 {
	n := max(points, 1)
	out := map[string][]int64{}
	curve := func(dim string) []int64 {
		c, ok := out[dim]
		if !ok {
			c = make([]int64, n)
			out[dim] = c
		}
		return c
	}
	for _, p := range ps {
		for dim, v := range p.Demand {
			if _, ok := p.Curves[dim]; ok {
				continue
			}
			c := curve(dim)
			for i := range c {
				c[i] += v
			}
		}
		for dim, pts := range p.Curves {
			c := curve(dim)
			for i := range min(len(pts), n) {
				c[i] += pts[i]
			}
		}
	}
	return out
}

// hostLoad is, per dimension, the peak over the day of the sum of what the
// placements demand.
func hostLoad(ps []*place.Placement, points int) place.Resources {
	load := place.Resources{}
	for dim, c := range hostCurves(ps, points) {
		load[dim] = slices.Max(c)
	}
	return load
}

// checkAccounting compares like with like: the placement core's own
// allocation (per host, the peak of the summed curve) with the same
// figure recomputed from the end state, and the sum of peaks the
// simulator kept from the decisions with the one the end state holds.
func checkAccounting(u place.Usage, fromDecisions map[string]int64, end totals) []Violation {
	var out []Violation
	for _, d := range sortedDims(u.Allocated) {
		if u.Allocated[d] != end.used[d] {
			out = append(out, Violation{Rule: "accounting", Detail: fmt.Sprintf("place reports %d %s used (peak of the summed curve per host), the end state holds %d", u.Allocated[d], d, end.used[d])})
		}
	}
	if u.GPUMilliAllocated != end.used[DimGPU] {
		out = append(out, Violation{Rule: "accounting", Detail: fmt.Sprintf("place reports %d milli-GPUs allocated, the end state holds %d", u.GPUMilliAllocated, end.used[DimGPU])})
	}
	dims := map[string]bool{}
	for d := range fromDecisions {
		dims[d] = true
	}
	for d := range end.requested {
		dims[d] = true
	}
	for _, d := range sortedKeys(dims) {
		if fromDecisions[d] != end.requested[d] {
			out = append(out, Violation{Rule: "accounting", Detail: fmt.Sprintf("decisions add up to %d %s requested (sum of peaks), the end state holds %d", fromDecisions[d], d, end.requested[d])})
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// BandPoint is the spread of host utilisation at one curve point, over the
// hosts that run anything.
type BandPoint struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

// utilBand is, per dimension with curves, the min, median and max
// utilisation over used hosts at every point.
func (t totals) utilBand(snap place.Snapshot, points int) map[string][]BandPoint {
	if points == 0 {
		return nil
	}
	out := map[string][]BandPoint{}
	for _, dim := range []string{place.DimCPU, place.DimMemory} {
		band := make([]BandPoint, points)
		vals := make([]float64, 0, len(snap.Hosts))
		for i := range points {
			vals = vals[:0]
			for hi := range snap.Hosts {
				c := t.curves[hi][dim]
				capac := snap.Hosts[hi].Capacity[dim]
				if c == nil || capac <= 0 {
					continue
				}
				vals = append(vals, float64(c[i])/float64(capac))
			}
			if len(vals) == 0 {
				return nil
			}
			slices.Sort(vals)
			band[i] = BandPoint{Min: vals[0], Median: vals[len(vals)/2], Max: vals[len(vals)-1]}
		}
		out[dim] = band
	}
	return out
}

// ShapeUse counts the hosts of one shape (capacity, GPUs and model) and
// how many run anything at the start and at the end.
type ShapeUse struct {
	Shape string `json:"shape"`
	Hosts int    `json:"hosts"`
	// UsedBefore and UsedAfter count hosts running at least one placement.
	UsedBefore int `json:"used_before"`
	UsedAfter  int `json:"used_after"`
}

// shapeUse groups hosts by shape, in order of first appearance.
func shapeUse(start, end place.Snapshot) []ShapeUse {
	var out []ShapeUse
	index := map[string]int{}
	before, after := placementsByHost(start), placementsByHost(end)
	for i := range end.Hosts {
		h := &end.Hosts[i]
		name := shapeName(h)
		k, ok := index[name]
		if !ok {
			k = len(out)
			index[name] = k
			out = append(out, ShapeUse{Shape: name})
		}
		out[k].Hosts++
		if len(before[h.Name]) > 0 {
			out[k].UsedBefore++
		}
		if len(after[h.Name]) > 0 {
			out[k].UsedAfter++
		}
	}
	return out
}

// shapeName names a host's capacity: "cpu 96, memory 384Gi, gpu 8 V100".
func shapeName(h *place.Host) string {
	var parts []string
	for _, d := range sortedDims(h.Capacity) {
		v := h.Capacity[d]
		switch d {
		case place.DimCPU:
			parts = append(parts, fmt.Sprintf("cpu %g", float64(v)/1000))
		case place.DimMemory, place.DimDisk:
			parts = append(parts, fmt.Sprintf("%s %s", d, bytesText(v)))
		default:
			parts = append(parts, fmt.Sprintf("%s %d", d, v))
		}
	}
	if h.GPUs > 0 {
		parts = append(parts, fmt.Sprintf("gpu %d %s", h.GPUs, h.GPUModel))
	}
	return strings.Join(parts, ", ")
}

func bytesText(v int64) string {
	for _, u := range []struct {
		s string
		m int64
	}{{"Ti", 1 << 40}, {"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}} {
		if v >= u.m && v%u.m == 0 {
			return fmt.Sprintf("%d%s", v/u.m, u.s)
		}
	}
	return fmt.Sprint(v)
}
