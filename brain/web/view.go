package web

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/brain/safety"
	"github.com/sluicehq/sluice/brain/server"
)

// Page sizes: a page of rows stays cheap to render and to read.
const (
	DefaultPerPage = 50
	MaxPerPage     = 500
)

// Query is what a page asks for: a search, filters, an order and a page.
type Query struct {
	// Search matches a host or job name by substring, or a host label
	// given as key=value.
	Search string
	// State filters hosts: up, down, draining (empty: all).
	State string
	// Safety filters hosts by safety state (empty: all).
	Safety string
	// Sort orders hosts: name (default), safety, runq, cpu-psi, mem-psi,
	// kills, lent.
	Sort    string
	Page    int
	PerPage int
}

var (
	hostSorts  = []string{"name", "safety", "runq", "cpu-psi", "mem-psi", "kills", "lent"}
	hostStates = []string{"up", "down", "draining"}
	safeties   = []string{string(safety.Safe), string(safety.Squeezing), string(safety.Unsafe), string(safety.Unknown)}
)

// ParseQuery reads a query from URL values; a bad value is an error
// naming the parameter.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{Search: strings.TrimSpace(v.Get("q")), State: v.Get("state"), Safety: v.Get("safety"), Sort: v.Get("sort"), Page: 1, PerPage: DefaultPerPage}
	if q.State != "" && !slices.Contains(hostStates, q.State) {
		return q, fmt.Errorf("state %q: want one of %s", q.State, strings.Join(hostStates, ", "))
	}
	if q.Safety != "" && !slices.Contains(safeties, q.Safety) {
		return q, fmt.Errorf("safety %q: want one of %s", q.Safety, strings.Join(safeties, ", "))
	}
	if q.Sort == "" {
		q.Sort = "name"
	}
	if !slices.Contains(hostSorts, q.Sort) {
		return q, fmt.Errorf("sort %q: want one of %s", q.Sort, strings.Join(hostSorts, ", "))
	}
	for _, p := range []struct {
		name string
		dst  *int
		max  int
	}{{"page", &q.Page, 1 << 30}, {"per_page", &q.PerPage, MaxPerPage}} {
		s := v.Get(p.name)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > p.max {
			return q, fmt.Errorf("%s %q: want a whole number from 1 to %d", p.name, s, p.max)
		}
		*p.dst = n
	}
	return q, nil
}

// Values is q as URL values, without defaults, with page set to page.
func (q Query) Values(page int) url.Values {
	v := url.Values{}
	set := func(k, val, def string) {
		if val != "" && val != def {
			v.Set(k, val)
		}
	}
	set("q", q.Search, "")
	set("state", q.State, "")
	set("safety", q.Safety, "")
	set("sort", q.Sort, "name")
	set("per_page", strconv.Itoa(q.PerPage), strconv.Itoa(DefaultPerPage))
	set("page", strconv.Itoa(page), "1")
	return v
}

// Summary aggregates the whole fleet, whatever the page shows.
type Summary struct {
	Hosts     int
	ByState   map[string]int
	BySafety  map[string]int
	Capacity  Amount
	Requested Amount
	Lent      Amount
	// UsedByClass sums reported usage per class.
	UsedByClass map[string]Amount
	Kills       int
	Jobs        int
	Replicas    int
	Placed      int
}

// Amount is CPU and memory.
type Amount struct {
	CPUMilli    int64
	MemoryBytes int64
}

func summarize(f server.Fleet) Summary {
	s := Summary{Hosts: len(f.Hosts), ByState: map[string]int{}, BySafety: map[string]int{}, UsedByClass: map[string]Amount{}}
	for _, h := range f.Hosts {
		s.ByState[h.State]++
		s.BySafety[string(h.Safety.State)]++
		s.Capacity.CPUMilli += h.Capacity["cpu"]
		s.Capacity.MemoryBytes += h.Capacity["memory"]
		s.Requested.CPUMilli += h.Requested["cpu"]
		s.Requested.MemoryBytes += h.Requested["memory"]
		if h.State != "down" {
			s.Lent.CPUMilli += h.LentCPUMilli
			s.Lent.MemoryBytes += h.LentMemoryBytes
		}
		for c, u := range h.ClassUsage {
			a := s.UsedByClass[c]
			a.CPUMilli += u.CPUMilli
			a.MemoryBytes += u.MemoryBytes
			s.UsedByClass[c] = a
		}
		s.Kills += h.KillsLastHour
	}
	s.Jobs = len(f.Jobs)
	for _, j := range f.Jobs {
		s.Replicas += j.Count
		for _, r := range j.Replicas {
			if r.Host != "" {
				s.Placed++
			}
		}
	}
	return s
}

// Pager is one page of a filtered list.
type Pager struct {
	Page, Pages, PerPage int
	// Matched is how many rows passed the filters; First and Last number
	// the shown rows (1-based).
	Matched, First, Last int
}

func paginate(n, page, perPage int) (Pager, int, int) {
	p := Pager{Page: page, PerPage: perPage, Matched: n, Pages: max(1, (n+perPage-1)/perPage)}
	p.Page = min(p.Page, p.Pages)
	lo := (p.Page - 1) * perPage
	hi := min(lo+perPage, n)
	if hi > lo {
		p.First, p.Last = lo+1, hi
	}
	return p, lo, hi
}

// matchHost applies the search and filters.
func matchHost(h *server.FleetHost, q Query) bool {
	if q.State != "" && h.State != q.State {
		return false
	}
	if q.Safety != "" && string(h.Safety.State) != q.Safety {
		return false
	}
	if q.Search == "" {
		return true
	}
	if k, v, ok := strings.Cut(q.Search, "="); ok {
		return h.Labels[k] == v
	}
	return strings.Contains(h.Name, q.Search)
}

func severity(s safety.State) int {
	switch s {
	case safety.Unsafe:
		return 3
	case safety.Squeezing:
		return 2
	case safety.Safe:
		return 1
	}
	return 0
}

// hostOrder orders hosts for a sort key: the worst first for signals,
// by name within ties.
func hostOrder(key string) func(a, b *server.FleetHost) int {
	var by func(a, b *server.FleetHost) int
	switch key {
	case "safety":
		by = func(a, b *server.FleetHost) int {
			return cmp.Compare(severity(b.Safety.State), severity(a.Safety.State))
		}
	case "runq":
		by = func(a, b *server.FleetHost) int { return cmp.Compare(b.OnlineRunqP99, a.OnlineRunqP99) }
	case "cpu-psi":
		by = func(a, b *server.FleetHost) int { return cmp.Compare(b.CPUPressurePct, a.CPUPressurePct) }
	case "mem-psi":
		by = func(a, b *server.FleetHost) int { return cmp.Compare(b.MemPressurePct, a.MemPressurePct) }
	case "kills":
		by = func(a, b *server.FleetHost) int { return cmp.Compare(b.KillsLastHour, a.KillsLastHour) }
	case "lent":
		by = func(a, b *server.FleetHost) int { return cmp.Compare(b.LentCPUMilli, a.LentCPUMilli) }
	default:
		return func(a, b *server.FleetHost) int { return cmp.Compare(a.Name, b.Name) }
	}
	return func(a, b *server.FleetHost) int {
		if c := by(a, b); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	}
}

// HostsPage is the fleet page's data.
type HostsPage struct {
	Query   Query
	Summary Summary
	Pager   Pager
	Hosts   []*server.FleetHost
	// Unhealthy lists hosts down or draining (at most maxUnhealthy), and
	// how many there are.
	Unhealthy      []*server.FleetHost
	UnhealthyCount int
	Thresholds     safety.Thresholds
}

const maxUnhealthy = 20

// buildHostsPage filters, orders and pages the fleet's hosts.
func buildHostsPage(f server.Fleet, q Query) HostsPage {
	p := HostsPage{Query: q, Summary: summarize(f), Thresholds: f.Thresholds}
	var matched []*server.FleetHost
	for i := range f.Hosts {
		h := &f.Hosts[i]
		if matchHost(h, q) {
			matched = append(matched, h)
		}
		if h.State != "up" {
			p.UnhealthyCount++
			if len(p.Unhealthy) < maxUnhealthy {
				p.Unhealthy = append(p.Unhealthy, h)
			}
		}
	}
	if q.Sort != "name" { // the fleet comes sorted by name
		slices.SortStableFunc(matched, hostOrder(q.Sort))
	}
	var lo, hi int
	p.Pager, lo, hi = paginate(len(matched), q.Page, q.PerPage)
	p.Hosts = matched[lo:hi]
	return p
}

// JobsPage is the jobs page's data.
type JobsPage struct {
	Query   Query
	Summary Summary
	Pager   Pager
	Jobs    []server.FleetJob
}

// buildJobsPage filters jobs by name (or a replica's host) and pages them.
func buildJobsPage(f server.Fleet, q Query) JobsPage {
	p := JobsPage{Query: q, Summary: summarize(f)}
	var matched []server.FleetJob
	for _, j := range f.Jobs {
		if q.Search == "" || strings.Contains(j.Name, q.Search) || slices.ContainsFunc(j.Replicas, func(r server.FleetReplica) bool { return r.Host == q.Search }) {
			matched = append(matched, j)
		}
	}
	var lo, hi int
	p.Pager, lo, hi = paginate(len(matched), q.Page, q.PerPage)
	p.Jobs = matched[lo:hi]
	return p
}
