package qos

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sluicehq/sluice/rdt"
)

// llcReplaced is the problem reported for the old llc section. It was
// validated but never enforced; rdt replaces it. It is an error rather
// than an alias so that an upgrade never starts partitioning a host's
// cache from a section that used to do nothing.
const llcReplaced = "replaced by the rdt section (llc was never enforced): " +
	"write offlineWaysMax as rdt.offline.waysCeiling and offlineMemBandwidthMax as rdt.offline.mbCeiling"

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
	before := len(p.problems)
	p.percentIn(n, path, &share, false)
	if len(p.problems) == before {
		*dst = rdt.Ways{Share: share}
	}
}

// rdtCrossCheck reports floors above ceilings where no hardware is needed
// to tell; rdt.Policy.Validate checks the rest against the probed host at
// agent start and reload (ways below min_cbm_bits, MB below the hardware
// minimum, reservations larger than the cache).
func (p *policyParser) rdtCrossCheck(r rdt.Policy, line func(...string) int) {
	classes := map[string]*rdt.ClassPolicy{"online": &r.Online, "offline": &r.Offline, "system": r.System}
	for _, name := range []string{"online", "offline", "system"} {
		c := classes[name]
		if c == nil {
			continue
		}
		base := "rdt." + name
		lo, hi := c.WaysFloor, c.WaysCeiling
		if (lo.Count > 0) == (hi.Count > 0) && (lo.Count > hi.Count || lo.Share > hi.Share) {
			p.addf(line(base+".waysFloor", base+".waysCeiling"), base+".waysFloor",
				"%s is above %s.waysCeiling %s", waysText(lo), base, waysText(hi))
		}
		if c.MBFloor > c.MBCeiling {
			p.addf(line(base+".mbFloor", base+".mbCeiling"), base+".mbFloor",
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
