package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/brain/auth"
	"github.com/sluicehq/sluice/brain/server"
)

func TestRefusesPlainTextUnlessAskedOnLoopback(t *testing.T) {
	for _, tc := range []struct {
		o    options
		want string
	}{
		{options{listen: "0.0.0.0:0", tls: tlsOptions{insecureLoopback: true}}, "not a loopback address"},
		{options{listen: "10.1.2.3:0", tls: tlsOptions{insecureLoopback: true}}, "not a loopback address"},
		{options{listen: "127.0.0.1:0"}, "no TLS: pass --tls-cert, --tls-key and --client-ca"},
		{options{listen: "0.0.0.0:0"}, "no TLS"},
		{options{listen: "0.0.0.0:0", tls: tlsOptions{cert: "b.crt", key: "b.key"}}, "go together"},
		{options{listen: "127.0.0.1:0", tls: tlsOptions{cert: "b.crt", key: "b.key", clientCA: "ca.crt", insecureLoopback: true}}, "choose one"},
		{options{listen: "0.0.0.0:0", tls: tlsOptions{cert: "/nonexistent/b.crt", key: "b.key", clientCA: "ca.crt"}}, "/nonexistent/b.crt"},
		{options{listen: "127.0.0.1:0", tls: tlsOptions{insecureLoopback: true}, overload: server.Overload{DetailInFlight: 100, LivenessInFlight: 10}}, "detail is shed first"},
	} {
		tc.o.dataDir = t.TempDir()
		err := run(context.Background(), tc.o, slog.New(slog.DiscardHandler), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.o.tls, err, tc.want)
		}
	}
}

func TestServesHealthAndMetricsOnEmbeddedEtcd(t *testing.T) {
	addr, stop := serve(t, options{listen: "127.0.0.1:0", dataDir: t.TempDir(), etcdPrefix: "/sluice/", tls: tlsOptions{insecureLoopback: true}})
	get := func(path string) string {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s %s", path, resp.Status, body)
		}
		return string(body)
	}
	// A lone brain leads as soon as it wins the election; /healthz says
	// unavailable until some brain leads.
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := get("/healthz"); got != "ok leader\n" {
		t.Fatalf("/healthz: %q", got)
	}
	// Histograms and vectors appear once observed or labelled; the hosts
	// gauge is labelled at start.
	metrics := get("/metrics")
	for _, want := range []string{"sluice_brain_hosts{state=\"up\"} 0", "sluice_brain_leader 1", "sluice_brain_etcd_alarm{alarm=\"NOSPACE\"} 0",
		"go_goroutines", "process_resident_memory_bytes", "etcd_mvcc_put_total", "etcd_server_proposals_committed_total"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The fleet view at the root, its assets beside it.
	if page := get("/"); !strings.Contains(page, "<b>0</b> hosts") || !strings.Contains(page, "/static/live.js") {
		t.Errorf("/ is not the fleet view:\n%.500s", page)
	}
	get("/static/live.js")
	stop()
}

// A brain started with TLS files serves mutual TLS: an operator
// certificate of its CA gets /healthz, a client without one does not.
func TestServesMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := auth.InitDir(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.IssueFiles(dir, time.Now(), map[string]auth.Request{
		"brain": {Kind: auth.KindBrain, Name: "brain"},
		"admin": {Kind: auth.KindOperator, Name: "ops", Scope: auth.ScopeAdmin},
	}); err != nil {
		t.Fatal(err)
	}
	addr, stop := serve(t, options{listen: "127.0.0.1:0", dataDir: t.TempDir(), etcdPrefix: "/sluice/", tls: tlsOptions{
		cert: auth.CertFile(dir, "brain"), key: auth.KeyFile(dir, "brain"), clientCA: filepath.Join(dir, auth.CACertFile)}})
	hc, err := auth.HTTPClient("https://"+addr, auth.ClientFiles{Cert: auth.CertFile(dir, "admin"), Key: auth.KeyFile(dir, "admin"), CA: filepath.Join(dir, auth.CACertFile)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// /healthz answers 503 until the brain has won its election.
	var resp *http.Response
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if resp, err = hc.Get("https://" + addr + "/healthz"); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || time.Now().After(deadline) {
			break
		}
	}
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Errorf("/healthz over mutual TLS: %s %s", resp.Status, resp.Proto)
	}
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain http to a TLS brain: %s", resp.Status)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if _, err := anon.Get("https://" + addr + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("a client without a certificate: %v", err)
	}
	stop()
}

// serve runs the brain with o until stop, which checks it stopped cleanly,
// and returns the address it serves.
func serve(t *testing.T, o options) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, o, slog.New(slog.DiscardHandler), func(a string) { addrs <- a }) }()
	select {
	case addr := <-addrs:
		return addr, func() {
			t.Helper()
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("stop: %v", err)
			}
		}
	case err := <-done:
		cancel()
		t.Fatalf("brain stopped before serving: %v", err)
	case <-time.After(2 * time.Minute):
		cancel()
		t.Fatal("brain not serving after 2 minutes")
	}
	return "", nil
}
