package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"

	"github.com/sluicehq/sluice/brain/auth"
	"github.com/sluicehq/sluice/brain/server"
)

// tlsOptions are how the brain's listener is secured.
type tlsOptions struct {
	cert, key, clientCA string
	// insecureLoopback serves plain text, on loopback only.
	insecureLoopback bool
}

// listenTLS is the listener's TLS configuration from the flags: mutual
// TLS with all three files, or nil (plain text) when --insecure-loopback
// asks for it on a loopback address. Anything else refuses to start,
// saying why: targets carry commands agents run as root.
func listenTLS(listen string, o tlsOptions, log *slog.Logger) (*tls.Config, error) {
	files := auth.ServerFiles{Cert: o.cert, Key: o.key, ClientCA: o.clientCA}
	switch {
	case files == auth.ServerFiles{}:
		if !o.insecureLoopback {
			return nil, fmt.Errorf("--listen %s: no TLS: pass --tls-cert, --tls-key and --client-ca (sluicectl certs init), or --insecure-loopback to serve plain text on loopback", listen)
		}
		if err := server.CheckLoopback(listen); err != nil {
			return nil, fmt.Errorf("--insecure-loopback: %w", err)
		}
		return nil, nil
	case o.insecureLoopback:
		return nil, errors.New("--insecure-loopback with TLS files: choose one")
	case o.cert == "" || o.key == "" || o.clientCA == "":
		return nil, errors.New("--tls-cert, --tls-key and --client-ca go together: mutual TLS needs all three")
	}
	cfg, err := auth.ServerConfig(files, func(err error) {
		log.Error("certificate files changed but do not load", "err", err)
	})
	if err != nil {
		return nil, fmt.Errorf("--tls-cert: %w", err)
	}
	return cfg, nil
}
