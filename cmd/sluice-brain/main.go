// Command sluice-brain is Sluice's central brain: agents register with it
// and follow the per-host targets it streams; operators submit jobs, which
// it places with brain/place and keeps in etcd.
//
// With no flags it starts an embedded single-member etcd under --data-dir
// and serves on loopback; --etcd-endpoints points it at an external etcd
// cluster instead. Several brains on one etcd elect a leader; the others
// forward to it. `sluice-brain restore --snapshot FILE --data-dir DIR`
// rebuilds an embedded store from a snapshot. It refuses to listen
// anywhere but loopback until agents and operators authenticate with
// mutual TLS.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

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
	advertise     string
	leaseTTL      time.Duration
	// Embedded cluster members (--initial-cluster).
	name           string
	initialCluster string
	peerURL        string
	etcdClientURL  string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "restore" {
		os.Exit(runRestore(os.Args[2:], os.Stdout, os.Stderr))
	}
	var o options
	flag.StringVar(&o.dataDir, "data-dir", "/var/lib/sluice-brain", "directory of the embedded etcd member (unused with --etcd-endpoints)")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:9480", "API, /metrics and /healthz address (loopback only for now)")
	flag.StringVar(&o.etcdEndpoints, "etcd-endpoints", "", "comma-separated external etcd endpoints; empty runs an embedded member in --data-dir")
	flag.StringVar(&o.etcdPrefix, "etcd-prefix", store.DefaultPrefix, "key prefix of the brain's state in etcd")
	flag.IntVar(&o.maxTxnOps, "etcd-max-txn-ops", store.DefaultMaxTxnOps, "the external etcd's --max-txn-ops (transactions are batched up to it)")
	flag.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	flag.StringVar(&o.advertise, "advertise-url", "", "this brain's URL as the other brains reach it (followers forward there); default http://<listen address>")
	flag.DurationVar(&o.leaseTTL, "lease-ttl", server.DefaultLeaseTTL, "leader lease in etcd (whole seconds): a dead leader is replaced within it")
	flag.StringVar(&o.name, "name", "", "this brain's embedded etcd member name (with --initial-cluster)")
	flag.StringVar(&o.initialCluster, "initial-cluster", "", "name=peerURL,... of every brain's embedded etcd member: the brains form an etcd cluster among themselves (instead of --etcd-endpoints)")
	flag.StringVar(&o.peerURL, "peer-url", "", "this member's peer URL in --initial-cluster (loopback until peer TLS lands)")
	flag.StringVar(&o.etcdClientURL, "etcd-client-url", "", "where this member serves etcd clients (with --initial-cluster; loopback)")
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

// startEmbedded starts the brain's own etcd member: alone, or one of the
// members --initial-cluster lists.
func startEmbedded(ctx context.Context, o options, log *slog.Logger) (*store.Embedded, error) {
	if o.initialCluster == "" {
		if o.name != "" || o.peerURL != "" || o.etcdClientURL != "" {
			return nil, errors.New("--name, --peer-url and --etcd-client-url belong with --initial-cluster")
		}
		return store.Start(ctx, o.dataDir, log)
	}
	if o.name == "" || o.peerURL == "" || o.etcdClientURL == "" {
		return nil, errors.New("--initial-cluster needs --name, --peer-url and --etcd-client-url")
	}
	if !strings.Contains(","+o.initialCluster, ","+o.name+"="+o.peerURL) {
		return nil, fmt.Errorf("--initial-cluster %q does not list --name %s at --peer-url %s", o.initialCluster, o.name, o.peerURL)
	}
	for flagName, u := range map[string]string{"--peer-url": o.peerURL, "--etcd-client-url": o.etcdClientURL} {
		host, ok := strings.CutPrefix(u, "http://")
		if !ok {
			return nil, fmt.Errorf("%s %q: want http://host:port", flagName, u)
		}
		// etcd's peer and client traffic is plaintext here: loopback only,
		// like the API.
		if err := server.CheckLoopback(host); err != nil {
			return nil, fmt.Errorf("%s: %w", flagName, err)
		}
	}
	return store.StartMember(ctx, store.Member{Dir: o.dataDir, Name: o.name, PeerURL: o.peerURL, ClientURL: o.etcdClientURL, InitialCluster: o.initialCluster}, log)
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
	endpoints := o.etcdEndpoints
	maxOps := o.maxTxnOps
	if endpoints == "" {
		if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
			return fmt.Errorf("--data-dir: %w", err)
		}
		e, err := startEmbedded(ctx, o, log)
		if err != nil {
			return err
		}
		defer e.Close()
		// Through the member's client URL, like any external cluster:
		// leases, maintenance and snapshots take one path.
		endpoints, maxOps = e.ClientURL, store.EmbeddedMaxTxnOps
	}
	c, err := store.Dial(strings.Split(endpoints, ","))
	if err != nil {
		return fmt.Errorf("--etcd-endpoints: %w", err)
	}
	defer c.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	live := server.DefaultLiveness()
	live.FixedInterval = o.heartbeat
	// An unreachable etcd is an error at start, named; later outages are
	// retried by the reconcile loop and reported by /healthz.
	if err := store.New(c, o.etcdPrefix, maxOps).Ping(ctx, 10*time.Second); err != nil {
		return err
	}
	advertise := o.advertise
	if advertise == "" {
		advertise = "http://" + l.Addr().String()
	}
	ha, err := server.NewHA(server.HAConfig{
		Client: c, Prefix: o.etcdPrefix, MaxOps: maxOps, AdvertiseURL: advertise, LeaseTTL: o.leaseTTL,
		Brain: server.Config{Logger: log, Liveness: live}, Registry: reg, Logger: log,
		// The fleet view is the leader's: each term serves it over its
		// own brain.
		Wrap: func(b *server.Brain, api http.Handler) (http.Handler, error) {
			ui, err := web.New(b, log)
			if err != nil {
				return nil, err
			}
			return ui.Handler(api), nil
		},
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errs <- ha.Run(ctx) }()
	go func() { defer wg.Done(); errs <- server.Serve(ctx, l, ha.Handler(reg)) }()
	log.Info("sluice-brain serving", "listen", l.Addr().String(), "advertise", advertise, "embedded_etcd", o.etcdEndpoints == "")
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
