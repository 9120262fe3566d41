package qos

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Scalar decoders for policy files. Each reports its own problem and
// returns ok=false so the caller keeps the default for that field.

func (p *policyParser) scalar(n *yaml.Node, path, want string) bool {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.addf(n.Line, path, "want %s, got %s", want, describe(n))
		return false
	}
	return true
}

func (p *policyParser) str(n *yaml.Node, path string) (string, bool) {
	if !p.scalar(n, path, "a string") {
		return "", false
	}
	if n.Tag != "!!str" {
		p.addf(n.Line, path, "want a string, got %s (quote it if you mean the text)", describe(n))
		return "", false
	}
	return n.Value, true
}

func (p *policyParser) int(n *yaml.Node, path string) (int, bool) {
	if !p.scalar(n, path, "an integer") {
		return 0, false
	}
	var v int
	if n.Tag != "!!int" || n.Decode(&v) != nil {
		p.addf(n.Line, path, "want an integer, got %s", describe(n))
		return 0, false
	}
	return v, true
}

func (p *policyParser) bool(n *yaml.Node, path string, dst *bool) {
	if !p.scalar(n, path, "true or false") {
		return
	}
	var v bool
	if n.Tag != "!!bool" || n.Decode(&v) != nil {
		p.addf(n.Line, path, "want true or false, got %s", describe(n))
		return
	}
	*dst = v
}

// percentIn decodes "70%" into 0.7. Values must lie in (0%, 100%], or
// [0%, 100%] when zeroOK.
func (p *policyParser) percentIn(n *yaml.Node, path string, dst *float64, zeroOK bool) {
	if !p.scalar(n, path, "a percentage like \"70%\"") {
		return
	}
	v, err := parsePercent(n.Value)
	if err != nil {
		p.addf(n.Line, path, "%v", err)
		return
	}
	switch {
	case v > 1:
		p.addf(n.Line, path, "%s is above 100%%", n.Value)
	case v < 0:
		p.addf(n.Line, path, "%s is below 0%%", n.Value)
	case v == 0 && !zeroOK:
		p.addf(n.Line, path, "%s must be above 0%%", n.Value)
	default:
		*dst = v
	}
}

// parsePercent reads "70%" or "12.5%" as a fraction (0.7, 0.125).
func parsePercent(s string) (float64, error) {
	num, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
	if !ok {
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return 0, fmt.Errorf("bare number %s is ambiguous (a fraction or a percentage?): write it with a %% sign, e.g. \"70%%\"", s)
		}
		return 0, fmt.Errorf("%q is not a percentage (want e.g. \"70%%\")", s)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a percentage (want e.g. \"70%%\")", s)
	}
	return v / 100, nil
}

// formatPercent prints a fraction as a percentage without float noise.
// formatShare prints a measured share for people, to one decimal
// ("134.0%"); formatPercent keeps a policy value exact.
func formatShare(f float64) string {
	return strconv.FormatFloat(f*100, 'f', 1, 64) + "%"
}

func formatPercent(f float64) string {
	return strconv.FormatFloat(math.Round(f*100*1e6)/1e6, 'f', -1, 64) + "%"
}

// durationIn decodes a Go duration and checks lo <= d <= hi.
func (p *policyParser) durationIn(n *yaml.Node, path string, dst *time.Duration, lo, hi time.Duration) {
	if !p.scalar(n, path, "a duration like \"100ms\"") {
		return
	}
	d, err := parseDuration(n.Value)
	if err != nil {
		p.addf(n.Line, path, "%v", err)
		return
	}
	switch {
	case d < lo:
		if lo == 0 {
			p.addf(n.Line, path, "%s is negative", n.Value)
		} else {
			p.addf(n.Line, path, "%s is below %v", n.Value, lo)
		}
	case d > hi:
		p.addf(n.Line, path, "%s is above %v", n.Value, hi)
	default:
		*dst = d
	}
}

func parseDuration(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if _, ferr := strconv.ParseFloat(s, 64); ferr == nil {
			return 0, fmt.Errorf("bare number %s has no unit (want e.g. \"%sms\" or \"%ss\")", s, s, s)
		}
		return 0, fmt.Errorf("%q is not a duration (want e.g. \"100ms\", \"5s\")", s)
	}
	return d, nil
}

func (p *policyParser) rate(n *yaml.Node, path string, dst *uint64) {
	if !p.scalar(n, path, "a bit rate like \"700Mbit\"") {
		return
	}
	v, err := parseRate(n.Value)
	if err != nil {
		p.addf(n.Line, path, "%v", err)
		return
	}
	*dst = v
}

type rateUnit struct {
	suffix string
	mult   float64
}

// rateUnits are tc's bit-rate suffixes, largest first, decimal as tc reads them.
func rateUnits() [5]rateUnit {
	return [...]rateUnit{{"tbit", 1e12}, {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}}
}

// maxRateBitsPerSec bounds rates far above any link so sums cannot overflow.
const maxRateBitsPerSec = 1e15

// parseRate reads a positive tc-style bit rate ("700Mbit") in bits/s.
func parseRate(s string) (uint64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if strings.HasSuffix(t, "bps") {
		return 0, fmt.Errorf("%q: tc's \"bps\" means bytes per second; write the rate in bits, e.g. \"700Mbit\"", s)
	}
	for _, u := range rateUnits() {
		num, ok := strings.CutSuffix(t, u.suffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("%q is not a bit rate (want e.g. \"700Mbit\")", s)
		}
		bits := math.Round(v * u.mult)
		switch {
		case bits <= 0:
			return 0, fmt.Errorf("%s is not positive", s)
		case bits > maxRateBitsPerSec:
			return 0, fmt.Errorf("%s is above 1000Tbit", s)
		}
		return uint64(bits), nil
	}
	return 0, errors.New(strconv.Quote(s) + " has no unit (want bit, kbit, Mbit, Gbit or Tbit, e.g. \"700Mbit\")")
}

// formatRate prints bits/s with the largest tc unit that keeps it exact.
func formatRate(bits uint64) string {
	for _, u := range rateUnits() {
		m := uint64(u.mult)
		if bits >= m && bits%m == 0 {
			name := u.suffix
			if name != "bit" && name != "kbit" {
				name = strings.ToUpper(name[:1]) + name[1:]
			}
			return strconv.FormatUint(bits/m, 10) + name
		}
	}
	return strconv.FormatUint(bits, 10) + "bit"
}
