package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
)

// MaxMessageBytes bounds every API message the brain reads: a job file
// (trace.MaxJobFileBytes) plus its envelope.
const MaxMessageBytes = 2 << 20

// Handler serves the agent protocol and operator API (Connect, gRPC and
// gRPC-Web, JSON for curl), /metrics from gatherer and /healthz (etcd
// answering).
func (b *Brain) Handler(gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	opts := []connect.HandlerOption{connect.WithReadMaxBytes(MaxMessageBytes)}
	mux.Handle(brainv1connect.NewAgentServiceHandler(b, opts...))
	mux.Handle("/v1/events", b.events.EventsHandler())
	mux.Handle(brainv1connect.NewOperatorServiceHandler(b, opts...))
	mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := b.cfg.Store.Ping(r.Context(), 2*time.Second); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// CheckLoopback refuses a listen address that is not loopback: until
// agents and operators authenticate (mutual TLS), targets carry commands
// agents run as root, so anyone who can reach the brain could run them.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("listen %q: not a loopback address: the brain serves only loopback until mutual TLS lands, because targets carry commands agents run as root", addr)
	}
	return nil
}

// Ready is closed once Run has started.
func (b *Brain) Ready() <-chan struct{} { return b.ready }

// Serve serves h on l until ctx ends.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	// HTTP/1.1 for Connect and JSON (curl), and HTTP/2 without TLS (h2c)
	// for gRPC clients such as grpcurl -plaintext.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, Protocols: &protocols}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	}()
	if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
		return fmt.Errorf("serve %s: %w", l.Addr(), err)
	}
	return nil
}
