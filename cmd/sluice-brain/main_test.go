package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRefusesNonLoopback(t *testing.T) {
	err := run(context.Background(), options{listen: "0.0.0.0:0", dataDir: t.TempDir()}, slog.New(slog.DiscardHandler), nil)
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("got %v", err)
	}
}

func TestServesHealthAndMetricsOnEmbeddedEtcd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	o := options{listen: "127.0.0.1:0", dataDir: t.TempDir(), etcdPrefix: "/sluice/"}
	go func() { done <- run(ctx, o, slog.New(slog.DiscardHandler), func(a string) { addrs <- a }) }()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("brain stopped before serving: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("brain not serving after 2 minutes")
	}
	get := func(path string) string {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s %s", path, resp.Status, body)
		}
		return string(body)
	}
	// A lone brain leads as soon as it wins the election; /healthz says
	// unavailable until some brain leads.
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := get("/healthz"); got != "ok leader\n" {
		t.Fatalf("/healthz: %q", got)
	}
	// Histograms and vectors appear once observed or labelled; the hosts
	// gauge is labelled at start.
	metrics := get("/metrics")
	for _, want := range []string{"sluice_brain_hosts{state=\"up\"} 0", "sluice_brain_leader 1", "sluice_brain_etcd_alarm{alarm=\"NOSPACE\"} 0", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The fleet view at the root, its assets beside it.
	if page := get("/"); !strings.Contains(page, "<b>0</b> hosts") || !strings.Contains(page, "/static/live.js") {
		t.Errorf("/ is not the fleet view:\n%.500s", page)
	}
	get("/static/live.js")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("stop: %v", err)
	}
}
