// Command sluice-brain is Sluice's central brain: agents register with it
// and follow the per-host targets it streams; operators submit jobs, which
// it places with brain/place and keeps in etcd.
//
// With no flags it starts an embedded single-member etcd under --data-dir
// and serves on loopback; --etcd-endpoints points it at an external etcd
// cluster instead. It refuses to listen anywhere but loopback until
// agents and operators authenticate with mutual TLS.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sluicehq/sluice/brain/server"
	"github.com/sluicehq/sluice/brain/store"
	"github.com/sluicehq/sluice/brain/web"
)

type options struct {
	dataDir       string
	listen        string
	etcdEndpoints string
	etcdPrefix    string
	maxTxnOps     int
	logLevel      string
	heartbeat     time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.dataDir, "data-dir", "/var/lib/sluice-brain", "directory of the embedded etcd member (unused with --etcd-endpoints)")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:9480", "API, /metrics and /healthz address (loopback only for now)")
	flag.StringVar(&o.etcdEndpoints, "etcd-endpoints", "", "comma-separated external etcd endpoints; empty runs an embedded member in --data-dir")
	flag.StringVar(&o.etcdPrefix, "etcd-prefix", store.DefaultPrefix, "key prefix of the brain's state in etcd")
	flag.IntVar(&o.maxTxnOps, "etcd-max-txn-ops", store.DefaultMaxTxnOps, "the external etcd's --max-txn-ops (transactions are batched up to it)")
	flag.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	flag.DurationVar(&o.heartbeat, "heartbeat-interval", 0, "hand agents this heartbeat interval instead of one that grows with the fleet (a stress setting)")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "sluice-brain: --log-level: %v\n", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, log, nil); err != nil {
		log.Error("sluice-brain stopped", "err", err)
		os.Exit(1)
	}
}

// run serves until ctx ends; ready, when set, learns the address served.
func run(ctx context.Context, o options, log *slog.Logger, ready func(addr string)) error {
	if err := server.CheckLoopback(o.listen); err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	var kv clientv3.KV
	maxOps := o.maxTxnOps
	if o.etcdEndpoints == "" {
		if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
			return fmt.Errorf("--data-dir: %w", err)
		}
		e, err := store.Start(ctx, o.dataDir, log)
		if err != nil {
			return err
		}
		defer e.Close()
		kv, maxOps = e.Client, store.EmbeddedMaxTxnOps
	} else {
		c, err := store.Dial(strings.Split(o.etcdEndpoints, ","))
		if err != nil {
			return fmt.Errorf("--etcd-endpoints: %w", err)
		}
		defer c.Close()
		kv = c
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	live := server.DefaultLiveness()
	live.FixedInterval = o.heartbeat
	st := store.New(kv, o.etcdPrefix, maxOps)
	// An unreachable etcd is an error at start, named; later outages are
	// retried by the reconcile loop and reported by /healthz.
	if err := st.Ping(ctx, 10*time.Second); err != nil {
		return err
	}
	b, err := server.New(ctx, server.Config{Store: st, Logger: log, Registry: reg, Liveness: live})
	if err != nil {
		return err
	}
	ui, err := web.New(b, log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errs <- b.Run(ctx) }()
	go func() { defer wg.Done(); errs <- server.Serve(ctx, l, ui.Handler(b.Handler(reg))) }()
	log.Info("sluice-brain serving", "listen", l.Addr().String(), "embedded_etcd", o.etcdEndpoints == "")
	if ready != nil {
		ready(l.Addr().String())
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-errs:
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		first = errors.Join(first, err)
	}
	return first
}
