package node

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/netqos"
)

// Collector exports the counters read by the last Signals call and the
// ceilings of the last applied plan (so a scrape never touches netlink):
//
//	sluice_net_tier_bytes_total{device,tier}        bytes sent through the tier's class
//	sluice_net_tier_packets_total{device,tier}
//	sluice_net_tier_drops_total{device,tier}        packets the class's queue dropped
//	sluice_net_tier_overlimits_total{device,tier}   times the class was over its rate/ceil
//	sluice_net_tier_rate_bits{device,tier}          guaranteed rate in the kernel
//	sluice_net_tier_ceil_bits{device,tier}          ceiling in the kernel (bronze's moves)
//	sluice_net_ingress_bytes_total{tier}            bytes received by classified sockets
//	sluice_net_ingress_drops_total{tier}            packets bronze's ingress policer dropped
//	sluice_net_ingress_budget_bits                  bronze's ingress budget (0: not policing)
func (n *Node) Collector() prometheus.Collector {
	devTier := []string{"device", "tier"}
	return collector{n: n, descs: descs{
		bytes:      prometheus.NewDesc("sluice_net_tier_bytes_total", "Bytes sent through the tier's HTB class.", devTier, nil),
		packets:    prometheus.NewDesc("sluice_net_tier_packets_total", "Packets sent through the tier's HTB class.", devTier, nil),
		drops:      prometheus.NewDesc("sluice_net_tier_drops_total", "Packets the tier's class dropped.", devTier, nil),
		overlimits: prometheus.NewDesc("sluice_net_tier_overlimits_total", "Times the tier's class was over its rate or ceiling.", devTier, nil),
		rate:       prometheus.NewDesc("sluice_net_tier_rate_bits", "The tier's guaranteed rate in the kernel, bits/s.", devTier, nil),
		ceil:       prometheus.NewDesc("sluice_net_tier_ceil_bits", "The tier's ceiling in the kernel, bits/s.", devTier, nil),
		inBytes:    prometheus.NewDesc("sluice_net_ingress_bytes_total", "Bytes received by the tier's sockets.", []string{"tier"}, nil),
		inDrops:    prometheus.NewDesc("sluice_net_ingress_drops_total", "Packets the ingress policer dropped.", []string{"tier"}, nil),
		budget:     prometheus.NewDesc("sluice_net_ingress_budget_bits", "Bronze's ingress budget, bits/s (0: not policing).", nil, nil),
	}}
}

type descs struct {
	bytes, packets, drops, overlimits, rate, ceil, inBytes, inDrops, budget *prometheus.Desc
}

type collector struct {
	n *Node
	descs
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.bytes, c.packets, c.drops, c.overlimits, c.rate, c.ceil, c.inBytes, c.inDrops, c.budget} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.n.mu.Lock()
	stats, rx, plan := c.n.stats, c.n.rx, c.n.plan
	c.n.mu.Unlock()
	for _, ds := range stats {
		if !ds.Present {
			continue
		}
		for _, t := range netqos.Tiers {
			s, l := ds.Tiers[t], []string{ds.Device, t.String()}
			ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.Bytes), l...)
			ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(s.Packets), l...)
			ch <- prometheus.MustNewConstMetric(c.drops, prometheus.CounterValue, float64(s.Drops), l...)
			ch <- prometheus.MustNewConstMetric(c.overlimits, prometheus.CounterValue, float64(s.Overlimits), l...)
			ch <- prometheus.MustNewConstMetric(c.rate, prometheus.GaugeValue, float64(s.RateBitsPerSec), l...)
			ch <- prometheus.MustNewConstMetric(c.ceil, prometheus.GaugeValue, float64(s.CeilBitsPerSec), l...)
		}
	}
	if plan.Ingress == nil {
		return
	}
	for _, t := range netqos.Tiers {
		ch <- prometheus.MustNewConstMetric(c.inBytes, prometheus.CounterValue, float64(rx[t].Bytes), t.String())
		ch <- prometheus.MustNewConstMetric(c.inDrops, prometheus.CounterValue, float64(rx[t].Drops), t.String())
	}
	ch <- prometheus.MustNewConstMetric(c.budget, prometheus.GaugeValue, float64(plan.Ingress.BitsPerSec))
}
