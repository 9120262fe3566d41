package web

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/brain/safety"
	"github.com/sluicehq/sluice/brain/server"
)

// fakeSource serves a fixed fleet and a real event bus, and counts the
// copies taken.
type fakeSource struct {
	fleet  server.Fleet
	bus    *server.Bus
	copies atomic.Int64
}

func (f *fakeSource) Fleet() server.Fleet { f.copies.Add(1); return f.fleet }
func (f *fakeSource) Events() *server.Bus { return f.bus }

var synthAt = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

// synthFleet is a fleet of n hosts and n/10 jobs with seeded signals: a
// few hosts down or draining, signals spread across the safety lines.
func synthFleet(n int) server.Fleet {
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	th := safety.DefaultThresholds()
	f := server.Fleet{At: synthAt, Thresholds: th, TTL: time.Duration(n/50) * time.Second}
	for i := range n {
		h := server.FleetHost{
			Name: fmt.Sprintf("host-%05d", i), State: "up", Labels: map[string]string{"zone": fmt.Sprintf("z%d", i%4), "rack": fmt.Sprintf("r%d", i%40)},
			Capacity: map[string]int64{"cpu": 32000, "memory": 128 << 30}, Requested: map[string]int64{"cpu": int64(rng.IntN(24000)), "memory": int64(rng.IntN(96)) << 30},
			Reported: true, LastHeartbeat: synthAt.Add(-time.Duration(rng.IntN(20)) * time.Second),
			ClassUsage: map[string]server.ClassUse{
				"online": {CPUMilli: int64(rng.IntN(16000)), MemoryBytes: int64(rng.IntN(64)) << 30}, "offline": {CPUMilli: int64(rng.IntN(12000))}, "system": {CPUMilli: int64(rng.IntN(2000))},
			},
			LentCPUMilli: int64(rng.IntN(16000)), LentMemoryBytes: int64(rng.IntN(32)) << 30,
			OnlineRunqP99: time.Duration(rng.ExpFloat64()*400) * time.Microsecond, CPUPressurePct: rng.ExpFloat64() * 4, MemPressurePct: rng.ExpFloat64(),
			KillsLastHour: int(rng.ExpFloat64() * 0.3), Containers: rng.IntN(30), TargetVersion: uint64(rng.IntN(100) + 1),
		}
		h.Running, h.AppliedVersion = h.Containers, h.TargetVersion
		h.AppliedWaterLevel = 0.95
		if i%10 == 4 {
			wl := 0.8
			h.CPUWaterLevel = &wl
			h.AppliedWaterLevel = wl
		}
		switch {
		case i%997 == 3:
			h.State = "down"
			h.LastHeartbeat = synthAt.Add(-5 * time.Minute)
		case i%1499 == 7:
			h.State = "draining"
		}
		h.Safety = safety.Assess(safety.Signals{Reported: true, OnlineRunqP99: h.OnlineRunqP99, CPUPressureSomePct: h.CPUPressurePct,
			MemoryPressureSomePct: h.MemPressurePct, KillsLastHour: h.KillsLastHour, LentCPUShare: float64(h.LentCPUMilli) / 32000,
			OfflineCPUMilli: h.ClassUsage["offline"].CPUMilli}, th)
		f.Hosts = append(f.Hosts, h)
	}
	for j := range n / 10 {
		job := server.FleetJob{Name: fmt.Sprintf("job-%04d", j), Class: []string{"online", "offline"}[j%2], Priority: j % 3, Count: 3, Image: "busybox"}
		for r := range job.Count {
			host := fmt.Sprintf("host-%05d", rng.IntN(n))
			job.Replicas = append(job.Replicas, server.FleetReplica{ID: fmt.Sprintf("%s-%d", job.Name, r), Host: host, Why: host + " scored 0.700 by spread"})
		}
		f.Jobs = append(f.Jobs, job)
	}
	return f
}

func newTestUI(t testing.TB, f server.Fleet) (*fakeSource, http.Handler) {
	t.Helper()
	src := &fakeSource{fleet: f, bus: server.NewBus(slog.New(slog.DiscardHandler), func() time.Time { return synthAt }, prometheus.NewRegistry())}
	u, err := New(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	api := http.NewServeMux()
	api.Handle("/v1/events", src.bus.EventsHandler())
	api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "api: "+r.URL.Path, http.StatusTeapot) })
	return src, u.Handler(api)
}

func get(t testing.TB, h http.Handler, target string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

var hostRow = regexp.MustCompile(`<tr data-host="([^"]+)" class="([a-z]+)">`)

func rows(body string) []string {
	var out []string
	for _, m := range hostRow.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestTenThousandHostsPageShowsOnePage: the fleet page of a 10,000-host
// fleet carries one page of rows, the whole fleet's aggregates, and pages,
// searches and filters on the server.
func TestTenThousandHostsPageShowsOnePage(t *testing.T) {
	f := synthFleet(10000)
	src, h := newTestUI(t, f)
	src.bus.Publish(server.Event{Topic: server.TopicHost, Type: "down", Host: "host-00003", Reason: "no heartbeat for 31s (ttl 30s)"})
	code, body := get(t, h, "/")
	if code != 200 {
		t.Fatalf("GET /: %d %s", code, body)
	}
	if got := rows(body); len(got) != DefaultPerPage || got[0] != "host-00000" || got[49] != "host-00049" {
		t.Fatalf("first page rows: %d (%v...)", len(got), got[:min(2, len(got))])
	}
	s := summarize(f)
	for _, want := range []string{
		"<b>10000</b> hosts", fmt.Sprintf("%d down", s.ByState["down"]), fmt.Sprintf("%d unsafe", s.BySafety["unsafe"]),
		"1–50 of 10000", "page 1 of 200", `rel="next" href="/?page=2"`, "no heartbeat for 31s", `data-index="1"`,
		fmt.Sprintf("%d hosts down or draining", s.ByState["down"]+s.ByState["draining"]),
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if s.ByState["down"] == 0 || s.ByState["draining"] == 0 || s.BySafety["squeezing"] == 0 || s.BySafety["safe"] == 0 {
		t.Fatalf("synthetic fleet does not cover the states: %+v %+v", s.ByState, s.BySafety)
	}
	if len(body) > 200<<10 {
		t.Errorf("a page of 50 rows weighs %d KiB", len(body)>>10)
	}

	// Last page, search by name, by label, filters and sorting.
	_, body = get(t, h, "/?page=200")
	if got := rows(body); len(got) != 50 || got[49] != "host-09999" {
		t.Fatalf("last page: %v", got)
	}
	_, body = get(t, h, "/?q=host-0123")
	if got := rows(body); len(got) != 10 || got[0] != "host-01230" {
		t.Fatalf("search host-0123: %v", got)
	}
	_, body = get(t, h, "/?q=rack%3Dr7&per_page=500")
	if got := rows(body); len(got) != 250 || !strings.Contains(body, "of 250") {
		t.Fatalf("search rack=r7: %d rows", len(got))
	}
	_, body = get(t, h, "/?state=down&per_page=500")
	for _, m := range hostRow.FindAllStringSubmatch(body, -1) {
		if m[2] != "down" {
			t.Fatalf("state=down shows %s as %s", m[1], m[2])
		}
	}
	if got := rows(body); len(got) != s.ByState["down"] {
		t.Fatalf("state=down: %d rows, want %d", len(got), s.ByState["down"])
	}
	_, body = get(t, h, "/?sort=safety&per_page=5")
	if !strings.Contains(body, `<span class="sf unsafe">unsafe</span>`) || strings.Contains(body, `<span class="sf safe">safe</span>`) {
		t.Fatal("sort=safety does not put unsafe hosts first")
	}

	// The partial is the live part only, for the script's refreshes.
	_, body = get(t, h, "/?partial=1")
	if strings.Contains(body, "<html") || len(rows(body)) != 50 {
		t.Fatal("partial render is not the live part alone")
	}

	// Jobs: paged, searchable by job or by host, with each placement's why.
	_, body = get(t, h, "/jobs?q=job-0042")
	if !strings.Contains(body, `data-job="job-0042"`) || !strings.Contains(body, "scored 0.700 by spread") || strings.Count(body, `class="job"`) != 1 {
		t.Fatal("jobs search job-0042")
	}
	host := f.Jobs[7].Replicas[0].Host
	_, body = get(t, h, "/jobs?q="+host)
	if !strings.Contains(body, `data-job="job-0007"`) {
		t.Fatalf("jobs search by host %s misses job-0007", host)
	}

	// Anything else is the API's.
	if code, _ := get(t, h, "/metrics"); code != http.StatusTeapot {
		t.Fatalf("/metrics did not reach the api: %d", code)
	}
}

func TestBadQueriesAreRefusedByName(t *testing.T) {
	_, h := newTestUI(t, synthFleet(10))
	for q, want := range map[string]string{
		"state=gone": `state "gone"`, "safety=meh": `safety "meh"`, "sort=size": `sort "size"`,
		"page=0": `page "0"`, "per_page=100000": `per_page "100000"`, "page=x": `page "x"`,
	} {
		code, body := get(t, h, "/?"+q)
		if code != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Errorf("?%s: %d %q, want 400 naming %s", q, code, body, want)
		}
	}
	// A page past the end shows the last page.
	_, body := get(t, h, "/?page=9")
	if got := rows(body); len(got) != 10 {
		t.Fatalf("page past the end: %v", got)
	}
}

func TestQueryValuesRoundTrip(t *testing.T) {
	q := Query{Search: "zone=z1", State: "up", Safety: "unsafe", Sort: "kills", Page: 3, PerPage: 100}
	back, err := ParseQuery(q.Values(3))
	if err != nil || back != q {
		t.Fatalf("%+v -> %v -> %+v, %v", q, q.Values(3), back, err)
	}
	if v := (Query{Sort: "name", PerPage: DefaultPerPage}).Values(1); len(v) != 0 {
		t.Fatalf("defaults leak into the URL: %v", v)
	}
	if _, err := ParseQuery(url.Values{"q": {"  host-1 "}}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkFleetPage10k is the fleet page's server time for 10,000 hosts:
// the brain's snapshot is a parameter here; the browser test measures the
// whole load.
func BenchmarkFleetPage10k(b *testing.B) {
	_, h := newTestUI(b, synthFleet(10000))
	for b.Loop() {
		if code, _ := get(b, h, "/?sort=safety"); code != 200 {
			b.Fatal(code)
		}
	}
}

// TestPagesShareACopyUntilAnEvent: pages rendered with no event between
// them share one copy of the fleet; an event makes the next page copy
// again, so a page never misses a change the stream announced.
func TestPagesShareACopyUntilAnEvent(t *testing.T) {
	src := &fakeSource{fleet: synthFleet(20), bus: server.NewBus(slog.New(slog.DiscardHandler), time.Now, prometheus.NewRegistry())}
	u, err := New(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	u.maxAge = time.Hour // only events invalidate here
	h := u.Handler(http.NotFoundHandler())
	get(t, h, "/")
	get(t, h, "/?partial=1")
	get(t, h, "/jobs")
	if n := src.copies.Load(); n != 1 {
		t.Fatalf("%d copies for three pages without an event, want 1", n)
	}
	src.bus.Publish(server.Event{Topic: server.TopicHost, Type: "down", Host: "host-00001"})
	get(t, h, "/?partial=1")
	if n := src.copies.Load(); n != 2 {
		t.Fatalf("%d copies after an event, want 2", n)
	}
	u.maxAge = 0 // and age alone too
	get(t, h, "/?partial=1")
	if n := src.copies.Load(); n != 3 {
		t.Fatalf("%d copies past the age limit, want 3", n)
	}
}

// The water level column shows what each host's last decision applied,
// the brain's override named when there is one, and "local policy" for a
// host that reported none.
func TestWaterLevelColumn(t *testing.T) {
	f := synthFleet(10)
	f.Hosts[0].AppliedWaterLevel = 0
	_, h := newTestUI(t, f)
	code, body := get(t, h, "/?q=host-0000")
	if code != 200 {
		t.Fatalf("GET: %d", code)
	}
	cell := func(host string) string {
		i := strings.Index(body, `data-host="`+host+`"`)
		if i < 0 {
			t.Fatalf("no row for %s", host)
		}
		row := body[i:]
		return row[:strings.Index(row, "</tr>")]
	}
	for host, want := range map[string]string{"host-00000": "<td>local policy</td>", "host-00001": "<td>95%</td>", "host-00004": "<td>80% (brain 80%)</td>"} {
		if !strings.Contains(cell(host), want) {
			t.Errorf("%s: row lacks %q:\n%s", host, want, cell(host))
		}
	}
}
