package rdt

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Schemata is one group's allocation: for each resource, a value per
// domain. Cache values are way masks, MB values bandwidth (percent or
// absolute, see MBUnit). A Schemata may hold only some resources and
// domains: the kernel keeps what a write leaves out.
type Schemata struct {
	Lines []Line
}

// MarshalText renders the schemata text, so /state shows what is written.
func (s Schemata) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads the text back (sluicectl decodes the agent's /state).
func (s *Schemata) UnmarshalText(b []byte) error {
	v, err := ParseSchemata(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Line is one resource's values, domains ascending.
type Line struct {
	Resource string
	Values   []DomainValue
}

// DomainValue is one domain's value in a Line.
type DomainValue struct {
	Domain int
	Value  uint64
}

// isBandwidth reports whether a resource's values are decimal bandwidths
// (MB, AMD's SMBA) rather than hexadecimal way masks.
func isBandwidth(resource string) bool { return resource == ResourceMB || resource == "SMBA" }

// Get returns one resource's value in one domain.
func (s Schemata) Get(resource string, domain int) (uint64, bool) {
	for _, l := range s.Lines {
		if l.Resource != resource {
			continue
		}
		for _, v := range l.Values {
			if v.Domain == domain {
				return v.Value, true
			}
		}
	}
	return 0, false
}

// Set puts a value, keeping lines in insertion order and domains ascending.
func (s *Schemata) Set(resource string, domain int, value uint64) {
	i := slices.IndexFunc(s.Lines, func(l Line) bool { return l.Resource == resource })
	if i < 0 {
		s.Lines = append(s.Lines, Line{Resource: resource})
		i = len(s.Lines) - 1
	}
	l := &s.Lines[i]
	j, found := slices.BinarySearchFunc(l.Values, domain, func(v DomainValue, d int) int { return v.Domain - d })
	if found {
		l.Values[j].Value = value
		return
	}
	l.Values = slices.Insert(l.Values, j, DomainValue{Domain: domain, Value: value})
}

// String renders the text to write to a schemata file: one line per
// resource, "L3:0=ff;1=ff", masks in lower-case hex without padding, MB in
// decimal, each line ending in a newline.
func (s Schemata) String() string {
	var b strings.Builder
	for _, l := range s.Lines {
		if len(l.Values) == 0 {
			continue
		}
		b.WriteString(l.Resource)
		b.WriteByte(':')
		for i, v := range l.Values {
			if i > 0 {
				b.WriteByte(';')
			}
			b.WriteString(strconv.Itoa(v.Domain))
			b.WriteByte('=')
			if isBandwidth(l.Resource) {
				b.WriteString(strconv.FormatUint(v.Value, 10))
			} else {
				b.WriteString(strconv.FormatUint(v.Value, 16))
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Diff returns the values of want that cur lacks or holds differently: the
// smallest write that turns cur into want.
func (want Schemata) Diff(cur Schemata) Schemata {
	var out Schemata
	for _, l := range want.Lines {
		for _, v := range l.Values {
			if got, ok := cur.Get(l.Resource, v.Domain); !ok || got != v.Value {
				out.Set(l.Resource, v.Domain, v.Value)
			}
		}
	}
	return out
}

// Empty reports whether s sets nothing.
func (s Schemata) Empty() bool {
	for _, l := range s.Lines {
		if len(l.Values) > 0 {
			return false
		}
	}
	return true
}

// ParseSchemata reads a schemata file as the kernel prints it: resource
// names right-aligned with spaces, masks zero-padded hex, MB decimal.
// Blank lines are skipped; anything else malformed is an error naming the
// line.
func ParseSchemata(text string) (Schemata, error) {
	var s Schemata
	for n, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(raw)
		if line == "" {
			continue
		}
		res, vals, ok := strings.Cut(line, ":")
		if !ok || res == "" {
			return Schemata{}, fmt.Errorf("schemata line %d %q: want RESOURCE:ID=VALUE[;ID=VALUE]", n+1, raw)
		}
		base := 16
		if isBandwidth(res) {
			base = 10
		}
		for item := range strings.SplitSeq(vals, ";") {
			id, val, ok := strings.Cut(strings.TrimSpace(item), "=")
			if !ok {
				return Schemata{}, fmt.Errorf("schemata line %d %q: %q is not ID=VALUE", n+1, raw, item)
			}
			d, err := strconv.Atoi(strings.TrimSpace(id))
			if err != nil || d < 0 {
				return Schemata{}, fmt.Errorf("schemata line %d %q: domain id %q is not a non-negative integer", n+1, raw, id)
			}
			v, err := strconv.ParseUint(strings.TrimSpace(val), base, 64)
			if err != nil {
				return Schemata{}, fmt.Errorf("schemata line %d %q: value %q: %w", n+1, raw, val, err)
			}
			if _, dup := s.Get(res, d); dup {
				return Schemata{}, fmt.Errorf("schemata line %d %q: domain %d listed twice", n+1, raw, d)
			}
			s.Set(res, d, v)
		}
	}
	return s, nil
}
