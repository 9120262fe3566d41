// Package servertest runs a real brain for other packages' tests: an
// embedded etcd in a temp dir, the reconcile loop and the API on a
// loopback port, all stopped by the test's cleanup.
package servertest

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sluicehq/sluice/brain/auth"
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
	// Client reads the brain's etcd directly (to check what a refused
	// request did not change).
	Client *clientv3.Client
}

// StartWith runs a brain with the given liveness settings (zero fields
// take the server's defaults), e.g. a short TTL so that a host whose
// heartbeats stop is marked down within seconds.
func StartWith(t testing.TB, live server.Liveness) Brain {
	t.Helper()
	return start(t, live, nil)
}

// StartTLS runs a brain that serves mutual TLS with files (auth.ServerConfig)
// and authorises every request by its client certificate.
func StartTLS(t testing.TB, live server.Liveness, files auth.ServerFiles) Brain {
	t.Helper()
	cfg, err := auth.ServerConfig(files, func(err error) { t.Logf("brain tls: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	return start(t, live, cfg)
}

func start(t testing.TB, live server.Liveness, tlsCfg *tls.Config) Brain {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e, err := store.Start(ctx, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	b, err := server.New(ctx, server.Config{Store: store.New(e.Client, "", store.EmbeddedMaxTxnOps), Registry: reg, Liveness: live, Authenticate: tlsCfg != nil})
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
	scheme := "http://"
	if tlsCfg != nil {
		scheme = "https://"
		go func() { defer wg.Done(); server.ServeTLS(ctx, l, b.Handler(reg), tlsCfg, nil) }()
	} else {
		go func() { defer wg.Done(); server.Serve(ctx, l, b.Handler(reg)) }()
	}
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); wg.Wait(); e.Close() }) }
	t.Cleanup(stop)
	return Brain{URL: scheme + l.Addr().String(), Stop: stop, Server: b, Client: e.Client}
}
