package sim

import (
	"fmt"

	"github.com/sluicehq/sluice/brain/openb"
	"github.com/sluicehq/sluice/brain/place"
)

// OpenbArrivalRatio is how much GPU demand the openb experiment sends, as
// a multiple of the cluster's GPUs (the FGD paper's 1.3).
const OpenbArrivalRatio = 1.3

// FromOpenb builds the openb experiment's workload for one seed (the seed
// shuffles the pod list): the trace's hosts, the experiment's
// per-strategy profile and the arrival sequence, with the same request IDs
// and seeds brain/openb's own Run uses.
func FromOpenb(tr openb.Trace, seed uint64) *Workload {
	hosts := openb.Hosts(tr.Nodes)
	var gpuMilli int64
	for _, h := range hosts {
		gpuMilli += int64(h.GPUs) * place.GPUMilliPerDevice
	}
	w := &Workload{
		Name:       "openb " + tr.Name,
		Snapshot:   place.Snapshot{Hosts: hosts},
		Profile:    openb.Profile(tr, place.StrategyDefault),
		ProfileFor: func(s place.Strategy) place.Profile { return openb.Profile(tr, s) },
	}
	for i, p := range openb.Workload(tr.Pods, gpuMilli, OpenbArrivalRatio, seed) {
		w.Requests = append(w.Requests, p.Request(fmt.Sprintf("%s#%d", p.Name, i), seed<<20+uint64(i)))
	}
	return w
}
