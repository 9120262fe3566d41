package sim

import (
	"maps"
	"slices"

	"github.com/sluicehq/sluice/brain/place"
)

// The snapshot file's wire form: place's field names, zero fields left
// out, and each app's curves stored once in a table when every placement
// and request of the app has the same ones (a 68,000-placement cluster
// with day curves is 20 MB instead of 200). Files without the table, as
// older versions wrote them, read the same.

type wireSnapshot struct {
	Version int           `json:"version"`
	Profile place.Profile `json:"profile"`
	// Curves maps an app to the curves all its placements and requests
	// share; they leave theirs out.
	Curves   map[string]map[string][]int64 `json:"curves,omitempty"`
	Snapshot wireState                     `json:"snapshot"`
	Requests []wireRequest                 `json:"requests,omitempty"`
}

type wireState struct {
	Hosts      []wireHost      `json:"Hosts"`
	Placements []wirePlacement `json:"Placements"`
}

type wireHost struct {
	Name     string            `json:"Name"`
	Labels   map[string]string `json:"Labels,omitempty"`
	Capacity place.Resources   `json:"Capacity,omitempty"`
	GPUs     int               `json:"GPUs,omitempty"`
	GPUModel string            `json:"GPUModel,omitempty"`
}

type wireGPU struct {
	Count       int      `json:"Count,omitempty"`
	SharedMilli int64    `json:"SharedMilli,omitempty"`
	Models      []string `json:"Models,omitempty"`
}

type wireRequest struct {
	ID       string             `json:"ID"`
	App      string             `json:"App,omitempty"`
	Group    string             `json:"Group,omitempty"`
	Priority int                `json:"Priority,omitempty"`
	Demand   place.Resources    `json:"Demand,omitempty"`
	Curves   map[string][]int64 `json:"Curves,omitempty"`
	GPU      *wireGPU           `json:"GPU,omitempty"`
	Selector map[string]string  `json:"Selector,omitempty"`
	Strategy place.Strategy     `json:"Strategy,omitempty"`
	Seed     uint64             `json:"Seed,omitempty"`
	Preempt  bool               `json:"Preempt,omitempty"`
	Explain  bool               `json:"Explain,omitempty"`
}

type wirePlacement struct {
	wireRequest
	Host       string `json:"Host"`
	GPUIndices []int  `json:"GPUIndices,omitempty"`
	Borrowed   bool   `json:"Borrowed,omitempty"`
}

// sharedCurves finds the apps whose every request has the same curves.
func sharedCurves(reqs []*place.Request) map[string]map[string][]int64 {
	table := map[string]map[string][]int64{}
	mixed := map[string]bool{}
	for _, r := range reqs {
		if r.App == "" || mixed[r.App] {
			continue
		}
		c, seen := table[r.App]
		switch {
		case !seen:
			table[r.App] = r.Curves
		case !maps.EqualFunc(c, r.Curves, slices.Equal):
			mixed[r.App] = true
			delete(table, r.App)
		}
	}
	for app, c := range table {
		if len(c) == 0 {
			delete(table, app)
		}
	}
	return table
}

func toWire(sf *SnapshotFile) *wireSnapshot {
	var all []*place.Request
	for i := range sf.Snapshot.Placements {
		all = append(all, &sf.Snapshot.Placements[i].Request)
	}
	for i := range sf.Requests {
		all = append(all, &sf.Requests[i])
	}
	table := sharedCurves(all)
	w := &wireSnapshot{Version: sf.Version, Profile: sf.Profile, Snapshot: wireState{Hosts: []wireHost{}, Placements: []wirePlacement{}}}
	if len(table) > 0 {
		w.Curves = table
	}
	for _, h := range sf.Snapshot.Hosts {
		w.Snapshot.Hosts = append(w.Snapshot.Hosts, wireHost(h))
	}
	for _, p := range sf.Snapshot.Placements {
		w.Snapshot.Placements = append(w.Snapshot.Placements, wirePlacement{
			wireRequest: requestToWire(&p.Request, table), Host: p.Host, GPUIndices: p.GPUIndices, Borrowed: p.Borrowed,
		})
	}
	for i := range sf.Requests {
		w.Requests = append(w.Requests, requestToWire(&sf.Requests[i], table))
	}
	return w
}

func requestToWire(r *place.Request, table map[string]map[string][]int64) wireRequest {
	w := wireRequest{ID: r.ID, App: r.App, Group: r.Group, Priority: r.Priority, Demand: r.Demand, Curves: r.Curves,
		Selector: r.Selector, Strategy: r.Strategy, Seed: r.Seed, Preempt: r.Preempt, Explain: r.Explain}
	if _, ok := table[r.App]; ok {
		w.Curves = nil
	}
	if g := r.GPU; g.Count != 0 || g.SharedMilli != 0 || len(g.Models) > 0 {
		w.GPU = &wireGPU{Count: g.Count, SharedMilli: g.SharedMilli, Models: g.Models}
	}
	return w
}

func fromWire(w *wireSnapshot) *SnapshotFile {
	sf := &SnapshotFile{Version: w.Version, Profile: w.Profile}
	for _, h := range w.Snapshot.Hosts {
		sf.Snapshot.Hosts = append(sf.Snapshot.Hosts, place.Host(h))
	}
	for _, p := range w.Snapshot.Placements {
		sf.Snapshot.Placements = append(sf.Snapshot.Placements, place.Placement{
			Request: requestFromWire(&p.wireRequest, w.Curves), Host: p.Host, GPUIndices: p.GPUIndices, Borrowed: p.Borrowed,
		})
	}
	for i := range w.Requests {
		sf.Requests = append(sf.Requests, requestFromWire(&w.Requests[i], w.Curves))
	}
	return sf
}

func requestFromWire(w *wireRequest, table map[string]map[string][]int64) place.Request {
	r := place.Request{ID: w.ID, App: w.App, Group: w.Group, Priority: w.Priority, Demand: w.Demand, Curves: w.Curves,
		Selector: w.Selector, Strategy: w.Strategy, Seed: w.Seed, Preempt: w.Preempt, Explain: w.Explain}
	if c, ok := table[w.App]; ok && r.Curves == nil {
		r.Curves = c // shared by every instance, read-only
	}
	if w.GPU != nil {
		r.GPU = place.GPURequest{Count: w.GPU.Count, SharedMilli: w.GPU.SharedMilli, Models: w.GPU.Models}
	}
	return r
}
