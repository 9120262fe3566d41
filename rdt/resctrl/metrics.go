package resctrl

import (
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/rdt"
)

// Collector exports the last monitoring sample per group and cache
// domain: sluice_rdt_llc_occupancy_bytes (gauge),
// sluice_rdt_mbm_total_bytes_total and sluice_rdt_mbm_local_bytes_total
// (counters, as the kernel counts them since the group was made). The
// default group's label is "default". Events the kernel printed as
// Unavailable are left out.
type Collector struct {
	// Snapshot returns the last sample; it is called on every scrape and
	// must be safe for concurrent use.
	Snapshot func() rdt.MonSample
	occ      *prometheus.Desc
	total    *prometheus.Desc
	local    *prometheus.Desc
}

// NewCollector returns a Collector over snapshot.
func NewCollector(snapshot func() rdt.MonSample) *Collector {
	labels := []string{"group", "domain"}
	return &Collector{
		Snapshot: snapshot,
		occ:      prometheus.NewDesc("sluice_rdt_llc_occupancy_bytes", "Last-level cache held by a resctrl group in a cache domain (llc_occupancy).", labels, nil),
		total:    prometheus.NewDesc("sluice_rdt_mbm_total_bytes_total", "Memory bandwidth used by a resctrl group in a cache domain, all memory (mbm_total_bytes).", labels, nil),
		local:    prometheus.NewDesc("sluice_rdt_mbm_local_bytes_total", "Memory bandwidth used by a resctrl group in a cache domain, local memory only (mbm_local_bytes).", labels, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.occ
	ch <- c.total
	ch <- c.local
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.Snapshot()
	doms := make([]int, 0, len(s.Domains))
	for d := range s.Domains {
		doms = append(doms, d)
	}
	slices.Sort(doms)
	for _, d := range doms {
		groups := s.Domains[d]
		names := make([]string, 0, len(groups))
		for g := range groups {
			names = append(names, g)
		}
		slices.Sort(names)
		dom := strconv.Itoa(d)
		for _, g := range names {
			v := groups[g]
			label := g
			if label == rdt.GroupDefault {
				label = "default"
			}
			if v.HasOccupancy {
				ch <- prometheus.MustNewConstMetric(c.occ, prometheus.GaugeValue, float64(v.OccupancyBytes), label, dom)
			}
			if v.HasTotal {
				ch <- prometheus.MustNewConstMetric(c.total, prometheus.CounterValue, float64(v.TotalBytes), label, dom)
			}
			if v.HasLocal {
				ch <- prometheus.MustNewConstMetric(c.local, prometheus.CounterValue, float64(v.LocalBytes), label, dom)
			}
		}
	}
}
