package servertest

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/brain/server"
	"github.com/sluicehq/sluice/brain/store"
)

// HABrain is a running test brain behind election (server.HA).
type HABrain struct {
	URL string
	HA  *server.HA
	// Stop stops it (resigning the lead) and its etcd; cleanup calls it.
	Stop func()
}

// StartHA runs one brain through server.HA on an embedded etcd, as
// sluice-brain does, and returns once it leads.
func StartHA(t testing.TB) HABrain {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e, err := store.Start(ctx, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cli, err := store.Dial([]string{e.ClientURL})
	if err != nil {
		cancel()
		e.Close()
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		cli.Close()
		e.Close()
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	reg := prometheus.NewRegistry()
	ha, err := server.NewHA(server.HAConfig{Client: cli, MaxOps: store.EmbeddedMaxTxnOps, AdvertiseURL: url, Registry: reg})
	if err != nil {
		cancel()
		cli.Close()
		e.Close()
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ha.Run(ctx) }()
	go func() { defer wg.Done(); server.Serve(ctx, l, ha.Handler(reg)) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); wg.Wait(); cli.Close(); e.Close() }) }
	t.Cleanup(stop)
	deadline := time.Now().Add(time.Minute)
	for {
		if lead, _ := ha.Leading(); lead {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("test brain does not lead after a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return HABrain{URL: url, HA: ha, Stop: stop}
}
