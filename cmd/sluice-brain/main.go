// Command sluice-brain is Sluice's central brain: agents register with it
// and follow the per-host targets it streams; operators submit jobs, which
// it places with brain/place and keeps in etcd.
//
// With no flags it starts an embedded single-member etcd under --data-dir
// and serves on loopback; --etcd-endpoints points it at an external etcd
// cluster instead. Several brains on one etcd elect a leader; the others
// forward to it. Agents and operators authenticate with mutual TLS
// (--tls-cert, --tls-key, --client-ca; sluicectl certs makes the files);
// plain text needs --insecure-loopback and a loopback address.
// `sluice-brain restore --snapshot FILE --data-dir DIR` rebuilds an
// embedded store from a snapshot.
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

	"github.com/sluicehq/sluice/brain/auth"
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
	tls            tlsOptions
	overload       server.Overload
	pprofListen    string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "restore" {
		os.Exit(runRestore(os.Args[2:], os.Stdout, os.Stderr))
	}
	var o options
	flag.StringVar(&o.dataDir, "data-dir", "/var/lib/sluice-brain", "directory of the embedded etcd member (unused with --etcd-endpoints)")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:9480", "API, /metrics and /healthz address (any address with TLS, loopback only without)")
	flag.StringVar(&o.tls.cert, "tls-cert", "", "the brain's certificate (sluicectl certs init writes brain.crt); reloaded when it changes")
	flag.StringVar(&o.tls.key, "tls-key", "", "the brain certificate's key")
	flag.StringVar(&o.tls.clientCA, "client-ca", "", "CA bundle agents' and operators' certificates must chain to (ca.crt)")
	flag.BoolVar(&o.tls.insecureLoopback, "insecure-loopback", false, "serve plain text without authentication, on a loopback --listen only")
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
	def := server.DefaultOverload()
	flag.IntVar(&o.overload.DetailInFlight, "shed-detail-in-flight", def.DetailInFlight, "agent RPCs in progress above which heartbeat detail is shed (liveness kept)")
	flag.IntVar(&o.overload.LivenessInFlight, "shed-liveness-in-flight", def.LivenessInFlight, "agent RPCs in progress above which heartbeats are shed whole and no host is marked down")
	flag.StringVar(&o.pprofListen, "pprof-listen", "", "serve Go profiles (/debug/pprof/) on this loopback address; empty: off")
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
	if o.overload != (server.Overload{}) {
		if err := o.overload.Check(); err != nil {
			return fmt.Errorf("--shed-detail-in-flight, --shed-liveness-in-flight: %w", err)
		}
	}
	tlsCfg, err := listenTLS(o.listen, o.tls, log)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	if o.pprofListen != "" {
		if err := servePprof(ctx, o.pprofListen, log); err != nil {
			return err
		}
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
	scheme := "http://"
	forward := http.RoundTripper(nil) // plain text: HA's default
	if tlsCfg != nil {
		scheme = "https://"
		// Followers forward to the leader as brains, with this brain's
		// own certificate; the leader authorises the caller the follower
		// names (server.CallerCertHeader).
		fc, err := auth.ClientConfig(auth.ClientFiles{Cert: o.tls.cert, Key: o.tls.key, CA: o.tls.clientCA}, nil)
		if err != nil {
			return fmt.Errorf("--tls-cert as the forwarding client: %w", err)
		}
		forward = auth.Transport(fc)
	}
	advertise := o.advertise
	if advertise == "" {
		advertise = scheme + l.Addr().String()
	}
	ha, err := server.NewHA(server.HAConfig{
		Client: c, Prefix: o.etcdPrefix, MaxOps: maxOps, AdvertiseURL: advertise, LeaseTTL: o.leaseTTL,
		Brain:    server.Config{Logger: log, Liveness: live, Authenticate: tlsCfg != nil, Overload: o.overload},
		Registry: reg, Logger: log, Forward: forward,
		// The fleet view is the leader's: each term serves it over its
		// own brain.
		Wrap: func(b *server.Brain, api http.Handler) (http.Handler, error) {
			ui, err := web.New(b, log)
			if err != nil {
				return nil, err
			}
			return b.Viewers(ui.Handler(api)), nil
		},
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The embedded member's etcd_* metrics (write rate: etcd_mvcc_put_total,
	// etcd_server_proposals_committed_total) are served beside the brain's.
	var gatherer prometheus.Gatherer = reg
	if o.etcdEndpoints == "" {
		gatherer = prometheus.Gatherers{reg, etcdMetrics{prometheus.DefaultGatherer}}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errs <- ha.Run(ctx) }()
	go func() {
		defer wg.Done()
		if tlsCfg != nil {
			errs <- server.ServeTLS(ctx, l, ha.Handler(gatherer), tlsCfg, log)
		} else {
			errs <- server.Serve(ctx, l, ha.Handler(gatherer))
		}
	}()
	log.Info("sluice-brain serving", "listen", l.Addr().String(), "advertise", advertise, "tls", tlsCfg != nil, "embedded_etcd", o.etcdEndpoints == "")
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
