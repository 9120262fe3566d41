package plan

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Penalty is one dimension's utilisation penalty (see the package doc).
type Penalty struct {
	// Dim is a place dimension: "cpu", "memory", "disk" or an extended one.
	Dim string
	// Target is the utilisation, in (0,1], above which the penalty grows;
	// 1 turns it off (a host never runs above its capacity).
	Target float64
	// Steepness is k in exp(k·x); > 0.
	Steepness float64
	// Weight scales the dimension's penalty; >= 0.
	Weight float64
}

// DefaultPenalties keep CPU below half and memory below 80% ("keep hosts
// cool"): k = 4, weight 1. A host at 70% CPU all day pays 0.43 of its
// cost on top; at 90%, 2.35.
func DefaultPenalties() []Penalty {
	return []Penalty{
		{Dim: "cpu", Target: 0.5, Steepness: 4, Weight: 1},
		{Dim: "memory", Target: 0.8, Steepness: 4, Weight: 1},
	}
}

// Validate reports a penalty no objective can use.
func (p Penalty) Validate() error {
	switch {
	case p.Dim == "":
		return fmt.Errorf("penalty: empty dimension")
	case !(p.Target > 0 && p.Target <= 1):
		return fmt.Errorf("penalty %s: target %v is outside (0,1]", p.Dim, p.Target)
	case !(p.Steepness > 0) || math.IsInf(p.Steepness, 0) || p.Steepness > 100:
		return fmt.Errorf("penalty %s: steepness %v is outside (0,100]", p.Dim, p.Steepness)
	case !(p.Weight >= 0) || math.IsInf(p.Weight, 0):
		return fmt.Errorf("penalty %s: weight %v must be a non-negative number", p.Dim, p.Weight)
	}
	return nil
}

// phi is the penalty at utilisation u, unweighted.
func (p Penalty) phi(u float64) float64 {
	x := u - p.Target
	if x <= 0 {
		return 0
	}
	kx := p.Steepness * x
	return math.Expm1(kx) - kx
}

// slopeInverse is the utilisation at which phi's slope is s (>= 0): the
// inverse of phi'(u) = k·(exp(k·x) − 1).
func (p Penalty) slopeInverse(s float64) float64 {
	return p.Target + math.Log1p(s/p.Steepness)/p.Steepness
}

// MergePenalties overlays over on base by dimension: a dimension in over
// replaces base's, zero fields keeping base's value; new dimensions are
// added with defaults for their zero fields (target 1, steepness 4,
// weight 1). The result is sorted by dimension.
func MergePenalties(base, over []Penalty) []Penalty {
	by := map[string]Penalty{}
	for _, p := range base {
		by[p.Dim] = p
	}
	for _, o := range over {
		p, ok := by[o.Dim]
		if !ok {
			p = Penalty{Dim: o.Dim, Target: 1, Steepness: 4, Weight: 1}
		}
		if o.Target != 0 {
			p.Target = o.Target
		}
		if o.Steepness != 0 {
			p.Steepness = o.Steepness
		}
		if o.Weight != 0 {
			p.Weight = o.Weight
		}
		by[o.Dim] = p
	}
	out := make([]Penalty, 0, len(by))
	for _, p := range by {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dim < out[j].Dim })
	return out
}

// ParsePenalties reads "cpu=0.5:4:1,memory=0.8" (target[:steepness[:weight]]
// per dimension; a field left out or empty is 0, i.e. "keep the default"
// for MergePenalties).
func ParsePenalties(s string) ([]Penalty, error) {
	var out []Penalty
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for _, part := range strings.Split(s, ",") {
		dim, spec, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || dim == "" {
			return nil, fmt.Errorf("penalty %q: want DIM=TARGET[:STEEPNESS[:WEIGHT]]", part)
		}
		p := Penalty{Dim: dim}
		fields := strings.Split(spec, ":")
		if len(fields) > 3 {
			return nil, fmt.Errorf("penalty %q: at most target:steepness:weight", part)
		}
		dst := []*float64{&p.Target, &p.Steepness, &p.Weight}
		for i, f := range fields {
			if f == "" {
				continue
			}
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				return nil, fmt.Errorf("penalty %s: %q is not a number", dim, f)
			}
			*dst[i] = v
		}
		out = append(out, p)
	}
	return out, nil
}
