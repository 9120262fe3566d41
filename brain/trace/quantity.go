package trace

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// MilliCPU is CPU in milli-CPUs. In YAML it is written in cores ("4",
// "0.5") or in millis with an "m" suffix ("500m").
type MilliCPU int64

// UnmarshalYAML accepts cores or "Nm".
func (m *MilliCPU) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseMilliCPU(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*m = v
	return nil
}

// MarshalYAML writes whole cores as a number and the rest in millis.
func (m MilliCPU) MarshalYAML() (any, error) {
	if m%1000 == 0 {
		return int64(m) / 1000, nil
	}
	return strconv.FormatInt(int64(m), 10) + "m", nil
}

// ParseMilliCPU parses "4", "0.5" or "500m" into milli-CPUs.
func ParseMilliCPU(s string) (MilliCPU, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutSuffix(s, "m"); ok {
		v, err := strconv.ParseInt(rest, 10, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("cpu %q: want cores (e.g. 4, 0.5) or millis (e.g. 500m)", s)
		}
		return MilliCPU(v), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsNaN(f) || f > math.MaxInt64/1000 {
		return 0, fmt.Errorf("cpu %q: want cores (e.g. 4, 0.5) or millis (e.g. 500m)", s)
	}
	milli := math.Round(f * 1000)
	if math.Abs(milli-f*1000) > 1e-6*math.Max(1, f*1000) {
		return 0, fmt.Errorf("cpu %q: finer than one milli-CPU", s)
	}
	return MilliCPU(milli), nil
}

// Bytes is an amount of memory or disk. In YAML it is a plain integer of
// bytes or an integer with a binary (Ki, Mi, Gi, Ti) or decimal (K, M, G,
// T) suffix.
type Bytes int64

var byteSuffixes = []struct {
	suffix string
	mult   int64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
}

// UnmarshalYAML accepts "16Gi", "512Mi", "1000".
func (b *Bytes) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseBytes(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}

// MarshalYAML writes the largest binary suffix that divides the amount.
func (b Bytes) MarshalYAML() (any, error) {
	for i := 3; i >= 0; i-- {
		s := byteSuffixes[i]
		if b != 0 && int64(b)%s.mult == 0 {
			return strconv.FormatInt(int64(b)/s.mult, 10) + s.suffix, nil
		}
	}
	return int64(b), nil
}

// ParseBytes parses "16Gi", "512M" or "1000" into bytes.
func ParseBytes(s string) (Bytes, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	num := s
	for _, suf := range byteSuffixes {
		if rest, ok := strings.CutSuffix(s, suf.suffix); ok {
			mult, num = suf.mult, rest
			break
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("size %q: want a non-negative integer with an optional suffix Ki, Mi, Gi, Ti, K, M, G, T", s)
	}
	if v > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return Bytes(v * mult), nil
}

// Curve is a daily curve: fractions in [0,1] of a peak, one per curve
// point. In YAML it is a list ([0.2, 1, 0.5]) or, compact, one string of
// numbers separated by spaces ("0.2 1 0.5"): a list costs the decoder a
// node per point, which for thousands of 96-point curves is hundreds of MB.
// JSON is a plain array.
type Curve []float64

// compactCurvePoints is the length from which MarshalYAML writes a string.
const compactCurvePoints = 16

// UnmarshalYAML accepts a list of numbers or a string of them.
func (c *Curve) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return n.Decode((*[]float64)(c))
	}
	fields := strings.Fields(n.Value)
	out := make(Curve, len(fields))
	for i, f := range fields {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return fmt.Errorf("line %d: curve point %d: %q is not a number", n.Line, i, f)
		}
		out[i] = v
	}
	*c = out
	return nil
}

// MarshalYAML writes long curves as one string, short ones as a list.
func (c Curve) MarshalYAML() (any, error) {
	if len(c) < compactCurvePoints {
		return []float64(c), nil
	}
	var b strings.Builder
	for i, v := range c {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	}
	return b.String(), nil
}

// Duration is a span of time. In YAML it is written as Go writes
// durations ("90s", "5m", "1h30m"); in JSON it is nanoseconds.
type Duration time.Duration

// UnmarshalYAML accepts "90s", "5m".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		return fmt.Errorf("line %d: duration %q: want a number with a unit (e.g. 90s, 5m)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as Go does.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }
