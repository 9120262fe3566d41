package sim

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/brain/place"
	"github.com/sluicehq/sluice/brain/trace"
)

// Workload is what a simulation replays: the cluster as it starts, the
// placement profile and the requests in arrival order.
type Workload struct {
	Name string
	// Snapshot is the cluster as it starts: its hosts and, as
	// Snapshot.Placements, the existing placements every run starts from
	// (a generic file's on: lists; a saved snapshot's placements).
	Snapshot place.Snapshot
	Profile  place.Profile
	// ProfileFor, when set, gives the profile for a strategy (some
	// experiments tune scoring per strategy); otherwise Profile is used
	// with its Strategy replaced.
	ProfileFor func(place.Strategy) place.Profile
	Requests   []place.Request
	// Unplaceable counts instances asked for beyond what the cluster
	// could hold even empty (FromGeneric's bound per app); replays count
	// them as failed without trying them, so a request for two billion
	// instances costs what the cluster can hold, not two billion records.
	Unplaceable []Unplaceable
}

// Unplaceable is Count instances of App that cannot fit.
type Unplaceable struct {
	App   string `json:"app"`
	Count int    `json:"count"`
	// Bound is the most instances of App an empty cluster holds.
	Bound int64 `json:"bound"`
}

// ReasonBeyondCapacity is the failure reason of Unplaceable instances.
const ReasonBeyondCapacity = "beyond cluster capacity"

// MaxInstances bounds the instances a generic workload expands into
// requests and existing placements (the rest being Unplaceable): each
// costs a few hundred bytes in every run.
const MaxInstances = 2_000_000

func (w *Workload) unplaceable() int {
	n := 0
	for _, u := range w.Unplaceable {
		n += u.Count
	}
	return n
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
// expanded in file order; instance i of app a is named "a-i". A request's
// first len(On) instances are existing placements: they go into the
// workload's snapshot, on the hosts named (GPU devices chosen first-fit),
// and only the rest become requests. Every instance of an app shares the
// app's demand and curves (read-only), so memory grows with apps, not
// instances.
//
// Existing placements that overflow a host, take a GPU the host cannot
// give, miss a selector or break an anti-affinity rule or a quota are an
// error listing each problem with the request and host. They are not a
// reported violation to carry on from: the placement core refuses a host
// filled beyond capacity, every score and self-check of a run assumes a
// feasible start, and a plan built from an impossible state would hide the
// very problem the file describes. Spread is not checked on existing
// placements (it constrains new ones only, as in Kubernetes).
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
	// One host per entry and its count: hosts of one entry differ only in
	// name, so the apps' bounds are computed per entry.
	var shapes []place.Host
	var shapeCount []int64
	k := 0
	for _, h := range g.Hosts {
		n := len(h.Names())
		shapes = append(shapes, w.Snapshot.Hosts[k])
		shapeCount = append(shapeCount, int64(n))
		k += n
	}
	apps := map[string]*appTemplate{}
	for _, a := range g.Apps {
		apps[a.Name] = newAppTemplate(a, shapes, shapeCount)
		aas, spreads := a.Rules(g.Domain())
		w.Profile.AntiAffinity = append(w.Profile.AntiAffinity, aas...)
		w.Profile.Spreads = append(w.Profile.Spreads, spreads...)
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
	var origins []string // per existing placement, its path in the file
	expanded := 0
	for ri, r := range g.Requests {
		a, ok := apps[r.App]
		if !ok {
			return nil, fmt.Errorf("generic workload: request for unknown app %q", r.App)
		}
		// Instances past the app's bound cannot fit whatever happens
		// before them: they are counted, not expanded.
		n := r.Count
		if a.bound >= 0 {
			room := max(int64(len(r.On)), a.bound-int64(next[r.App]))
			if int64(n) > room {
				w.Unplaceable = append(w.Unplaceable, Unplaceable{App: r.App, Count: n - int(room), Bound: a.bound})
				n = int(room)
			}
		}
		if expanded += n; expanded > MaxInstances {
			return nil, fmt.Errorf("generic workload: requests[%d]: %w: more than %d instances could fit the cluster; the simulator expands at most %d (give the app a demand or ask for fewer)",
				ri, trace.ErrLimit, MaxInstances, MaxInstances)
		}
		for k := range n {
			req := a.request(next[r.App], r)
			next[r.App]++
			if k < len(r.On) {
				w.Snapshot.Placements = append(w.Snapshot.Placements, place.Placement{Request: req, Host: r.On[k]})
				origins = append(origins, fmt.Sprintf("requests[%d].on[%d]", ri, k))
				continue
			}
			w.Requests = append(w.Requests, req)
		}
	}
	if err := checkExisting(w, origins); err != nil {
		return nil, err
	}
	return w, nil
}

// appTemplate is what every instance of an app shares.
type appTemplate struct {
	name     string
	demand   place.Resources
	curves   map[string][]int64
	gpu      place.GPURequest
	selector map[string]string
	// bound is the most instances an empty cluster holds; -1 = no bound.
	bound int64
}

// newAppTemplate builds a's template; hosts[i] stands for count[i] hosts.
func newAppTemplate(a trace.GenericApp, hosts []place.Host, count []int64) *appTemplate {
	t := &appTemplate{name: a.Name, demand: a.Demand(), curves: a.CurveDemand(), gpu: a.GPURequest(), selector: a.Selector}
	for dim, pts := range t.curves {
		// place requires a curved dimension's flat demand to be the
		// curve's peak.
		t.demand[dim] = slices.Max(pts)
	}
	perHost := int64(a.MaxPerHost)
	for _, aa := range a.AntiAffinity {
		if aa.App == a.Name && (perHost == 0 || int64(aa.MaxTogether) < perHost) {
			perHost = int64(aa.MaxTogether)
		}
	}
	t.bound = 0
	for i := range hosts {
		n := t.room(&hosts[i], perHost)
		if n < 0 {
			t.bound = -1
			break
		}
		t.bound = min(t.bound+min(n, math.MaxInt32)*count[i], math.MaxInt64/2)
	}
	return t
}

// room is the most instances host h holds alone, by capacity, GPUs,
// selector and the per-host cap (0 = none); -1 when nothing bounds it.
// Instances of one app share one curve, so n fit a dimension exactly when
// n times the peak does.
func (t *appTemplate) room(h *place.Host, perHost int64) int64 {
	for k, v := range t.selector {
		if h.Labels[k] != v {
			return 0
		}
		if _, ok := h.Labels[k]; !ok {
			return 0
		}
	}
	n := int64(-1)
	limit := func(m int64) {
		if n < 0 || m < n {
			n = m
		}
	}
	for dim, v := range t.demand {
		if v > 0 {
			limit(h.Capacity[dim] / v)
		}
	}
	if g := t.gpu; g.Count > 0 || g.SharedMilli > 0 {
		if len(g.Models) > 0 && !slices.Contains(g.Models, h.GPUModel) {
			return 0
		}
		if g.Count > 0 {
			limit(int64(h.GPUs / g.Count))
		} else {
			limit(int64(h.GPUs) * (place.GPUMilliPerDevice / g.SharedMilli))
		}
	}
	if perHost > 0 {
		limit(perHost)
	}
	return n
}

// request is instance i of the app for request r. The maps are the
// template's, shared: nothing downstream writes a request's maps.
func (t *appTemplate) request(i int, r trace.GenericRequest) place.Request {
	return place.Request{
		ID:       t.name + "-" + strconv.Itoa(i),
		App:      t.name,
		Group:    r.Group,
		Priority: r.Priority,
		Demand:   t.demand,
		Curves:   t.curves,
		GPU:      t.gpu,
		Selector: t.selector,
		Preempt:  r.Preempt,
	}
}

// checkExisting binds w's existing placements one by one on an empty
// cluster, giving GPU requests their devices first-fit, and reports every
// placement that does not fit (origins[i] names placement i in the file),
// then the selectors, anti-affinity rules and quotas the whole existing
// state breaks.
func checkExisting(w *Workload, origins []string) error {
	if len(w.Snapshot.Placements) == 0 {
		return nil
	}
	c, err := place.New(place.Snapshot{Hosts: w.Snapshot.Hosts}, w.Profile)
	if err != nil {
		return fmt.Errorf("generic workload: %w", err)
	}
	hostGPUs := map[string][]int64{} // free milli-GPUs per device
	for _, h := range w.Snapshot.Hosts {
		if h.GPUs > 0 {
			free := make([]int64, h.GPUs)
			for i := range free {
				free[i] = place.GPUMilliPerDevice
			}
			hostGPUs[h.Name] = free
		}
	}
	var probs []string
	kept := w.Snapshot.Placements[:0]
	for i, p := range w.Snapshot.Placements {
		p.GPUIndices = firstFitGPUs(hostGPUs[p.Host], p.GPU)
		if err := c.Add(p); err != nil {
			probs = append(probs, fmt.Sprintf("%s: %v", origins[i], err))
			continue
		}
		kept = append(kept, p)
	}
	w.Snapshot.Placements = kept
	for _, v := range Validate(w.Snapshot, w.Profile) {
		switch v.Rule {
		case "selector", "anti-affinity", "quota":
			probs = append(probs, fmt.Sprintf("existing placements: %s", v))
		}
	}
	if len(probs) > 0 {
		return fmt.Errorf("generic workload: %w: existing placements break the cluster's limits:\n%s", trace.ErrInvalid, strings.Join(probs, "\n"))
	}
	return nil
}

// firstFitGPUs takes devices for g from free (milli-GPUs per device),
// lowest index first, and returns their indices; nil when g needs none or
// the host cannot give them (Add then reports the shortfall).
func firstFitGPUs(free []int64, g place.GPURequest) []int {
	want, per := g.Count, int64(place.GPUMilliPerDevice)
	if g.SharedMilli > 0 {
		want, per = 1, g.SharedMilli
	}
	if want == 0 {
		return nil
	}
	var idx []int
	for i, f := range free {
		if f >= per && len(idx) < want {
			idx = append(idx, i)
		}
	}
	if len(idx) < want {
		return nil
	}
	for _, i := range idx {
		free[i] -= per
	}
	return idx
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
