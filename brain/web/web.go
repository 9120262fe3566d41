package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/brain/server"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Source is what the view reads: a consistent copy of the fleet per page
// (server.Brain's Fleet; it must be safe to call concurrently).
type Source interface {
	Fleet() server.Fleet
	Events() *server.Bus
}

// UI serves the fleet view.
type UI struct {
	src    Source
	log    *slog.Logger
	pages  map[string]*template.Template
	static http.Handler
	// maxAge is how long a copy of the fleet serves pages while no event
	// came: many open pages refreshing on the same event share one copy
	// (each copy holds the brain's lock).
	maxAge time.Duration
	mu     sync.Mutex
	cached cachedFleet
}

// cachedFleet is a copy of the fleet taken when the event stream was at
// index.
type cachedFleet struct {
	fleet server.Fleet
	index uint64
	taken time.Time
	ok    bool
}

// DefaultMaxAge bounds how stale a shared copy of the fleet may be.
const DefaultMaxAge = time.Second

// New parses the embedded templates.
func New(src Source, log *slog.Logger) (*UI, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u := &UI{src: src, log: log.With("component", "web"), pages: map[string]*template.Template{}, maxAge: DefaultMaxAge}
	for _, page := range []string{"hosts", "jobs"} {
		t, err := template.New(page).Funcs(funcs()).ParseFS(templateFS, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("web: templates: %w", err)
		}
		u.pages[page] = t
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("web: static: %w", err)
	}
	u.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	return u, nil
}

// Handler serves the fleet view at / (hosts), /jobs and /static/, and
// hands every other path to api (the brain's API, /v1/events, /metrics).
func (u *UI) Handler(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", u.page("hosts", "Fleet", "/", func(v *view, f server.Fleet, q Query) { v.Hosts = buildHostsPage(f, q) }))
	mux.HandleFunc("GET /jobs", u.page("jobs", "Jobs", "/jobs", func(v *view, f server.Fleet, q Query) { v.Jobs = buildJobsPage(f, q) }))
	mux.Handle("GET /static/", u.static)
	mux.Handle("/", api)
	return mux
}

// page serves one page: the query checked, the fleet read, fill given the
// fleet and the query to set its part of the view.
func (u *UI) page(name, title, path string, fill func(*view, server.Fleet, Query)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := ParseQuery(r.URL.Query())
		if err != nil {
			http.Error(w, strings.ToLower(title)+" view: "+err.Error(), http.StatusBadRequest)
			return
		}
		v, f := u.snapshot(r)
		v.Title, v.Path = title, path
		fill(&v, f, q)
		u.render(w, name, v)
	}
}

// pagerView is what the pager template gets.
type pagerView struct {
	Path  string
	Query Query
	Pager Pager
}

// recentOnPage is how many past events a page starts with.
const recentOnPage = 30

// view is what a template gets.
type view struct {
	Partial bool
	Title   string
	Path    string
	At      time.Time
	TTL     time.Duration
	Hosts   HostsPage
	Jobs    JobsPage
	// Recent are the latest events, oldest first; LastEvent the index the
	// page's script resumes the stream from.
	Recent    []server.Event
	LastEvent uint64
}

// snapshot reads the fleet and, for a whole page, the recent events: the
// events first, so that the fleet already holds every change they name
// (the brain publishes after it commits) and the script, resuming after
// the last of them, misses none.
func (u *UI) snapshot(r *http.Request) (view, server.Fleet) {
	v := view{Partial: r.URL.Query().Get("partial") == "1"}
	if !v.Partial {
		v.Recent = u.src.Events().Recent(server.EventFilter{}, recentOnPage)
		if n := len(v.Recent); n > 0 {
			v.LastEvent = v.Recent[n-1].Index
		}
	}
	f := u.fleet()
	v.At, v.TTL = f.At, f.TTL
	return v, f
}

// fleet is a copy of the fleet that holds every change published so far:
// the shared copy while no event came since it was taken and it is
// younger than maxAge, else a new one. Pages only read it.
func (u *UI) fleet() server.Fleet {
	// The index first: a copy taken after it holds every change up to it
	// (the brain publishes after it commits).
	index := u.src.Events().LastIndex()
	now := time.Now()
	u.mu.Lock()
	c := u.cached
	u.mu.Unlock()
	if c.ok && c.index == index && now.Sub(c.taken) < u.maxAge {
		return c.fleet
	}
	f := u.src.Fleet()
	u.mu.Lock()
	u.cached = cachedFleet{fleet: f, index: index, taken: now, ok: true}
	u.mu.Unlock()
	return f
}

// render writes the page, or only its live part for the script's
// refreshes (?partial=1).
func (u *UI) render(w http.ResponseWriter, page string, v view) {
	name := "layout"
	if v.Partial {
		name = "live"
	}
	var buf bytes.Buffer
	if err := u.pages[page].ExecuteTemplate(&buf, name, v); err != nil {
		u.log.Error("render", "page", page, "err", err)
		http.Error(w, "render "+page+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

func funcs() template.FuncMap {
	return template.FuncMap{
		"cores": func(milli int64) string {
			if milli >= 100_000 {
				return fmt.Sprintf("%.0f", float64(milli)/1000)
			}
			return fmt.Sprintf("%.1f", float64(milli)/1000)
		},
		"gib": func(b int64) string {
			if b >= 100<<30 {
				return fmt.Sprintf("%.0f", float64(b)/(1<<30))
			}
			return fmt.Sprintf("%.1f", float64(b)/(1<<30))
		},
		"share": func(part, whole int64) float64 {
			if whole <= 0 {
				return 0
			}
			return min(100, 100*float64(part)/float64(whole))
		},
		"latency": func(d time.Duration) string {
			switch {
			case d <= 0:
				return "–"
			case d < time.Millisecond:
				return fmt.Sprintf("%dµs", d.Microseconds())
			}
			return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
		},
		"ago": func(at, t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return at.Sub(t).Round(time.Second).String() + " ago"
		},
		"url": func(path string, q Query, page int) string {
			v := q.Values(page)
			if len(v) == 0 {
				return path
			}
			return path + "?" + v.Encode()
		},
		"set": func(q Query, key, val string) Query {
			switch key {
			case "state":
				q.State = val
			case "safety":
				q.Safety = val
			case "sort":
				q.Sort = val
			}
			q.Page = 1
			return q
		},
		"add":      func(a, b int) int { return a + b },
		"mul100":   func(f *float64) float64 { return 100 * *f },
		"mul100p":  func(f float64) float64 { return 100 * f },
		"pager":    func(path string, q Query, p Pager) pagerView { return pagerView{path, q, p} },
		"classCPU": func(h *server.FleetHost, class string) int64 { return h.ClassUsage[class].CPUMilli },
		"states":   func() []string { return hostStates },
		"safeties": func() []string { return safeties },
		"sorts":    func() []string { return hostSorts },
	}
}
