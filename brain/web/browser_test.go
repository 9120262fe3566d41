package web

import (
	"context"
	"flag"
	"log/slog"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sluicehq/sluice/agent/brainlink"
	"github.com/sluicehq/sluice/brain/server"
	"github.com/sluicehq/sluice/brain/server/servertest"
	"github.com/sluicehq/sluice/test/kerneltest"
)

var (
	screenshot = flag.String("screenshot", "", "write a PNG of the fleet view (synthetic 10,000-host fleet) to this path")
	fleetURL   = flag.String("fleet-url", "", "measure the fleet page of this running brain (e.g. under test/brainload) instead of the synthetic fleet")
)

// browser starts a headless Chromium for the test; everything it does
// must finish within limit.
func browser(t *testing.T, limit time.Duration) context.Context {
	t.Helper()
	exe := kerneltest.RequireChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.WindowSize(1600, 1000), chromedp.UserDataDir(t.TempDir()))
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc(); cancel() })
	// Start the browser now, so its start-up is not charged to the page.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium %s: %v", exe, err)
	}
	return bctx
}

// agent runs the agent's brain link (the real protocol client) for host
// name until the returned stop is called: a killed agent, heartbeats stop.
func agent(t *testing.T, url, name string, report brainlink.Report) (stop func()) {
	t.Helper()
	l, err := brainlink.New(brainlink.Config{
		BrainURL: url, StateDir: t.TempDir(), HostName: name, Logger: slog.New(slog.DiscardHandler),
		Registration: brainlink.Registration{Capacity: map[string]int64{"cpu": 8000, "memory": 16 << 30}, CgroupMode: "hybrid"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx, func() brainlink.Report { return report }) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// TestBrowserSeesHostsComeAndGo: in a real browser, the fleet page loads,
// a host that registers appears and a host whose agent is killed turns
// down, both without a reload.
func TestBrowserSeesHostsComeAndGo(t *testing.T) {
	ctx := browser(t, 60*time.Second)
	// Heartbeats every 200ms; a silent host is down after 1.5s (and the
	// loop's next one-second pass).
	b := servertest.StartWith(t, server.Liveness{MinTTL: time.Second, Grace: 500 * time.Millisecond, HeartbeatsPerSecond: 50, FixedInterval: 200 * time.Millisecond})
	// The view in front of the brain, as sluice-brain serves it: its own
	// pages, everything else (the event stream, the API) the brain's.
	u, err := New(b.Server, nil)
	if err != nil {
		t.Fatal(err)
	}
	brainURL, err := url.Parse(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	view := httptest.NewServer(u.Handler(httputil.NewSingleHostReverseProxy(brainURL)))
	t.Cleanup(view.Close)
	// Stopping the brain first ends the page's event stream, which the
	// view's server waits for when it closes.
	t.Cleanup(b.Stop)
	stayer := brainlink.Report{LentCPUMilli: 3000, LentMemoryBytes: 4 << 30, OnlineRunqLatencyP99: 80 * time.Microsecond, CPUPressureSome10: 2,
		Usage: []brainlink.ClassUsage{{Class: "online", CPUMilli: 3000}, {Class: "offline", CPUMilli: 2000}}}
	agent(t, b.URL, "web-stays", stayer)

	if err := chromedp.Do(ctx,
		chromedp.Navigate(view.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#stream[data-live="open"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-host="web-stays"]`)),
	); err != nil {
		t.Fatalf("fleet page: %v", err)
	}
	// A reload would lose this.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.sluiceMarker = "same page"`)); err != nil {
		t.Fatal(err)
	}

	killed := agent(t, b.URL, "web-killed", brainlink.Report{LentCPUMilli: 1000, LentMemoryBytes: 1 << 30, CPUPressureSome10: 45})
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`tr[data-host="web-killed"]`))); err != nil {
		t.Fatalf("registered host never appeared: %v", err)
	}
	state := text(t, ctx, `tr[data-host="web-killed"] td.state`)
	safety := text(t, ctx, `tr[data-host="web-killed"] td.safety`)
	if strings.TrimSpace(state) != "up" || !strings.Contains(safety, "unsafe") || !strings.Contains(safety, "cpu psi some 45.0%") {
		t.Fatalf("new host shows state %q, safety %q; want up, unsafe by cpu psi", state, safety)
	}

	killed()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`tr.down[data-host="web-killed"]`))); err != nil {
		t.Fatalf("killed agent's host never turned down: %v", err)
	}
	state = text(t, ctx, `tr[data-host="web-killed"] td.state`)
	marker, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.sluiceMarker`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(state) != "down" || marker != "same page" {
		t.Fatalf("host state %q, page marker %q: want down, on the same page (no reload)", state, marker)
	}
	events := text(t, ctx, `#events`)
	if !strings.Contains(events, "host down web-killed") || !strings.Contains(events, "host registered web-stays") {
		t.Fatalf("event list: %q", events)
	}
}

// TestBrowserLoadsTenThousandHosts loads the fleet page of a synthetic
// 10,000-host fleet in a real browser and reports its load time (a figure,
// not a verdict); with -screenshot it writes the README's picture.
func TestBrowserLoadsTenThousandHosts(t *testing.T) {
	src, h := newTestUI(t, synthFleet(10000))
	src.bus.Publish(
		server.Event{Topic: server.TopicHost, Type: "down", Host: "host-00003", Reason: "no heartbeat for 31s (ttl 30s)"},
		server.Event{Topic: server.TopicEviction, Type: "evicted", Host: "host-00003", Job: "job-0012", Reason: "host host-00003 is down"},
		server.Event{Topic: server.TopicKill, Type: "killed", Host: "host-04211", Job: "job-0031", Reason: "offline memory 7.9 GiB over its limit 6 GiB"},
		server.Event{Topic: server.TopicPlacement, Type: "failed", Job: "job-0777", Reason: "no host fits: 128 considered, 97 insufficient cpu, 31 anti-affinity"},
		server.Event{Topic: server.TopicHost, Type: "draining", Host: "host-00007", Reason: "drained by an operator"},
	)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	base := srv.URL
	if *fleetURL != "" {
		base = strings.TrimSuffix(*fleetURL, "/")
	}
	// Started after the server, so stopped before it (cleanups run last
	// first): the page's event stream is closed when the server closes.
	ctx := browser(t, 60*time.Second)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/?sort=safety"), chromedp.WaitVisible(chromedp.CSS(`#stream[data-live="open"]`))); err != nil {
		t.Fatal(err)
	}
	loadMs, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`(() => { const n = performance.getEntriesByType("navigation")[0]; return n.loadEventEnd - n.startTime })()`))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("tr[data-host]").length`))
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector(".summary .card b").textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if rows != DefaultPerPage {
		t.Fatalf("%d rows on the page, want %d", rows, DefaultPerPage)
	}
	t.Logf("fleet page of %s hosts (sorted by safety) loaded in %.0f ms", hosts, loadMs)
	if *screenshot == "" {
		return
	}
	// One screen of the worst hosts first.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/?sort=safety&per_page=14"), chromedp.WaitVisible(chromedp.CSS(`#stream[data-live="open"]`))); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(*screenshot), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d KiB)", *screenshot, len(png)>>10)
}

// text is the text of the first element matching a CSS selector.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}
