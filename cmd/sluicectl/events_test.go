package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/brain/server"
	"github.com/sluicehq/sluice/brain/server/servertest"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEventsFollowsTheStream: sluicectl events replays the kept events
// (-index 0), then prints new ones as they happen (a drain), as JSON lines
// or a table, filtered by topic and host, until interrupted.
func TestEventsFollowsTheStream(t *testing.T) {
	url := startBrain(t)
	ctx, cancel := context.WithCancel(context.Background())
	var jsonOut, tableOut, stderr lockedBuffer
	codes := make(chan int, 2)
	go func() {
		codes <- run(ctx, []string{"--brain", url, "events", "-o", "json", "-index", "0"}, &jsonOut, &stderr)
	}()
	go func() {
		codes <- run(ctx, []string{"--brain", url, "events", "-topic", "host", "-host", "node-b", "-index", "0"}, &tableOut, &stderr)
	}()
	waitFor(t, "both registrations replayed", func() bool { return strings.Count(jsonOut.String(), `"type":"registered"`) == 2 })
	var drained bytes.Buffer
	if code := run(ctx, []string{"--brain", url, "hosts", "drain", "node-b"}, &drained, &stderr); code != 0 {
		t.Fatalf("drain: %d %s", code, stderr.String())
	}
	waitFor(t, "the drain followed live", func() bool {
		return strings.Contains(jsonOut.String(), `"type":"draining"`) && strings.Contains(tableOut.String(), "draining")
	})
	cancel()
	for range 2 {
		if code := <-codes; code != 0 {
			t.Fatalf("events exited %d: %s", code, stderr.String())
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(jsonOut.String()), "\n") {
		var e server.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.Index == 0 || e.Topic == "" {
			t.Fatalf("json line %q: %+v %v", line, e, err)
		}
	}
	table := tableOut.String()
	if !strings.HasPrefix(table, "TIME") || strings.Contains(table, "node-a") || !strings.Contains(table, "node-b") ||
		!strings.Contains(table, "drained by an operator") {
		t.Fatalf("filtered table:\n%s", table)
	}
}

func TestEventsRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"events", "-topic", "kills"}, {"events", "-o", "yaml"}, {"events", "-index", "-3"}, {"events", "extra"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), append([]string{"--brain", "http://127.0.0.1:1"}, args...), &out, &errb); code != 2 || errb.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q; want 2 with the reason", args, code, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--brain", "http://127.0.0.1:1", "events"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "events:") {
		t.Errorf("unreachable brain: exit %d, %q", code, errb.String())
	}
}

// TestEventsEndsWhenTheBrainStops: a stopping brain ends the stream, and
// sluicectl events says so and exits 1 instead of waiting forever.
func TestEventsEndsWhenTheBrainStops(t *testing.T) {
	b := servertest.StartWith(t, server.Liveness{})
	var out, stderr lockedBuffer
	code := make(chan int, 1)
	go func() { code <- run(context.Background(), []string{"--brain", b.URL, "events"}, &out, &stderr) }()
	waitFor(t, "the brain counting the subscriber", func() bool {
		resp, err := http.Get(b.URL + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		m, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(m), "sluice_brain_event_subscribers 1")
	})
	b.Stop()
	if c := <-code; c != 1 || !strings.Contains(stderr.String(), "the brain ended the stream") {
		t.Fatalf("exit %d, stderr %q", c, stderr.String())
	}
}
