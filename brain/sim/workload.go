package sim

import (
	"fmt"
	"math"
	"strconv"

	"github.com/sluicehq/sluice/brain/place"
	"github.com/sluicehq/sluice/brain/trace"
)

// Workload is what a simulation replays: the cluster as it starts, the
// placement profile and the requests in arrival order.
type Workload struct {
	Name     string
	Snapshot place.Snapshot
	Profile  place.Profile
	// ProfileFor, when set, gives the profile for a strategy (some
	// experiments tune scoring per strategy); otherwise Profile is used
	// with its Strategy replaced.
	ProfileFor func(place.Strategy) place.Profile
	Requests   []place.Request
}

func (w *Workload) profile(s place.Strategy) place.Profile {
	if w.ProfileFor != nil {
		p := w.ProfileFor(s)
		p.Strategy = s
		return p
	}
	p := w.Profile
	p.Strategy = s
	return p
}

// V2018MemoryBytesPerUnit maps the trace's normalised memory (a host has
// 100) to bytes: 1 unit = 1 GiB. Only ratios matter to the scores.
const V2018MemoryBytesPerUnit = 1 << 30

// V2018DomainLabel is the host label carrying failure_domain_1, across
// which deploy units are spread.
const V2018DomainLabel = "failure_domain_1"

// FromV2018 turns a loaded v2018 trace into a workload: one host per
// machine (labels failure_domain_1 and failure_domain_2), one request per
// container in arrival order, and every deploy unit with more than one
// container spread across failure_domain_1 with skew 1.
func FromV2018(t *trace.V2018) (*Workload, error) {
	w := &Workload{Name: "v2018"}
	for _, m := range t.Machines {
		w.Snapshot.Hosts = append(w.Snapshot.Hosts, place.Host{
			Name: m.ID,
			Labels: map[string]string{
				V2018DomainLabel:   strconv.FormatInt(m.FailureDomain1, 10),
				"failure_domain_2": m.FailureDomain2,
			},
			Capacity: place.Resources{
				place.DimCPU:    m.CPUCores * 1000,
				place.DimMemory: int64(math.Round(m.MemNormalized * V2018MemoryBytesPerUnit)),
			},
		})
	}
	units := map[string]int{}
	var order []string
	for _, c := range t.Containers {
		if units[c.AppDU] == 0 {
			order = append(order, c.AppDU)
		}
		units[c.AppDU]++
		w.Requests = append(w.Requests, place.Request{
			ID:  c.ID,
			App: c.AppDU,
			Demand: place.Resources{
				place.DimCPU:    c.CPURequestCentiCores * 10,
				place.DimMemory: int64(math.Round(c.MemNormalized * V2018MemoryBytesPerUnit)),
			},
		})
	}
	for _, du := range order {
		if units[du] > 1 {
			w.Profile.Spreads = append(w.Profile.Spreads, place.Spread{App: du, DomainLabel: V2018DomainLabel, MaxSkew: 1})
		}
	}
	return w, nil
}

// FromGeneric turns a decoded generic file into a workload. Requests are
// expanded in file order; instance i of app a is named "a-i".
func FromGeneric(g *trace.Generic) (*Workload, error) {
	w := &Workload{Name: "generic"}
	w.Profile.CurvePoints = g.CurvePoints
	w.Profile.Lending = g.Lending
	for _, h := range g.Hosts {
		for _, name := range h.Names() {
			labels := map[string]string{}
			for k, v := range h.Labels {
				labels[k] = v
			}
			if h.FailureDomain != "" {
				labels[g.Domain()] = h.FailureDomain
			}
			w.Snapshot.Hosts = append(w.Snapshot.Hosts, place.Host{
				Name:     name,
				Labels:   labels,
				Capacity: resources(h.CPU, h.Memory, h.Disk, h.Extended),
				GPUs:     h.GPUs,
				GPUModel: h.GPUModel,
			})
		}
	}
	apps := map[string]trace.GenericApp{}
	for _, a := range g.Apps {
		apps[a.Name] = a
		for _, aa := range a.AntiAffinity {
			w.Profile.AntiAffinity = append(w.Profile.AntiAffinity, place.AntiAffinity{App: a.Name, Other: aa.App, MaxOther: aa.MaxTogether})
		}
		if a.MaxPerHost > 0 {
			w.Profile.AntiAffinity = append(w.Profile.AntiAffinity, place.AntiAffinity{App: a.Name, Other: a.Name, MaxOther: a.MaxPerHost - 1})
		}
		if a.Spread != nil {
			label := a.Spread.DomainLabel
			if label == "" {
				label = g.Domain()
			}
			w.Profile.Spreads = append(w.Profile.Spreads, place.Spread{App: a.Name, DomainLabel: label, MaxSkew: a.Spread.MaxSkew})
		}
	}
	for _, q := range g.Quotas {
		pq := place.Quota{Group: q.Group, Limit: place.Resources{}, GPUMilli: -1}
		if q.CPU > 0 {
			pq.Limit[place.DimCPU] = int64(q.CPU)
		}
		if q.Memory > 0 {
			pq.Limit[place.DimMemory] = int64(q.Memory)
		}
		if q.GPUMilli > 0 {
			pq.GPUMilli = q.GPUMilli
		}
		w.Profile.Quotas = append(w.Profile.Quotas, pq)
	}
	next := map[string]int{}
	for _, r := range g.Requests {
		a, ok := apps[r.App]
		if !ok {
			return nil, fmt.Errorf("generic workload: request for unknown app %q", r.App)
		}
		for range r.Count {
			req := place.Request{
				ID:       a.Name + "-" + strconv.Itoa(next[a.Name]),
				App:      a.Name,
				Group:    r.Group,
				Priority: r.Priority,
				Demand:   resources(a.CPU, a.Memory, a.Disk, a.Extended),
				Selector: a.Selector,
				Preempt:  r.Preempt,
			}
			next[a.Name]++
			if a.GPU != nil {
				req.GPU = place.GPURequest{Count: a.GPU.Count, SharedMilli: a.GPU.SharedMilli, Models: a.GPU.Models}
			}
			for dim, fracs := range a.Curves {
				peak := req.Demand[dim]
				pts := make([]int64, len(fracs))
				var top int64
				for i, f := range fracs {
					pts[i] = int64(math.Round(f * float64(peak)))
					top = max(top, pts[i])
				}
				if req.Curves == nil {
					req.Curves = map[string][]int64{}
				}
				req.Curves[dim] = pts
				// place requires a curved dimension's flat demand to be
				// the curve's peak.
				req.Demand[dim] = top
			}
			w.Requests = append(w.Requests, req)
		}
	}
	return w, nil
}

func resources(cpu trace.MilliCPU, mem, disk trace.Bytes, ext map[string]int64) place.Resources {
	r := place.Resources{place.DimCPU: int64(cpu), place.DimMemory: int64(mem)}
	if disk > 0 {
		r[place.DimDisk] = int64(disk)
	}
	for k, v := range ext {
		r[k] = v
	}
	return r
}
