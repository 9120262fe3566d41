package main

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// etcdMetrics gathers the embedded etcd member's own metrics (etcd_*):
// etcd registers them in client_golang's default registry, where the
// brain's registry does not look. Only etcd's families are taken, so the
// default registry's Go and process collectors do not clash with the
// brain's.
type etcdMetrics struct{ from prometheus.Gatherer }

func (g etcdMetrics) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := g.from.Gather()
	out := mfs[:0]
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "etcd_") {
			out = append(out, mf)
		}
	}
	return out, err
}
