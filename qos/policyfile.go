package qos

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sluicehq/sluice/netqos"
	"github.com/sluicehq/sluice/rdt"
)

// PolicyVersion is the only policy file version this package reads.
const PolicyVersion = 1

// Problem is one thing wrong with a policy file.
type Problem struct {
	// Line is 1-based; 0 when the problem is not tied to a line (a
	// required field that is missing everywhere).
	Line int
	// Path is the dotted field path, e.g. "cpu.highWater" or "rules[2].cgroup".
	Path string
	Msg  string
}

// PolicyError lists every problem found in one policy file, in line order.
type PolicyError struct {
	// Name is the file name given to ParsePolicy.
	Name     string
	Problems []Problem
}

// Error prints one problem per line as "name:line: path: msg".
func (e *PolicyError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Name)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
		if p.Path != "" {
			b.WriteString(p.Path)
			b.WriteString(": ")
		}
		b.WriteString(p.Msg)
	}
	return b.String()
}

// ParsePolicy decodes and validates a policy file. Fields the file omits
// take the defaults documented in default-policy.yaml. Decoding is strict:
// unknown fields, wrong types and out-of-range values are all reported at
// once in a *PolicyError, each with its line and field path. On error the
// returned Policy is the zero value; callers keep their last good policy.
//
// Value syntax:
//   - percentages are written with a percent sign ("70%", "12.5%"); a bare
//     number is rejected because 0.7 and 70 would both look plausible;
//   - durations are Go durations ("100ms", "5s"); a bare 0 means zero;
//   - link rates are tc-style bit rates ("700Mbit", "1.5Gbit", "100kbit"),
//     decimal (1Mbit = 1,000,000 bit/s).
func ParsePolicy(name string, data []byte) (Policy, error) {
	return ParsePolicyFor(name, data, nil)
}

// ParsePolicyFor is ParsePolicy that also checks a policy without other
// problems against the host's resctrl hardware (rdt.Policy.Validate):
// each problem on the line of the field that set the value, or of the
// rdt section when the value is a default. A nil hw checks nothing more.
func ParsePolicyFor(name string, data []byte, hw *rdt.Hardware) (Policy, error) {
	p := policyParser{lines: map[string]int{}}
	pol := builtinDefaults()
	if root := p.document(data); root != nil {
		p.root(root, &pol)
		p.crossCheck(&pol)
		if hw != nil && len(p.problems) == 0 {
			p.rdtHardware(pol.RDT, *hw)
		}
	}
	if len(p.problems) > 0 {
		slices.SortStableFunc(p.problems, func(a, b Problem) int { return a.Line - b.Line })
		return Policy{}, &PolicyError{Name: name, Problems: p.problems}
	}
	pol.Deprecated = p.deprecated
	return pol, nil
}

// builtinDefaults is what an omitted field means. default-policy.yaml spells
// out the same values for people; a test keeps the two equal.
func builtinDefaults() Policy {
	return Policy{
		Version:       PolicyVersion,
		OfflineParent: "/sluice/offline",
		OnStop:        StopKeep,
		Sampling: SamplingPolicy{
			HostInterval:      100 * time.Millisecond,
			ContainerInterval: time.Second,
			PSIWindow:         2 * time.Second,
			PSIThreshold:      150 * time.Millisecond,
		},
		CPU: CPUPolicy{
			HighWater:     0.95,
			OfflineFloor:  0.05,
			RampPerSecond: 0.25,
			DeadBand:      0.02,
			GrowHold:      time.Second,
		},
		Memory: MemoryPolicy{
			HighWater:     0.80,
			OfflineFloor:  0.05,
			RampPerSecond: 0.05,
			DeadBand:      0.01,
			GrowHold:      5 * time.Second,
		},
		Kill: KillPolicy{
			Grace:    5 * time.Second,
			CoolDown: 10 * time.Second,
		},
		RDT: rdt.DefaultPolicy(),
	}
}

// policyParser walks the YAML node tree by hand rather than decoding into
// tagged structs: yaml.v3's strict struct decoding stops at the first
// unknown field, and people fixing a file want every problem at once.
type policyParser struct {
	problems []Problem
	// lines remembers where each field was set, so cross-field checks can
	// point at the file.
	lines map[string]int
	// deprecated notes fields that still work but have a new spelling.
	deprecated []Problem
}

func (p *policyParser) addf(line int, path, format string, args ...any) {
	p.problems = append(p.problems, Problem{Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (p *policyParser) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.addf(0, "", "empty policy file (want at least \"version: %d\")", PolicyVersion)
			return nil
		}
		p.syntax(err)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.addf(extra.Line, "", "a second YAML document; a policy file holds exactly one")
	} else if !errors.Is(err, io.EOF) {
		p.syntax(err)
	}
	root := deref(&doc)
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			p.addf(0, "", "empty policy file (want at least \"version: %d\")", PolicyVersion)
			return nil
		}
		root = deref(root.Content[0])
	}
	if root.Kind != yaml.MappingNode {
		if isNull(root) {
			p.addf(0, "", "empty policy file (want at least \"version: %d\")", PolicyVersion)
		} else {
			p.addf(root.Line, "", "want a mapping of policy fields, got %s", describe(root))
		}
		return nil
	}
	return root
}

// syntax turns yaml.v3's "yaml: line 7: ..." into a Problem on line 7.
func (p *policyParser) syntax(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, tail, ok := strings.Cut(rest, ":"); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n, strings.TrimSpace(tail)
			}
		}
	}
	p.addf(line, "", "invalid YAML: %s", msg)
}

// deref follows aliases (anchors are allowed, merge keys are not). The
// depth bound guards against alias cycles in hostile input.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "an alias"
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// field decodes one named field; a fieldSet's order gives the "want" list.
type field struct {
	name string
	set  func(n *yaml.Node, path string)
}

type fieldSet []field

// mapping decodes n's pairs with fs, reporting unknown and duplicate keys.
// A null section (e.g. "cpu:" with nothing under it) means "all defaults".
func (p *policyParser) mapping(n *yaml.Node, path string, fs fieldSet) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.addf(n.Line, path, "want a mapping, got %s", describe(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.addf(k.Line, path, "want a field name, got %s", describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.addf(k.Line, join(path, k.Value), "set twice (first on line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		idx := slices.IndexFunc(fs, func(f field) bool { return f.name == k.Value })
		if idx < 0 {
			names := make([]string, len(fs))
			for j, f := range fs {
				names[j] = f.name
			}
			p.addf(k.Line, join(path, k.Value), "unknown field (want one of %s)", strings.Join(names, ", "))
			continue
		}
		fp := join(path, k.Value)
		p.lines[fp] = k.Line
		fs[idx].set(deref(v), fp)
	}
}

func (p *policyParser) root(n *yaml.Node, pol *Policy) {
	versionSet := false
	p.mapping(n, "", fieldSet{
		{"version", func(n *yaml.Node, path string) {
			versionSet = true
			if v, ok := p.int(n, path); ok && v != PolicyVersion {
				p.addf(n.Line, path, "unsupported version %d (this sluice reads version %d)", v, PolicyVersion)
			}
		}},
		{"dryRun", func(n *yaml.Node, path string) { p.bool(n, path, &pol.DryRun) }},
		{"offlineParent", func(n *yaml.Node, path string) {
			if s, ok := p.str(n, path); ok {
				if err := checkCgroupPath(s); err != nil {
					p.addf(n.Line, path, "%v", err)
					return
				}
				pol.OfflineParent = s
			}
		}},
		{"onStop", func(n *yaml.Node, path string) {
			if s, ok := p.str(n, path); ok {
				switch b := StopBehaviour(s); b {
				case StopKeep, StopRelease:
					pol.OnStop = b
				default:
					p.addf(n.Line, path, "%q is not keep or release", s)
				}
			}
		}},
		{"rules", func(n *yaml.Node, path string) { pol.Rules = p.rules(n, path) }},
		{"sampling", func(n *yaml.Node, path string) { p.sampling(n, path, &pol.Sampling) }},
		{"cpu", func(n *yaml.Node, path string) { p.cpu(n, path, &pol.CPU) }},
		{"memory", func(n *yaml.Node, path string) { p.memory(n, path, &pol.Memory) }},
		{"kill", func(n *yaml.Node, path string) { p.kill(n, path, &pol.Kill) }},
		{"rdt", func(n *yaml.Node, path string) { p.rdt(n, path, &pol.RDT) }},
		{"llc", func(n *yaml.Node, path string) { p.llc(n, path, pol) }},
		{"network", func(n *yaml.Node, path string) { p.network(n, path, &pol.Network) }},
	})
	if !versionSet {
		p.addf(n.Line, "version", "missing (want \"version: %d\")", PolicyVersion)
	}
}

// checkCgroupPath accepts absolute, clean cgroup paths below the root.
func checkCgroupPath(s string) error {
	switch {
	case !strings.HasPrefix(s, "/"):
		return fmt.Errorf("%q is not absolute (want a cgroup path like /sluice/offline)", s)
	case s == "/":
		return errors.New("the root cgroup cannot be the offline parent")
	case path.Clean(s) != s:
		return fmt.Errorf("%q is not clean (want %q)", s, path.Clean(s))
	case strings.ContainsAny(s, "*?[\\\n"):
		return fmt.Errorf("%q contains pattern or control characters", s)
	}
	return nil
}

func (p *policyParser) rules(n *yaml.Node, path string) []ClassRule {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.addf(n.Line, path, "want a list of rules, got %s", describe(n))
		return nil
	}
	var out []ClassRule
	names := map[string]int{}
	for i, item := range n.Content {
		item = deref(item)
		rp := fmt.Sprintf("%s[%d]", path, i)
		if isNull(item) {
			p.addf(item.Line, rp, "empty rule (want name, cgroup and class)")
			continue
		}
		var r ClassRule
		var hasName, hasCgroup, hasClass bool
		p.mapping(item, rp, fieldSet{
			{"name", func(n *yaml.Node, path string) {
				if s, ok := p.str(n, path); ok {
					hasName = true
					if strings.TrimSpace(s) == "" {
						p.addf(n.Line, path, "empty name")
						return
					}
					if first, dup := names[s]; dup {
						p.addf(n.Line, path, "name %q already used by the rule on line %d", s, first)
					}
					names[s] = n.Line
					r.Name = s
				}
			}},
			{"cgroup", func(n *yaml.Node, path string) {
				if s, ok := p.str(n, path); ok {
					hasCgroup = true
					if !strings.HasPrefix(s, "/") {
						p.addf(n.Line, path, "glob %q is not absolute (want e.g. /system.slice/*.service)", s)
						return
					}
					if _, err := pathMatch(s); err != nil {
						p.addf(n.Line, path, "glob %q: %v", s, err)
						return
					}
					r.Cgroup = s
				}
			}},
			{"class", func(n *yaml.Node, path string) {
				if s, ok := p.str(n, path); ok {
					hasClass = true
					c, err := ParseClass(s)
					if err != nil {
						p.addf(n.Line, path, "%v", err)
						return
					}
					r.Class = c
				}
			}},
			{"priority", func(n *yaml.Node, path string) {
				if v, ok := p.int(n, path); ok {
					r.Priority = v
				}
			}},
		})
		if item.Kind == yaml.MappingNode {
			for _, f := range []struct {
				ok   bool
				name string
			}{{hasName, "name"}, {hasCgroup, "cgroup"}, {hasClass, "class"}} {
				if !f.ok {
					p.addf(item.Line, join(rp, f.name), "missing")
				}
			}
		}
		out = append(out, r)
	}
	return out
}

// pathMatch validates a glob the way the matcher will use it.
func pathMatch(glob string) (bool, error) {
	return path.Match(glob, "")
}

func (p *policyParser) sampling(n *yaml.Node, path string, s *SamplingPolicy) {
	p.mapping(n, path, fieldSet{
		{"hostInterval", func(n *yaml.Node, path string) {
			p.durationIn(n, path, &s.HostInterval, time.Millisecond, time.Minute)
		}},
		{"containerInterval", func(n *yaml.Node, path string) {
			p.durationIn(n, path, &s.ContainerInterval, time.Millisecond, time.Hour)
		}},
		{"psiWindow", func(n *yaml.Node, path string) {
			p.durationIn(n, path, &s.PSIWindow, 500*time.Millisecond, 10*time.Second)
		}},
		{"psiThreshold", func(n *yaml.Node, path string) {
			p.durationIn(n, path, &s.PSIThreshold, time.Microsecond, 10*time.Second)
		}},
	})
}

func (p *policyParser) cpu(n *yaml.Node, path string, c *CPUPolicy) {
	p.mapping(n, path, fieldSet{
		{"highWater", func(n *yaml.Node, path string) { p.percentIn(n, path, &c.HighWater, false) }},
		{"offlineFloor", func(n *yaml.Node, path string) { p.percentIn(n, path, &c.OfflineFloor, true) }},
		{"rampPerSecond", func(n *yaml.Node, path string) { p.percentIn(n, path, &c.RampPerSecond, false) }},
		{"deadBand", func(n *yaml.Node, path string) { p.percentIn(n, path, &c.DeadBand, true) }},
		{"growHold", func(n *yaml.Node, path string) { p.durationIn(n, path, &c.GrowHold, 0, time.Hour) }},
		{"onlineRunqLatencyP99", func(n *yaml.Node, path string) {
			p.durationIn(n, path, &c.OnlineRunqLatencyP99, 0, 10*time.Second)
		}},
	})
}

func (p *policyParser) memory(n *yaml.Node, path string, m *MemoryPolicy) {
	p.mapping(n, path, fieldSet{
		{"highWater", func(n *yaml.Node, path string) { p.percentIn(n, path, &m.HighWater, false) }},
		{"offlineFloor", func(n *yaml.Node, path string) { p.percentIn(n, path, &m.OfflineFloor, true) }},
		{"rampPerSecond", func(n *yaml.Node, path string) { p.percentIn(n, path, &m.RampPerSecond, false) }},
		{"deadBand", func(n *yaml.Node, path string) { p.percentIn(n, path, &m.DeadBand, true) }},
		{"growHold", func(n *yaml.Node, path string) { p.durationIn(n, path, &m.GrowHold, 0, time.Hour) }},
	})
}

func (p *policyParser) kill(n *yaml.Node, path string, k *KillPolicy) {
	p.mapping(n, path, fieldSet{
		{"grace", func(n *yaml.Node, path string) { p.durationIn(n, path, &k.Grace, 0, time.Hour) }},
		{"coolDown", func(n *yaml.Node, path string) { p.durationIn(n, path, &k.CoolDown, 0, time.Hour) }},
	})
}

func (p *policyParser) network(n *yaml.Node, path string, nw *NetworkPolicy) {
	p.mapping(n, path, fieldSet{
		{"devices", func(n *yaml.Node, path string) { nw.Devices = p.devices(n, path) }},
		{"linkRate", func(n *yaml.Node, path string) { p.rate(n, path, &nw.LinkRateBitsPerSec) }},
		{"goldRate", func(n *yaml.Node, path string) { p.rate(n, path, &nw.GoldRateBitsPerSec) }},
		{"silverRate", func(n *yaml.Node, path string) { p.rate(n, path, &nw.SilverRateBitsPerSec) }},
		{"headroom", func(n *yaml.Node, path string) { p.rate(n, path, &nw.HeadroomBitsPerSec) }},
		{"ramp", func(n *yaml.Node, path string) { p.rate(n, path, &nw.RampBitsPerSecPerSec) }},
		{"ingress", func(n *yaml.Node, path string) { p.bool(n, path, &nw.Ingress) }},
		{"dscp", func(n *yaml.Node, path string) { nw.DSCP = p.dscp(n, path) }},
		{"replaceForeignRoot", func(n *yaml.Node, path string) { p.bool(n, path, &nw.ReplaceForeignRoot) }},
	})
}

// dscp reads {gold: 46, silver: 26, bronze: 8}: a DSCP code point per tier.
func (p *policyParser) dscp(n *yaml.Node, path string) map[netqos.Tier]uint8 {
	out := map[netqos.Tier]uint8{}
	var fs fieldSet
	for _, t := range netqos.Tiers {
		fs = append(fs, field{t.String(), func(n *yaml.Node, path string) {
			if v, ok := p.int(n, path); ok {
				if v < 0 || v > netqos.MaxDSCP {
					p.addf(n.Line, path, "%d is not a DSCP code point (0..%d)", v, netqos.MaxDSCP)
					return
				}
				out[t] = uint8(v)
			}
		}})
	}
	p.mapping(n, path, fs)
	if len(out) == 0 {
		return nil
	}
	return out
}

func (p *policyParser) devices(n *yaml.Node, path string) []string {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.addf(n.Line, path, "want a list of device names, got %s", describe(n))
		return nil
	}
	var out []string
	seen := map[string]int{}
	for i, item := range n.Content {
		item = deref(item)
		ip := fmt.Sprintf("%s[%d]", path, i)
		s, ok := p.str(item, ip)
		if !ok {
			continue
		}
		if err := checkDeviceName(s); err != nil {
			p.addf(item.Line, ip, "%v", err)
			continue
		}
		if first, dup := seen[s]; dup {
			p.addf(item.Line, ip, "device %q already listed on line %d", s, first)
			continue
		}
		seen[s] = item.Line
		out = append(out, s)
	}
	return out
}

// checkDeviceName applies the kernel's dev_valid_name rules.
func checkDeviceName(s string) error {
	switch {
	case s == "" || s == "." || s == "..":
		return fmt.Errorf("%q is not a valid device name", s)
	case len(s) > 15:
		return fmt.Errorf("device name %q is longer than 15 bytes (IFNAMSIZ)", s)
	case strings.ContainsAny(s, "/: \t\n\r\v\f"):
		return fmt.Errorf("device name %q contains '/', ':' or white space", s)
	}
	return nil
}

// crossCheck finds problems that involve more than one field. Each is
// reported on the line of the field the file set last, or of either field
// when only one was set.
func (p *policyParser) crossCheck(pol *Policy) {
	line := func(paths ...string) int {
		best := 0
		for _, ph := range paths {
			best = max(best, p.lines[ph])
		}
		return best
	}
	if s := pol.Sampling; s.PSIThreshold >= s.PSIWindow {
		p.addf(line("sampling.psiThreshold", "sampling.psiWindow"), "sampling.psiThreshold",
			"%v is not below sampling.psiWindow %v", s.PSIThreshold, s.PSIWindow)
	}
	if s := pol.Sampling; s.ContainerInterval < s.HostInterval {
		p.addf(line("sampling.containerInterval", "sampling.hostInterval"), "sampling.containerInterval",
			"%v is below sampling.hostInterval %v", s.ContainerInterval, s.HostInterval)
	}
	for _, sec := range []struct {
		name                    string
		floor, high, band, ramp float64
	}{
		{"cpu", pol.CPU.OfflineFloor, pol.CPU.HighWater, pol.CPU.DeadBand, pol.CPU.RampPerSecond},
		{"memory", pol.Memory.OfflineFloor, pol.Memory.HighWater, pol.Memory.DeadBand, pol.Memory.RampPerSecond},
	} {
		if sec.floor >= sec.high {
			p.addf(line(sec.name+".offlineFloor", sec.name+".highWater"), sec.name+".offlineFloor",
				"%s is not below %s.highWater %s", formatPercent(sec.floor), sec.name, formatPercent(sec.high))
		}
		// A dead band wider than the lendable span would freeze lending.
		if span := sec.high - sec.floor; span > 0 && sec.band >= span {
			p.addf(line(sec.name+".deadBand", sec.name+".offlineFloor", sec.name+".highWater"), sec.name+".deadBand",
				"%s is not below the lendable span %s (highWater - offlineFloor)", formatPercent(sec.band), formatPercent(span))
		}
	}
	p.rdtCrossCheck(pol.RDT, line)
	nw := pol.Network
	if len(nw.Devices) > 0 {
		for _, r := range []struct {
			name string
			v    uint64
		}{{"goldRate", nw.GoldRateBitsPerSec}, {"silverRate", nw.SilverRateBitsPerSec}, {"headroom", nw.HeadroomBitsPerSec}} {
			if _, set := p.lines["network."+r.name]; !set && r.v == 0 {
				p.addf(line("network", "network.devices"), "network."+r.name, "missing (required when network.devices is set)")
			}
		}
	}
	if nw.LinkRateBitsPerSec > 0 {
		if err := nw.Fits(nw.LinkRateBitsPerSec); err != nil {
			p.addf(line("network.linkRate", "network.goldRate", "network.silverRate", "network.headroom"), "network", "%v", err)
		}
	} else if _, over := nw.Guaranteed(); over {
		p.addf(line("network.goldRate", "network.silverRate", "network.headroom"), "network",
			"goldRate + silverRate + headroom overflows")
	}
}
