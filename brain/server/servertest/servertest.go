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
	ctx, cancel := context.WithCancel(context.Background())
	e, err := store.Start(ctx, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	b, err := server.New(ctx, server.Config{Store: store.New(e.Client, "", store.EmbeddedMaxTxnOps), Registry: reg})
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
	t.Cleanup(func() { cancel(); wg.Wait(); e.Close() })
	return "http://" + l.Addr().String()
}
