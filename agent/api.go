package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicehq/sluice/agent/capability"
)

// Listen opens the agent's local API address: "unix:/path/to.sock" for a
// unix socket (a stale socket file is replaced), anything else is a TCP
// host:port. The API is meant for the host itself; bind it to loopback or a
// socket, not to a routable address.
func Listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("listen %s: remove stale socket: %w", addr, err)
		}
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		return l, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return l, nil
}

// Handler serves the agent's local API:
//
//	GET /metrics  Prometheus exposition
//	GET /state    the current Snapshot and the host's Capabilities as JSON
//	GET /healthz  200 once the loop has run, 503 before
func Handler(a *Agent, gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			Snapshot
			Capabilities capability.Capabilities `json:"capabilities"`
		}{a.Snapshot(), a.Capabilities()})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if a.Snapshot().Time.IsZero() {
			http.Error(w, "loop has not run yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// WithProfiling adds Go's runtime profiles under /debug/pprof/ to h, for
// finding where a live agent spends its CPU:
//
//	curl --unix-socket /run/sluice/agent.sock -o cpu.pprof 'http://agent/debug/pprof/profile?seconds=30'
//	go tool pprof -top sluice-agent cpu.pprof
//
// Off unless sluice-agent runs with -pprof: a profile costs the agent CPU
// while it runs and exposes its internals, so it is opt-in, and only ever
// on the local API address. The handlers are mounted explicitly rather
// than through net/http/pprof's registration on http.DefaultServeMux.
func WithProfiling(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// Serve runs the API on l until ctx ends.
func Serve(ctx context.Context, l net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Info("api listening", "addr", l.Addr().String())
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}
