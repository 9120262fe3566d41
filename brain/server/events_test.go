package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
)

func newTestBus() *Bus {
	return NewBus(slog.New(slog.DiscardHandler), newClock().Now, prometheus.NewRegistry())
}

// TestSlowSubscriberIsDroppedNeverBlocks: a subscriber that reads nothing
// is dropped once its buffer is full, with the index to resume from; the
// publisher never waits and a reading subscriber gets every event.
func TestSlowSubscriberIsDroppedNeverBlocks(t *testing.T) {
	b := newTestBus()
	slow := b.Subscribe(EventFilter{}, 4)
	fast := b.Subscribe(EventFilter{}, 4)
	var got []uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range fast.C {
			got = append(got, e.Index)
		}
	}()
	for i := range 100 {
		b.Publish(Event{Topic: TopicHost, Type: "up", Host: fmt.Sprint("h", i)})
		// Let the fast reader keep up; the slow one never reads.
		for len(fast.C) > 0 {
			time.Sleep(time.Millisecond)
		}
	}
	n := 0
	for range slow.C {
		n++
	}
	if n != 4 {
		t.Fatalf("slow subscriber got %d buffered events before it was dropped, want 4", n)
	}
	if err := slow.Err(); err == nil || !strings.Contains(err.Error(), "resubscribe with index=4") {
		t.Fatalf("dropped subscriber's reason: %v", err)
	}
	fast.Close()
	<-done
	if len(got) != 100 || got[0] != 1 || got[99] != 100 {
		t.Fatalf("fast subscriber got %d events (%v...), want 1..100", len(got), got[:min(3, len(got))])
	}
	if fast.Err() != nil {
		t.Fatalf("closed subscription's err: %v", fast.Err())
	}
}

func TestFilterAndResume(t *testing.T) {
	b := newTestBus()
	b.Publish(
		Event{Topic: TopicHost, Type: "down", Host: "a"},
		Event{Topic: TopicKill, Type: "killed", Host: "a", Job: "batch"},
		Event{Topic: TopicKill, Type: "killed", Host: "b", Job: "batch"},
		Event{Topic: TopicPlacement, Type: "failed", Job: "web"},
	)
	s := b.SubscribeAfter(EventFilter{Topics: []Topic{TopicKill}, Host: "b"}, 0, 1)
	b.Publish(Event{Topic: TopicKill, Type: "killed", Host: "a"}, Event{Topic: TopicKill, Type: "killed", Host: "b", Job: "x"})
	s.Close()
	var got []string
	for e := range s.C {
		got = append(got, fmt.Sprintf("%d %s %s", e.Index, e.Host, e.Job))
	}
	if want := []string{"3 b batch", "6 b x"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if r := b.Recent(EventFilter{Job: "batch"}, 1); len(r) != 1 || r[0].Index != 3 {
		t.Fatalf("recent: %+v", r)
	}
	for _, q := range []string{"topic=kill,host", "topic=kill&topic=eviction"} {
		if _, err := ParseEventFilter(parseQuery(t, q)); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	if _, err := ParseEventFilter(parseQuery(t, "topic=kills")); err == nil || !strings.Contains(err.Error(), `topic "kills": unknown`) {
		t.Fatalf("unknown topic: %v", err)
	}
}

func parseQuery(t *testing.T, q string) map[string][]string {
	t.Helper()
	r, err := http.NewRequest("GET", "/v1/events?"+q, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r.URL.Query()
}

// follower reads /v1/events into a list.
type follower struct {
	mu     sync.Mutex
	events []Event
	err    error
	done   chan struct{}
}

func follow(t *testing.T, url string) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("GET %s: %s %s", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	f := &follower{done: make(chan struct{})}
	go func() {
		defer close(f.done)
		defer resp.Body.Close()
		err := ReadEvents(resp.Body, func(e Event) error {
			f.mu.Lock()
			f.events = append(f.events, e)
			f.mu.Unlock()
			return nil
		})
		f.mu.Lock()
		f.err = err
		f.mu.Unlock()
	}()
	t.Cleanup(func() { cancel(); <-f.done })
	return f
}

func (f *follower) has(topic Topic, typ, host, job, reason string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.events {
		if e.Topic == topic && e.Type == typ && (host == "" || e.Host == host) && (job == "" || e.Job == job) && strings.Contains(e.Reason, reason) {
			return true
		}
	}
	return false
}

func (f *follower) count(topic Topic, typ string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, e := range f.events {
		if e.Topic == topic && e.Type == typ {
			n++
		}
	}
	return n
}

// TestEventStreamTellsTheFleetsStory: registrations, a kill with its job
// and reason, a drain with its evictions, a placement failure (once, not
// every pass) and a host going down reach an SSE subscriber; a filtered
// subscriber sees only its topic.
func TestEventStreamTellsTheFleetsStory(t *testing.T) {
	clk := newClock()
	tb := startBrain(t, t.TempDir(), clk, testLiveness)
	all := follow(t, tb.url+"/v1/events")
	kills := follow(t, tb.url+"/v1/events?topic=kill")
	agents := fleet(t, tb, 2)
	eventually(t, "two registrations", func() bool { return all.count(TopicHost, "registered") == 2 })

	submit(t, tb, []byte("version: 1\napps:\n  - {name: batch, cpu: 1, memory: 1Gi, image: busybox, class: offline}\nrequests:\n  - {app: batch, count: 1}\n"))
	agentsAgree(t, tb, agents)
	_, st := stored(t, tb)
	var host string
	for _, p := range st.Placements {
		host = p.Host
	}
	a := agents[0]
	if a.name != host {
		a = agents[1]
	}
	_, err := a.client.Heartbeat(context.Background(), connect.NewRequest(&brainv1.HeartbeatRequest{
		NodeId: a.nodeID, Name: a.name, LentCpuMilli: 1000, LentMemoryBytes: gib, AppliedVersion: st.Targets[a.name].Version,
		Kills: []*brainv1.Kill{{Container: "batch-0", Reason: "offline memory over its limit"}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the kill with its job and reason", func() bool {
		return all.has(TopicKill, "killed", host, "batch", "offline memory over its limit") && kills.has(TopicKill, "killed", host, "batch", "")
	})

	if _, err := tb.operator().DrainHost(context.Background(), connect.NewRequest(&brainv1.DrainHostRequest{Name: host})); err != nil {
		t.Fatal(err)
	}
	eventually(t, "draining and the eviction it caused", func() bool {
		return all.has(TopicHost, "draining", host, "", "operator") && all.has(TopicEviction, "evicted", host, "batch", "draining")
	})

	submit(t, tb, []byte("version: 1\napps:\n  - {name: huge, cpu: 64, memory: 1Gi, image: busybox}\nrequests:\n  - {app: huge, count: 2}\n"))
	eventually(t, "the placement failure", func() bool { return all.has(TopicPlacement, "failed", "", "huge", "no host fits") })

	// The other host stops heartbeating and is marked down.
	other := agents[0]
	if other.name == host {
		other = agents[1]
	}
	for step := time.Duration(0); step <= testLiveness.TTL(2); step += time.Second {
		clk.Advance(time.Second)
		if err := a.heartbeat(context.Background(), 1000, gib); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the silent host down", func() bool { return all.has(TopicHost, "down", other.name, "", "no heartbeat for") })
	// The loop retries every pass; a reason is published when it changes.
	all.mu.Lock()
	said := map[string]bool{}
	for _, e := range all.events {
		if e.Topic == TopicPlacement {
			if said[e.Job+": "+e.Reason] {
				t.Errorf("placement failure published again with the same reason: %+v", e)
			}
			said[e.Job+": "+e.Reason] = true
		}
	}
	all.mu.Unlock()
	kills.mu.Lock()
	for _, e := range kills.events {
		if e.Topic != TopicKill {
			t.Errorf("topic=kill subscriber got %+v", e)
		}
	}
	kills.mu.Unlock()

	// Resuming from an index replays what came after it.
	resumed := follow(t, tb.url+"/v1/events?topic=host&index=1")
	eventually(t, "replay after index 1", func() bool { return resumed.has(TopicHost, "down", other.name, "", "") })
	if resumed.has(TopicHost, "registered", "host-0", "", "") && resumed.has(TopicHost, "registered", "host-1", "", "") {
		t.Error("replay from index 1 included event 1")
	}

	// A bad filter is refused with the reason.
	resp, err := http.Get(tb.url + "/v1/events?topic=nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown topic: %s", resp.Status)
	}
}

func TestReadEventsReportsADrop(t *testing.T) {
	stream := "id: 1\nevent: host\ndata: {\"index\":1,\"topic\":\"host\",\"type\":\"up\",\"host\":\"a\"}\n\n: keep-alive\n\nevent: dropped\ndata: {\"reason\":\"fell 4 events behind\"}\n\n"
	var got []Event
	err := ReadEvents(strings.NewReader(stream), func(e Event) error { got = append(got, e); return nil })
	if !errors.Is(err, ErrDropped) || !strings.Contains(err.Error(), "fell 4 events behind") || len(got) != 1 || got[0].Host != "a" {
		t.Fatalf("got %+v, %v", got, err)
	}
}

// FuzzReadEvents: any stream decodes into events or ends with an error
// that says which (a drop, or a malformed event); it never panics.
func FuzzReadEvents(f *testing.F) {
	f.Add("id: 1\nevent: host\ndata: {\"index\":1,\"topic\":\"host\"}\n\n")
	f.Add("event: dropped\ndata: {\"reason\":\"x\"}\n\n")
	f.Add(": c\n\ndata: {}\ndata: x\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		err := ReadEvents(strings.NewReader(s), func(Event) error { return nil })
		if err != nil && !errors.Is(err, ErrDropped) && !strings.HasPrefix(err.Error(), "event stream: ") {
			t.Fatalf("%q: unexplained error %v", s, err)
		}
	})
}

// TestKeptEventsWrapAround: past its capacity the bus keeps the newest
// events, in order, for Recent and for resuming subscribers.
func TestKeptEventsWrapAround(t *testing.T) {
	b := newTestBus()
	for i := range recentEvents + 10 {
		b.Publish(Event{Topic: TopicHost, Type: "up", Host: fmt.Sprint("h", i)})
	}
	r := b.Recent(EventFilter{}, recentEvents+100)
	if len(r) != recentEvents || r[0].Index != 11 || r[len(r)-1].Index != recentEvents+10 {
		t.Fatalf("kept %d events, %d..%d; want %d, 11..%d", len(r), r[0].Index, r[len(r)-1].Index, recentEvents, recentEvents+10)
	}
	for i := 1; i < len(r); i++ {
		if r[i].Index != r[i-1].Index+1 {
			t.Fatalf("kept events out of order at %d: %d after %d", i, r[i].Index, r[i-1].Index)
		}
	}
	s := b.SubscribeAfter(EventFilter{}, 8, recentEvents+5)
	s.Close()
	var got []uint64
	for e := range s.C {
		got = append(got, e.Index)
	}
	if fmt.Sprint(got) != fmt.Sprint([]uint64{recentEvents + 6, recentEvents + 7, recentEvents + 8, recentEvents + 9, recentEvents + 10}) {
		t.Fatalf("resumed after %d: %v", recentEvents+5, got)
	}
}
