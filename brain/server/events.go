package server

// The fleet's event stream: what happens in the fleet is published here
// once committed (hosts registering, going down, coming back, draining;
// kills the agents report; evictions and preemptions; placement failures
// when their reason changes) and served at /v1/events as server-sent
// events, in the manner of Nomad's event stream.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/brain/place"
	"github.com/sluicehq/sluice/brain/store"
	"github.com/sluicehq/sluice/brain/trace"
)

// Topic groups events; subscribers filter by it.
type Topic string

const (
	// TopicHost: a host registered, went down (heartbeats stopped), came
	// back up, is draining or was uncordoned.
	TopicHost Topic = "host"
	// TopicKill: an agent killed a container (the reason its plan gave).
	TopicKill Topic = "kill"
	// TopicEviction: a replica left its host because the host went down or
	// was drained, or a higher-priority replica preempted it.
	TopicEviction Topic = "eviction"
	// TopicPlacement: a job's replicas could not be placed (the reason
	// changed since the last pass).
	TopicPlacement Topic = "placement"
)

// Topics lists every topic.
func Topics() []Topic { return []Topic{TopicHost, TopicKill, TopicEviction, TopicPlacement} }

// Event is one thing that happened in the fleet.
type Event struct {
	// Index grows by one per event the brain published since it started.
	Index   uint64    `json:"index"`
	Time    time.Time `json:"time"`
	Topic   Topic     `json:"topic"`
	Type    string    `json:"type"`
	Host    string    `json:"host,omitempty"`
	Job     string    `json:"job,omitempty"`
	Replica string    `json:"replica,omitempty"`
	Reason  string    `json:"reason,omitempty"`
}

// EventFilter selects events: every listed topic (none: all), and the
// host and job when set.
type EventFilter struct {
	Topics []Topic
	Host   string
	Job    string
}

// Match reports whether e passes f.
func (f EventFilter) Match(e Event) bool {
	return (len(f.Topics) == 0 || slices.Contains(f.Topics, e.Topic)) &&
		(f.Host == "" || f.Host == e.Host) && (f.Job == "" || f.Job == e.Job)
}

// DefaultEventBuffer is how many events a subscriber may fall behind by
// before it is dropped.
const DefaultEventBuffer = 1024

// recentEvents is how many events the bus keeps for subscribers that
// resume from an index.
const recentEvents = 1024

// Bus fans events out to subscribers. Publish never blocks: a subscriber
// whose buffer is full is dropped (its channel closed, Err saying why), so
// a slow reader cannot hold up the brain. Safe for concurrent use.
type Bus struct {
	log  *slog.Logger
	now  func() time.Time
	mu   sync.Mutex
	next uint64
	subs map[*Subscription]struct{}
	// recent is a ring of the last recentEvents events: once full, the
	// oldest is at head.
	recent  []Event
	head    int
	closed  bool
	events  *prometheus.CounterVec
	dropped prometheus.Counter
	gauge   prometheus.Gauge
}

// NewBus returns a bus stamping events with now; its metrics go to reg.
func NewBus(log *slog.Logger, now func() time.Time, reg prometheus.Registerer) *Bus {
	b := &Bus{
		log: log, now: now, subs: map[*Subscription]struct{}{},
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_brain_events_total",
			Help: "Events published on the brain's event stream, by topic.",
		}, []string{"topic"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_brain_event_subscribers_dropped_total",
			Help: "Event stream subscribers dropped because they fell a full buffer behind.",
		}),
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_brain_event_subscribers",
			Help: "Event stream subscribers connected now.",
		}),
	}
	for _, t := range Topics() {
		b.events.WithLabelValues(string(t))
	}
	reg.MustRegister(b.events, b.dropped, b.gauge)
	return b
}

// Subscription receives the events that match its filter on C, until it is
// closed, dropped or the bus closes; then Err says why.
type Subscription struct {
	C      <-chan Event
	c      chan Event
	filter EventFilter
	bus    *Bus
	err    error
}

// Subscribe starts a subscription to the events published from now on,
// with room for buffer events (default DefaultEventBuffer).
func (b *Bus) Subscribe(f EventFilter, buffer int) *Subscription {
	return b.subscribe(f, buffer, false, 0)
}

// SubscribeAfter is Subscribe, first delivering the kept events after
// index after that match (as many as the buffer holds, newest): a reader
// that has seen up to after misses nothing the bus still keeps.
func (b *Bus) SubscribeAfter(f EventFilter, buffer int, after uint64) *Subscription {
	return b.subscribe(f, buffer, true, after)
}

func (b *Bus) subscribe(f EventFilter, buffer int, replay bool, after uint64) *Subscription {
	if buffer <= 0 {
		buffer = DefaultEventBuffer
	}
	s := &Subscription{c: make(chan Event, buffer), filter: f, bus: b}
	s.C = s.c
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		s.err = errBusClosed
		close(s.c)
		return s
	}
	if replay {
		var replay []Event
		for _, e := range b.kept() {
			if e.Index > after && f.Match(e) {
				replay = append(replay, e)
			}
		}
		if n := len(replay) - buffer; n > 0 {
			replay = replay[n:]
		}
		for _, e := range replay {
			s.c <- e
		}
	}
	b.subs[s] = struct{}{}
	b.gauge.Set(float64(len(b.subs)))
	return s
}

var errBusClosed = errors.New("the brain is stopping")

// Close ends the subscription; C is closed.
func (s *Subscription) Close() {
	b := s.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	b.remove(s, nil)
}

// Err is why C was closed: nil after Close, else dropped or stopping.
func (s *Subscription) Err() error {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	return s.err
}

// remove ends s with err; caller holds mu.
func (b *Bus) remove(s *Subscription, err error) {
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	s.err = err
	close(s.c)
	b.gauge.Set(float64(len(b.subs)))
}

// Publish stamps events with their index (and time, when unset) and hands
// them to every matching subscriber without waiting.
func (b *Bus) Publish(evs ...Event) {
	if len(evs) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	now := b.now()
	for _, e := range evs {
		b.next++
		e.Index = b.next
		if e.Time.IsZero() {
			e.Time = now
		}
		b.events.WithLabelValues(string(e.Topic)).Inc()
		if len(b.recent) < recentEvents {
			b.recent = append(b.recent, e)
		} else {
			b.recent[b.head] = e
			b.head = (b.head + 1) % recentEvents
		}
		for s := range b.subs {
			if !s.filter.Match(e) {
				continue
			}
			select {
			case s.c <- e:
			default:
				b.dropped.Inc()
				b.log.Warn("event subscriber dropped: it fell a full buffer behind", "buffer", cap(s.c), "index", e.Index)
				b.remove(s, fmt.Errorf("dropped at event %d: fell %d events behind; resubscribe with index=%d", e.Index, cap(s.c), e.Index-1))
			}
		}
	}
}

// kept lists the kept events, oldest first; caller holds mu.
func (b *Bus) kept() []Event {
	return append(slices.Clone(b.recent[b.head:]), b.recent[:b.head]...)
}

// LastIndex is the index of the last event published (0: none yet).
func (b *Bus) LastIndex() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.next
}

// Recent lists the kept events that match f, newest last, at most n.
func (b *Bus) Recent(f EventFilter, n int) []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Event
	kept := b.kept()
	for i := len(kept) - 1; i >= 0 && len(out) < n; i-- {
		if f.Match(kept[i]) {
			out = append(out, kept[i])
		}
	}
	slices.Reverse(out)
	return out
}

// Close ends every subscription (the brain is stopping); later
// subscriptions end at once.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		b.remove(s, errBusClosed)
	}
}

// ParseEventFilter reads a filter from a query: topic (comma-separated or
// repeated), host, job.
func ParseEventFilter(q map[string][]string) (EventFilter, error) {
	var f EventFilter
	for _, v := range q["topic"] {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if t == "" {
				continue
			}
			if !slices.Contains(Topics(), Topic(t)) {
				return f, fmt.Errorf("topic %q: unknown; topics are %s", t, topicList())
			}
			f.Topics = append(f.Topics, Topic(t))
		}
	}
	if len(q["host"]) > 0 {
		f.Host = q["host"][0]
	}
	if len(q["job"]) > 0 {
		f.Job = q["job"][0]
	}
	return f, nil
}

func topicList() string {
	var s []string
	for _, t := range Topics() {
		s = append(s, string(t))
	}
	return strings.Join(s, ", ")
}

// sseKeepAlive is how often an idle stream gets a comment line, so proxies
// and clients see the connection alive.
const sseKeepAlive = 15 * time.Second

// EventsHandler serves the event stream as server-sent events (GET
// /v1/events?topic=kill,host&host=H&job=J&index=N; with index, the kept
// events after N come first): each event is one SSE message whose id is its index, event its topic and data its JSON. A
// subscriber that falls behind gets a "dropped" message with the reason
// and the index to resume from, and the stream ends; it also ends when the
// brain stops.
func (b *Bus) EventsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "events: GET only", http.StatusMethodNotAllowed)
			return
		}
		q := r.URL.Query()
		f, err := ParseEventFilter(q)
		if err != nil {
			http.Error(w, "events: "+err.Error(), http.StatusBadRequest)
			return
		}
		// The last index the reader has seen: a page passes the index it
		// was rendered at; a reconnecting EventSource repeats that URL and
		// sends the last event it got as Last-Event-ID, the later one.
		resume := q.Has("index") || r.Header.Get("Last-Event-ID") != ""
		var after uint64
		for name, v := range map[string]string{"index": q.Get("index"), "Last-Event-ID": r.Header.Get("Last-Event-ID")} {
			if v == "" {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				http.Error(w, fmt.Sprintf("events: %s %q: not a non-negative integer", name, v), http.StatusBadRequest)
				return
			}
			after = max(after, n)
		}
		rc := http.NewResponseController(w)
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		var s *Subscription
		if resume {
			s = b.SubscribeAfter(f, 0, after)
		} else {
			s = b.Subscribe(f, 0)
		}
		defer s.Close()
		fmt.Fprint(w, ": sluice-brain event stream\n\n")
		if rc.Flush() != nil {
			return
		}
		keep := time.NewTicker(sseKeepAlive)
		defer keep.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-keep.C:
				fmt.Fprint(w, ": keep-alive\n\n")
			case e, ok := <-s.C:
				if !ok {
					// Dropped: say why and where to resume. The brain
					// stopping just ends the stream.
					if err := s.Err(); err != nil && !errors.Is(err, errBusClosed) {
						data, _ := json.Marshal(map[string]string{"reason": err.Error()})
						fmt.Fprintf(w, "event: dropped\ndata: %s\n\n", data)
						rc.Flush()
					}
					return
				}
				writeEvent(w, e)
				// Send whatever else is queued in the same write.
				for more := true; more; {
					select {
					case e, ok := <-s.C:
						if ok {
							writeEvent(w, e)
						}
						more = ok
					default:
						more = false
					}
				}
			}
			if rc.Flush() != nil {
				return
			}
		}
	})
}

func writeEvent(w http.ResponseWriter, e Event) {
	data, _ := json.Marshal(e) // an Event always marshals
	fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Index, e.Topic, data)
}

// workEvents is what a reconcile pass publishes once it commits, and the
// explanations of the placements it made, by placement key.
type workEvents struct {
	events []Event
	why    map[string]string
}

func (w *workEvents) explain(key, why string) {
	if w.why == nil {
		w.why = map[string]string{}
	}
	w.why[key] = why
}

// placementFailed records why replica r was not placed, and publishes it
// when the job's reason changed since the last pass (the loop retries
// every pass; the stream says it once). Reconcile goroutine only.
func (b *Brain) placementFailed(w *work, r replica, why string) {
	w.failed++
	if _, seen := w.reasons[r.job.Name]; !seen && b.pendingReason[r.job.Name] != why {
		w.events = append(w.events, Event{Topic: TopicPlacement, Type: "failed", Job: r.job.Name, Replica: trace.ReplicaID(r.job.Name, r.index), Reason: why})
	}
	w.reasons[r.job.Name] = why
}

func evictionReason(h store.Host, host string) string {
	switch {
	case h.Name == "":
		return fmt.Sprintf("host %s is gone", host)
	case h.Down:
		return fmt.Sprintf("host %s is down", host)
	}
	return fmt.Sprintf("host %s is draining", host)
}

// placementText explains a placement in a line: the chosen host's score
// and its parts, how many hosts were feasible of those examined, and the
// most common rejections.
func placementText(dec place.Decision) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s scored %.3f by %s", dec.Placement.Host, dec.Score.Total, dec.Strategy)
	if len(dec.Score.Parts) > 0 {
		sb.WriteString(" (")
		for i, p := range dec.Score.Parts {
			if i > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "%s %.3f", p.Name, p.Value)
		}
		sb.WriteString(")")
	}
	fmt.Fprintf(&sb, "; best of %d feasible among %d examined", dec.Feasible, dec.Considered)
	for i, r := range dec.Rejections {
		if i == 3 {
			break
		}
		fmt.Fprintf(&sb, "; %d rejected: %s", r.Hosts, r.Reason)
	}
	if dec.Placement.Borrowed {
		sb.WriteString("; on borrowed capacity")
	}
	return sb.String()
}

// ErrDropped is returned by ReadEvents when the brain dropped the
// subscription (it fell behind); the error names the index to resume from.
var ErrDropped = errors.New("event stream dropped by the brain")

// ReadEvents reads an event stream as EventsHandler writes it and calls fn
// with each event, until the stream ends (nil), fn fails, or the brain
// drops the subscriber (ErrDropped, with the brain's reason).
func ReadEvents(r io.Reader, fn func(Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var kind string
	var data []byte
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) == 0 {
				kind = ""
				continue
			}
			if kind == "dropped" {
				var d struct{ Reason string }
				json.Unmarshal(data, &d)
				return fmt.Errorf("%w: %s", ErrDropped, d.Reason)
			}
			var e Event
			if err := json.Unmarshal(data, &e); err != nil {
				return fmt.Errorf("event stream: event %q: %w", data, err)
			}
			if err := fn(e); err != nil {
				return err
			}
			kind, data = "", nil
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			kind = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")...)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	return nil
}
