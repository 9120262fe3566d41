package ebpf

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/qos"
)

// runqLatencyDesc describes sluice_runq_latency_seconds{class}, the
// run-queue delay histogram per QoS class.
func runqLatencyDesc() *prometheus.Desc {
	return prometheus.NewDesc(
		"sluice_runq_latency_seconds",
		"Time tasks waited on a CPU run queue before running, per QoS class (eBPF, log2 buckets).",
		[]string{"class"}, nil)
}

// runqLatencyMetrics turns cumulative per-class counters (each class's sum
// of Sampler.Read windows since agent start) into Prometheus histograms
// with desc, which must have exactly one variable label (the class), as
// runqLatencyDesc has. Bucket upper bounds are the log2 slot bounds in
// seconds (2 ns, 4 ns, ... 2^31 ns); the last slot is the +Inf bucket.
// Classes are emitted in qos.Classes order, then any others in map order.
func runqLatencyMetrics(desc *prometheus.Desc, byClass map[qos.Class]CgroupStats) []prometheus.Metric {
	out := make([]prometheus.Metric, 0, len(byClass))
	emit := func(class qos.Class, st CgroupStats) {
		buckets := make(map[float64]uint64, HistSlots-1)
		var cum uint64
		for i, n := range st.RunqHist[:HistSlots-1] {
			cum += n
			_, hiNs := SlotBounds(i)
			buckets[hiNs/1e9] = cum
		}
		count := cum + st.RunqHist[HistSlots-1]
		out = append(out, prometheus.MustNewConstHistogram(desc, count, st.RunqDelayTotal.Seconds(), buckets, string(class)))
	}
	for _, c := range qos.Classes {
		if st, ok := byClass[c]; ok {
			emit(c, st)
		}
	}
	for c, st := range byClass {
		if !isKnownClass(c) {
			emit(c, st)
		}
	}
	return out
}

func isKnownClass(c qos.Class) bool {
	for _, k := range qos.Classes {
		if k == c {
			return true
		}
	}
	return false
}

// RunqLatencyCollector is a prometheus.Collector for per-class run-queue
// histograms. Snapshot returns cumulative per-class counters; it is called
// on every scrape and must be safe for concurrent use.
type RunqLatencyCollector struct {
	Snapshot func() map[qos.Class]CgroupStats
	desc     *prometheus.Desc
}

// NewRunqLatencyCollector returns a collector of sluice_runq_latency_seconds.
func NewRunqLatencyCollector(snapshot func() map[qos.Class]CgroupStats) *RunqLatencyCollector {
	return &RunqLatencyCollector{Snapshot: snapshot, desc: runqLatencyDesc()}
}

// Describe implements prometheus.Collector.
func (c *RunqLatencyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *RunqLatencyCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range runqLatencyMetrics(c.desc, c.Snapshot()) {
		ch <- m
	}
}
