package server

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
	"github.com/sluicehq/sluice/brain/auth"
	"github.com/sluicehq/sluice/brain/store"
)

// forwardedHeader marks a request a follower forwarded: the brain it
// reaches serves it or refuses it, never forwards it again.
const forwardedHeader = "Sluice-Forwarded-By"

// CallerCertHeader carries, on a request a follower forwards over mutual
// TLS, the client certificate (base64 DER) the follower verified at its
// handshake: the leader authorises that caller, not the follower's brain
// certificate, and honours the header only from a brain.
const CallerCertHeader = "Sluice-Forwarded-Client-Cert"

// LeaderHeader names the leader's URL on every API answer, so clients
// given a list of brains learn where to go.
const LeaderHeader = "Sluice-Brain-Leader"

// Handler serves the API: as leader through the term's brain, as follower
// by forwarding to the leader (streams included); /metrics (HA and term
// metrics from base joined), /healthz (a leader is known and etcd
// answers) and the MaintenanceService on every brain.
func (h *HA) Handler(base prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(h.Gatherer(base), promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", h.healthz)
	opts := []connect.HandlerOption{connect.WithReadMaxBytes(MaxMessageBytes)}
	var a *access
	if h.cfg.Brain.Authenticate {
		// Operator scopes only (revocations name hosts, which no
		// maintenance call admits); denials are counted by the term's
		// brains, not here.
		a = newAccess(prometheus.NewRegistry(), auth.NewRevocations(nil), time.Now)
		opts = append(opts, connect.WithInterceptors(a))
	}
	mux.Handle(brainv1connect.NewMaintenanceServiceHandler(h, opts...))
	mux.HandleFunc("/", h.serveAPI)
	if a != nil {
		return a.withPeer(mux)
	}
	return mux
}

func (h *HA) healthz(w http.ResponseWriter, r *http.Request) {
	lead, _ := h.Leading()
	leader, _ := h.Leader()
	switch {
	case lead:
	case leader == "" || leader == h.cfg.AdvertiseURL:
		http.Error(w, "no leader elected yet", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := h.cfg.Client.Get(ctx, store.WriterKey(h.cfg.Prefix), clientv3.WithCountOnly()); err != nil {
		http.Error(w, fmt.Sprintf("etcd: %v", err), http.StatusServiceUnavailable)
		return
	}
	if lead {
		fmt.Fprintln(w, "ok leader")
		return
	}
	fmt.Fprintf(w, "ok follower of %s\n", leader)
}

func (h *HA) serveAPI(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	api := h.api
	leader, _ := h.leaderLocked()
	h.mu.Unlock()
	if leader != "" {
		w.Header().Set(LeaderHeader, leader)
	}
	if api != nil {
		api.ServeHTTP(w, r)
		return
	}
	if leader == "" || leader == h.cfg.AdvertiseURL || r.Header.Get(forwardedHeader) != "" {
		h.m.forwarded.WithLabelValues("no_leader").Inc()
		refuse(w, r, "no brain leads at the moment (election in progress); retry")
		return
	}
	target, err := url.Parse(leader)
	if err != nil {
		h.m.forwarded.WithLabelValues("no_leader").Inc()
		refuse(w, r, fmt.Sprintf("leader URL %q: %v", leader, err))
		return
	}
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set(forwardedHeader, h.cfg.AdvertiseURL)
			pr.Out.Header.Del(CallerCertHeader)
			if cs := pr.In.TLS; cs != nil && len(cs.VerifiedChains) > 0 && len(cs.VerifiedChains[0]) > 0 {
				pr.Out.Header.Set(CallerCertHeader, base64.StdEncoding.EncodeToString(cs.VerifiedChains[0][0].Raw))
			}
		},
		Transport: h.cfg.Forward,
		// Target streams are flushed message by message.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			h.m.forwarded.WithLabelValues("unreachable").Inc()
			refuse(w, r, fmt.Sprintf("leader %s unreachable: %v", leader, err))
		},
	}
	h.m.forwarded.WithLabelValues("ok").Inc()
	p.ServeHTTP(w, r)
}

// refuse answers 503 in the caller's protocol, which every Connect, gRPC
// and JSON client reads as Unavailable: retry, here or at another brain.
func refuse(w http.ResponseWriter, r *http.Request, msg string) {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		w.Header().Set("Grpc-Status", "14") // UNAVAILABLE
		w.Header().Set("Grpc-Message", url.PathEscape(msg))
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprintf(w, "{\"code\":\"unavailable\",\"message\":%q}\n", msg)
}

// defaultForward speaks HTTP/1.1 to the leader, and h2c for requests that
// came in over HTTP/2 (gRPC needs it end to end).
func defaultForward() http.RoundTripper {
	dialer := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	h1 := &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	h2 := &http.Transport{DialContext: dialer.DialContext, Protocols: &p, TLSClientConfig: &tls.Config{}}
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.ProtoMajor == 2 {
			return h2.RoundTrip(r)
		}
		return h1.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
