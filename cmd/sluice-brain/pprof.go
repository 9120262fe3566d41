package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"

	"github.com/sluicehq/sluice/brain/server"
)

// servePprof serves Go's profiles on addr (loopback only) until ctx ends:
// a separate listener, so profiling is never on the API's address by
// accident.
func servePprof(ctx context.Context, addr string, log *slog.Logger) error {
	if err := server.CheckLoopback(addr); err != nil {
		return fmt.Errorf("--pprof-listen: %w", err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	srv := &http.Server{Handler: mux}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Info("profiles served", "listen", l.Addr().String())
	go srv.Serve(l)
	return nil
}
