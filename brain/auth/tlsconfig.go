package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ServerFiles are a brain's TLS files.
type ServerFiles struct {
	Cert, Key string
	// ClientCA is the CA bundle client certificates must chain to.
	ClientCA string
}

// ServerConfig is the brain's TLS configuration: its certificate and the
// client CA bundle are read again from disk at the first handshake after
// either changes (rotation without a restart), every client must present
// a certificate that chains to the CA, and HTTP/2 is offered. Which
// identity may call what is decided per request (see the brain's access
// interceptor); onErr hears of files that changed but do not load.
func ServerConfig(f ServerFiles, onErr func(error)) (*tls.Config, error) {
	if f.Cert == "" || f.Key == "" || f.ClientCA == "" {
		return nil, errors.New("tls: a brain needs a certificate, its key and the client CA")
	}
	pair, err := newKeyPair(f.Cert, f.Key, onErr)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	pool, err := newCAPool(f.ClientCA, onErr)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	base := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		ClientAuth:     tls.RequireAndVerifyClientCert,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return pair.get() },
	}
	cfg := base.Clone()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		p, err := pool.get()
		if err != nil {
			return nil, err
		}
		c := base.Clone()
		c.ClientCAs = p
		return c, nil
	}
	return cfg, nil
}

// ClientFiles are an agent's or operator's TLS files.
type ClientFiles struct {
	Cert, Key string
	// CA is the bundle the brain's certificate must chain to.
	CA string
}

// Empty tells whether no file is set.
func (f ClientFiles) Empty() bool { return f == ClientFiles{} }

// ClientConfig is an agent's or operator's TLS configuration: its own
// certificate is read again from disk at each handshake after it changed
// (rotation without a restart), and the server must present a brain
// certificate (sluice://brain/...) of the cluster CA.
func ClientConfig(f ClientFiles, onErr func(error)) (*tls.Config, error) {
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return nil, errors.New("tls: a client needs a certificate, its key and the cluster CA")
	}
	pair, err := newKeyPair(f.Cert, f.Key, onErr)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	roots, err := readPool(f.CA)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return clientConfig(roots, func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return pair.get() }), nil
}

// StaticClientConfig is ClientConfig for a certificate held in memory
// (load harnesses that run thousands of agents in one process).
func StaticClientConfig(cert *tls.Certificate, roots *x509.CertPool) *tls.Config {
	return clientConfig(roots, func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil })
}

func clientConfig(roots *x509.CertPool, getCert func(*tls.CertificateRequestInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS12,
		RootCAs:              roots,
		GetClientCertificate: getCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: the server sent no certificate")
			}
			id, err := IdentityOf(cs.PeerCertificates[0])
			if err != nil {
				return fmt.Errorf("tls: server: %w", err)
			}
			if id.Kind != KindBrain {
				return fmt.Errorf("tls: server presents %s, not a brain certificate", id)
			}
			return nil
		},
	}
}

// BrainURLs splits a comma-separated list of brain base URLs (an agent's
// -brain, sluicectl's --brain): spaces and trailing slashes trimmed, empty
// entries and repeats dropped, each an http(s)://host[:port].
func BrainURLs(list string) ([]*url.URL, error) {
	var out []*url.URL
	seen := map[string]bool{}
	for _, one := range strings.Split(list, ",") {
		one = strings.TrimRight(strings.TrimSpace(one), "/")
		if one == "" || seen[one] {
			continue
		}
		u, err := url.Parse(one)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("brain URL %q: want http(s)://host:port", one)
		}
		seen[one] = true
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("brain URL list %q: no URL", list)
	}
	return out, nil
}

// HTTPClient is the one way Sluice's clients reach a brain at base URL,
// or at each of a comma-separated list of brains (BrainURLs; one client
// serves them all, so they share a scheme): https with the given files
// (mutual TLS, HTTP/2), or plain http with no files and only to loopback
// addresses.
func HTTPClient(base string, f ClientFiles, onErr func(error)) (*http.Client, error) {
	urls, err := BrainURLs(base)
	if err != nil {
		return nil, err
	}
	for _, u := range urls {
		if u.Scheme != urls[0].Scheme {
			return nil, fmt.Errorf("brain urls %s: every brain is reached with the same scheme", base)
		}
		if u.Scheme == "http" {
			if !f.Empty() {
				return nil, fmt.Errorf("brain url %s: plain http with TLS files given: use https://", u)
			}
			if err := CheckLoopback(u.Host); err != nil {
				return nil, fmt.Errorf("brain url %s: %w", u, err)
			}
		}
	}
	if urls[0].Scheme == "http" {
		return &http.Client{}, nil
	}
	cfg, err := ClientConfig(f, onErr)
	if err != nil {
		return nil, fmt.Errorf("brain url %s: %w", base, err)
	}
	return &http.Client{Transport: Transport(cfg)}, nil
}

// Transport speaks HTTP/2 over TLS with cfg.
func Transport(cfg *tls.Config) *http.Transport {
	return &http.Transport{
		TLSClientConfig:     cfg,
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		Proxy:               http.ProxyFromEnvironment,
	}
}

// CheckLoopback refuses a host:port (or host) that is not loopback: plain
// text is only for a brain and its clients on one machine, because
// targets carry commands agents run as root.
func CheckLoopback(hostport string) error {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%q is not a loopback address: plain text is only for loopback, because targets carry commands agents run as root; use mutual TLS", hostport)
}

// PeerIdentity is the identity of a TLS connection's verified client
// certificate.
func PeerIdentity(cs *tls.ConnectionState) (Identity, *x509.Certificate, error) {
	if cs == nil {
		return Identity{}, nil, errors.New("no TLS connection")
	}
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return Identity{}, nil, errors.New("no verified client certificate")
	}
	leaf := cs.VerifiedChains[0][0]
	id, err := IdentityOf(leaf)
	return id, leaf, err
}
