package qos

import (
	"errors"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sluicehq/sluice/rdt"
)

// llcDeprecated is the note for the old llc section, kept as an alias:
// copies of the old default policy carry it, and they keep loading.
const llcDeprecated = "deprecated alias of rdt.offline: offlineWaysMax is rdt.offline.waysCeiling, " +
	"offlineMemBandwidthMax is rdt.offline.mbCeiling"

// llc reads the deprecated llc section into the rdt policy's offline
// ceilings and notes the deprecation. Setting a ceiling both ways is an
// error (crossCheck). Problems the mapped values cause later (a ceiling
// below the floor) point at the llc line.
func (p *policyParser) llc(n *yaml.Node, path string, pol *Policy) {
	p.deprecated = append(p.deprecated, Problem{Line: p.lines[path], Path: path, Msg: llcDeprecated})
	p.mapping(n, path, fieldSet{
		{"offlineWaysMax", func(n *yaml.Node, path string) {
			var v float64
			if p.percentOK(n, path, &v) {
				pol.RDT.Offline.WaysCeiling = rdt.Ways{Share: v}
				p.lines["llc->rdt.offline.waysCeiling"] = n.Line
			}
		}},
		{"offlineMemBandwidthMax", func(n *yaml.Node, path string) {
			var v float64
			if p.percentOK(n, path, &v) {
				pol.RDT.Offline.MBCeiling = v
				p.lines["llc->rdt.offline.mbCeiling"] = n.Line
			}
		}},
	})
}

// percentOK is percentIn (above 0%) that says whether it set dst.
func (p *policyParser) percentOK(n *yaml.Node, path string, dst *float64) bool {
	before := len(p.problems)
	p.percentIn(n, path, dst, false)
	return len(p.problems) == before
}

// maxCacheWays bounds a ways count: capacity bitmasks are at most 64 bits.
const maxCacheWays = 64

func (p *policyParser) rdt(n *yaml.Node, path string, r *rdt.Policy) {
	p.mapping(n, path, fieldSet{
		{"enabled", func(n *yaml.Node, path string) { p.bool(n, path, &r.Enabled) }},
		{"onlineLatencyTarget", func(n *yaml.Node, path string) {
			p.durationIn(n, path, &r.OnlineLatencyTarget, 0, 10*time.Second)
		}},
		{"calmBelow", func(n *yaml.Node, path string) { p.percentIn(n, path, &r.CalmBelow, false) }},
		{"suspectShare", func(n *yaml.Node, path string) { p.percentIn(n, path, &r.SuspectShare, true) }},
		{"offlinePriorityGroups", func(n *yaml.Node, path string) { p.bool(n, path, &r.OfflinePriorityGroups) }},
		{"online", func(n *yaml.Node, path string) { p.rdtClass(n, path, &r.Online) }},
		{"offline", func(n *yaml.Node, path string) { p.rdtClass(n, path, &r.Offline) }},
		{"system", func(n *yaml.Node, path string) {
			// A system section gives system work its own group, starting
			// from full ways and bandwidth.
			sys := rdt.ClassPolicy{WaysFloor: rdt.Ways{Count: 1}, WaysCeiling: rdt.Ways{Share: 1}, MBFloor: 1, MBCeiling: 1}
			p.rdtClass(n, path, &sys)
			r.System = &sys
		}},
		{"ramp", func(n *yaml.Node, path string) {
			p.mapping(n, path, fieldSet{
				{"ways", func(n *yaml.Node, path string) {
					if v, ok := p.int(n, path); ok {
						if v < 1 || v > maxCacheWays {
							p.addf(n.Line, path, "%d is not between 1 and %d ways", v, maxCacheWays)
							return
						}
						r.Ramp.Ways = v
					}
				}},
				{"mb", func(n *yaml.Node, path string) { p.percentIn(n, path, &r.Ramp.MB, false) }},
				{"every", func(n *yaml.Node, path string) { p.durationIn(n, path, &r.Ramp.Every, 0, time.Hour) }},
				{"hold", func(n *yaml.Node, path string) { p.durationIn(n, path, &r.Ramp.Hold, 0, time.Hour) }},
			})
		}},
	})
}

func (p *policyParser) rdtClass(n *yaml.Node, path string, c *rdt.ClassPolicy) {
	p.mapping(n, path, fieldSet{
		{"waysFloor", func(n *yaml.Node, path string) { p.ways(n, path, &c.WaysFloor) }},
		{"waysCeiling", func(n *yaml.Node, path string) { p.ways(n, path, &c.WaysCeiling) }},
		{"mbFloor", func(n *yaml.Node, path string) { p.percentIn(n, path, &c.MBFloor, false) }},
		{"mbCeiling", func(n *yaml.Node, path string) { p.percentIn(n, path, &c.MBCeiling, false) }},
	})
}

// ways reads a count of cache ways ("4") or a share of them ("25%").
func (p *policyParser) ways(n *yaml.Node, path string, dst *rdt.Ways) {
	if !p.scalar(n, path, "a number of ways like 4 or a share like \"25%\"") {
		return
	}
	if n.Tag == "!!int" {
		if v, ok := p.int(n, path); ok {
			if v < 1 || v > maxCacheWays {
				p.addf(n.Line, path, "%d is not between 1 and %d ways", v, maxCacheWays)
				return
			}
			*dst = rdt.Ways{Count: v}
		}
		return
	}
	var share float64
	if p.percentOK(n, path, &share) {
		*dst = rdt.Ways{Share: share}
	}
}

// rdtCrossCheck reports floors above ceilings where no hardware is needed
// to tell; rdt.Policy.Validate checks the rest against the probed host at
// agent start and reload (ways below min_cbm_bits, MB below the hardware
// minimum, reservations larger than the cache).
func (p *policyParser) rdtCrossCheck(r rdt.Policy, line func(...string) int) {
	for _, f := range []struct{ old, new string }{
		{"llc.offlineWaysMax", "rdt.offline.waysCeiling"}, {"llc.offlineMemBandwidthMax", "rdt.offline.mbCeiling"},
	} {
		if _, a := p.lines[f.old]; a {
			if _, b := p.lines[f.new]; b {
				p.addf(line(f.old, f.new), f.old, "set both here and as %s (line %d); keep %s", f.new, p.lines[f.new], f.new)
			}
		}
	}
	classes := map[string]*rdt.ClassPolicy{"online": &r.Online, "offline": &r.Offline, "system": r.System}
	for _, name := range []string{"online", "offline", "system"} {
		c := classes[name]
		if c == nil {
			continue
		}
		base := "rdt." + name
		lo, hi := c.WaysFloor, c.WaysCeiling
		if (lo.Count > 0) == (hi.Count > 0) && (lo.Count > hi.Count || lo.Share > hi.Share) {
			p.addf(line(base+".waysFloor", base+".waysCeiling", "llc->"+base+".waysCeiling"), base+".waysFloor",
				"%s is above %s.waysCeiling %s", waysText(lo), base, waysText(hi))
		}
		if c.MBFloor > c.MBCeiling {
			p.addf(line(base+".mbFloor", base+".mbCeiling", "llc->"+base+".mbCeiling"), base+".mbFloor",
				"%s is above %s.mbCeiling %s", formatPercent(c.MBFloor), base, formatPercent(c.MBCeiling))
		}
	}
}

func waysText(w rdt.Ways) string {
	if w.Count > 0 {
		return fmt.Sprintf("%d ways", w.Count)
	}
	return formatPercent(w.Share) + " of ways"
}

// rdtHardware reports what rdt.Policy.Validate finds wrong with r on hw,
// each problem on the line that set the field (through the llc alias too),
// else on the rdt section's line, else unlined (a default value).
func (p *policyParser) rdtHardware(r rdt.Policy, hw rdt.Hardware) {
	var ve *rdt.ValidationError
	if !errors.As(r.Validate(hw), &ve) {
		return
	}
	for _, pr := range ve.Problems {
		path := "rdt." + pr.Path
		line := p.lines[path]
		if line == 0 {
			line = p.lines["llc->"+path]
		}
		if line == 0 {
			line = max(p.lines["rdt"], p.lines["llc"])
		}
		p.addf(line, path, "%s (on this host's resctrl hardware)", pr.Msg)
	}
}
