package server

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	placements   *prometheus.CounterVec
	placeSeconds prometheus.Histogram
	hosts        *prometheus.GaugeVec
	pushLag      prometheus.Histogram
	txnSeconds   *prometheus.HistogramVec
	passes       prometheus.Counter
	planSeconds  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		placements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_brain_placements_total",
			Help: "Replica placement attempts by result: placed, unplaceable, preempted (victims), evicted (host down or drained).",
		}, []string{"result"}),
		placeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_brain_placement_seconds",
			Help:    "Time brain/place took to decide one replica.",
			Buckets: prometheus.ExponentialBuckets(1e-5, 4, 10),
		}),
		hosts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_brain_hosts",
			Help: "Registered hosts by state: up, down, draining.",
		}, []string{"state"}),
		pushLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_brain_target_push_lag_seconds",
			Help:    "From a target version's commit to the agent's acknowledgement of it.",
			Buckets: prometheus.ExponentialBuckets(1e-3, 2, 14),
		}),
		txnSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_brain_etcd_txn_seconds",
			Help:    "etcd transaction latency by result: ok, conflict, error.",
			Buckets: prometheus.ExponentialBuckets(1e-4, 3, 12),
		}, []string{"result"}),
		passes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_brain_reconcile_passes_total",
			Help: "Reconcile passes that committed a change.",
		}),
		planSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_brain_reconcile_plan_seconds",
			Help:    "Time a reconcile pass took to plan its transaction (placement included, the etcd commit not).",
			Buckets: prometheus.ExponentialBuckets(1e-4, 3, 12),
		}),
	}
	reg.MustRegister(m.placements, m.placeSeconds, m.hosts, m.pushLag, m.txnSeconds, m.passes, m.planSeconds)
	return m
}
