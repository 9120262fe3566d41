package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
	"github.com/sluicehq/sluice/brain/auth"
)

// MaxMessageBytes bounds every API message the brain reads: a job file
// (trace.MaxJobFileBytes) plus its envelope.
const MaxMessageBytes = 2 << 20

// compressMinBytes is the smallest response the brain compresses when the
// client accepts it: almost every answer (heartbeats, acknowledgements,
// a submission, a target delta) is far smaller, and resetting a gzip
// writer for each cost the brain more CPU under a submission flood than
// placing the jobs (and the client as much to inflate them).
const compressMinBytes = 4 << 10

// Handler serves the agent protocol and operator API (Connect, gRPC and
// gRPC-Web, JSON for curl), /metrics from gatherer and /healthz (etcd
// answering). With Config.Authenticate every RPC is authorised by its
// client certificate (access.go).
func (b *Brain) Handler(gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	opts := []connect.HandlerOption{connect.WithReadMaxBytes(MaxMessageBytes), connect.WithCompressMinBytes(compressMinBytes)}
	if b.cfg.Authenticate {
		opts = append(opts, connect.WithInterceptors(b.access))
	}
	mux.Handle(brainv1connect.NewAgentServiceHandler(b, opts...))
	mux.Handle("/v1/events", b.events.EventsHandler())
	mux.Handle(brainv1connect.NewOperatorServiceHandler(b, opts...))
	mux.Handle(brainv1connect.NewAccessServiceHandler(b, opts...))
	mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := b.cfg.Store.Ping(r.Context(), 2*time.Second); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return b.Viewers(mux)
}

// CheckLoopback refuses a plain-text listen address that is not
// loopback: targets carry commands agents run as root, so a brain
// reachable from elsewhere must authenticate its callers (ServeTLS).
func CheckLoopback(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("listen %q: %w", addr, err)
	}
	if err := auth.CheckLoopback(addr); err != nil {
		return fmt.Errorf("listen %q without TLS: %w", addr, err)
	}
	return nil
}

// Ready is closed once Run has started.
func (b *Brain) Ready() <-chan struct{} { return b.ready }

// Serve serves h on l in plain text until ctx ends: HTTP/1.1 for Connect
// and JSON (curl), and HTTP/2 without TLS (h2c) for gRPC clients such as
// grpcurl -plaintext.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	return serve(ctx, l, &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, Protocols: &protocols})
}

// ServeTLS serves h on l over TLS with cfg (auth.ServerConfig: HTTP/2 and
// HTTP/1.1, client certificates required) until ctx ends. Failed
// handshakes (unknown CA, expired certificate...) are logged at debug
// level with their reason: the client sees the TLS alert.
func ServeTLS(ctx context.Context, l net.Listener, h http.Handler, cfg *tls.Config, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler: h, ReadHeaderTimeout: 10 * time.Second, TLSConfig: cfg,
		ErrorLog: slog.NewLogLogger(log.With("component", "brain-tls").Handler(), slog.LevelDebug),
	}
	return serve(ctx, l, srv)
}

func serve(ctx context.Context, l net.Listener, srv *http.Server) error {
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	}()
	var err error
	if srv.TLSConfig != nil {
		err = srv.ServeTLS(l, "", "")
	} else {
		err = srv.Serve(l)
	}
	if err != nil && err != http.ErrServerClosed {
		return fmt.Errorf("serve %s: %w", l.Addr(), err)
	}
	return nil
}
