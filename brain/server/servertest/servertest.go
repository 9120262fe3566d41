// Package servertest runs a real brain for other packages' tests: an
// embedded etcd in a temp dir, the reconcile loop and the API on a
// loopback port, all stopped by the test's cleanup.
package servertest

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/brain/server"
	"github.com/sluicehq/sluice/brain/store"
)

// Start runs a brain with default settings and returns its base URL.
func Start(t testing.TB) string {
	t.Helper()
	return StartWith(t, server.Liveness{}).URL
}

// Brain is a running test brain.
type Brain struct {
	// URL is its base URL.
	URL string
	// Stop stops the brain (reconcile loop, API, etcd) now; the test's
	// cleanup calls it too, and a second call does nothing.
	Stop func()
	// Server is the brain itself, for views that read it in process
	// (brain/web).
	Server *server.Brain
}

// StartWith runs a brain with the given liveness settings (zero fields
// take the server's defaults), e.g. a short TTL so that a host whose
// heartbeats stop is marked down within seconds.
func StartWith(t testing.TB, live server.Liveness) Brain {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e, err := store.Start(ctx, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	b, err := server.New(ctx, server.Config{Store: store.New(e.Client, "", store.EmbeddedMaxTxnOps), Registry: reg, Liveness: live})
	if err != nil {
		cancel()
		e.Close()
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		e.Close()
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); b.Run(ctx) }()
	go func() { defer wg.Done(); server.Serve(ctx, l, b.Handler(reg)) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); wg.Wait(); e.Close() }) }
	t.Cleanup(stop)
	return Brain{URL: "http://" + l.Addr().String(), Stop: stop, Server: b}
}
