package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pki is a certificate directory with a CA, for tests.
type pki struct {
	t   testing.TB
	dir string
	ca  *CA
	now time.Time
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	ca, err := InitDir(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	return &pki{t: t, dir: dir, ca: ca, now: now}
}

func (p *pki) issue(file string, r Request) *Issued {
	p.t.Helper()
	is, err := p.ca.Issue(r, p.now)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := is.Write(p.dir, file); err != nil {
		p.t.Fatal(err)
	}
	return is
}

func TestIdentityRoundTrip(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct {
		r    Request
		want Identity
	}{
		{Request{Kind: KindHost, Name: "h1"}, Identity{Kind: KindHost, Name: "h1"}},
		{Request{Kind: KindOperator, Name: "alice", Scope: ScopeRead}, Identity{Kind: KindOperator, Name: "alice", Scope: ScopeRead}},
		{Request{Kind: KindOperator, Name: "ops", Scope: ScopeAdmin}, Identity{Kind: KindOperator, Name: "ops", Scope: ScopeAdmin}},
		{Request{Kind: KindBrain, Name: "brain", SANs: []string{"10.0.0.7", "brain.example"}}, Identity{Kind: KindBrain, Name: "brain"}},
	} {
		is, err := p.ca.Issue(tc.r, p.now)
		if err != nil {
			t.Fatal(err)
		}
		got, err := IdentityOf(is.Cert)
		if err != nil || got != tc.want {
			t.Errorf("%+v: identity %+v, %v; want %+v", tc.r, got, err, tc.want)
		}
	}
	is, _ := p.ca.Issue(Request{Kind: KindBrain, Name: "brain", SANs: []string{"10.0.0.7", "brain.example"}}, p.now)
	if err := is.Cert.VerifyHostname("10.0.0.7"); err != nil {
		t.Error(err)
	}
	if err := is.Cert.VerifyHostname("brain.example"); err != nil {
		t.Error(err)
	}
}

func TestIssueRefusesBadRequests(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct {
		r    Request
		want string
	}{
		{Request{Kind: KindHost, Name: "H_1"}, "name"},
		{Request{Kind: KindHost, Name: "h1", Scope: ScopeAdmin}, "no scope"},
		{Request{Kind: KindOperator, Name: "bob"}, "no scope"},
		{Request{Kind: KindHost, Name: "h1", NotBefore: p.now, NotAfter: p.now.Add(-time.Hour)}, "not later"},
		{Request{Name: "x"}, "unknown kind"},
	} {
		if _, err := p.ca.Issue(tc.r, p.now); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error about %q", tc.r, err, tc.want)
		}
	}
	if _, err := InitDir(p.dir, p.now); err == nil || !strings.Contains(err.Error(), "keeps its CA") {
		t.Errorf("second init over a CA: %v", err)
	}
	if _, err := ParseScope("write"); err == nil {
		t.Error("scope write accepted")
	}
}

func TestIdentityOfRefusesAmbiguousCertificates(t *testing.T) {
	p := newPKI(t)
	is, _ := p.ca.Issue(Request{Kind: KindHost, Name: "h1"}, p.now)
	c := *is.Cert
	c.URIs = nil
	if _, err := IdentityOf(&c); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("no URI: %v", err)
	}
	c.URIs = append(c.URIs, identityURI(uriHost, "h1"), identityURI(uriScope, "admin"))
	if _, err := IdentityOf(&c); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("two identities: %v", err)
	}
	c.URIs = c.URIs[:1]
	c.URIs[0] = identityURI(uriHost, "h2")
	if _, err := IdentityOf(&c); err == nil || !strings.Contains(err.Error(), "common name") {
		t.Errorf("URI host differs from CN: %v", err)
	}
	c.URIs[0] = identityURI(uriScope, "root")
	if _, err := IdentityOf(&c); err == nil || !strings.Contains(err.Error(), "read, submit or admin") {
		t.Errorf("unknown scope: %v", err)
	}
}

func TestRevocationsCutOffByIssueTime(t *testing.T) {
	p := newPKI(t)
	cut := p.now.Truncate(time.Second).Add(10 * time.Second)
	old, _ := p.ca.Issue(Request{Kind: KindHost, Name: "h1", NotBefore: cut.Add(-time.Hour)}, p.now)
	same, _ := p.ca.Issue(Request{Kind: KindHost, Name: "h1", NotBefore: cut.Add(500 * time.Millisecond)}, p.now)
	fresh, _ := p.ca.Issue(Request{Kind: KindHost, Name: "h1", NotBefore: cut.Add(time.Second)}, p.now)
	other, _ := p.ca.Issue(Request{Kind: KindHost, Name: "h2", NotBefore: cut.Add(-time.Hour)}, p.now)
	op, _ := p.ca.Issue(Request{Kind: KindOperator, Name: "h1", Scope: ScopeAdmin, NotBefore: cut.Add(-time.Hour)}, p.now)
	r := NewRevocations(nil)
	r.Set("h1", cut.Add(300*time.Millisecond))
	check := func(is *Issued) error {
		id, err := IdentityOf(is.Cert)
		if err != nil {
			t.Fatal(err)
		}
		return r.Check(id, is.Cert)
	}
	if err := check(old); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("certificate issued before the cut-off: %v", err)
	}
	if err := check(same); err == nil {
		t.Error("certificate issued in the cut-off's second accepted")
	}
	if err := check(fresh); err != nil {
		t.Errorf("certificate issued after the cut-off: %v", err)
	}
	if err := check(other); err != nil {
		t.Errorf("another host: %v", err)
	}
	if err := check(op); err != nil {
		t.Errorf("an operator named like the host: %v", err)
	}
}

// handshake runs one TLS handshake between the configurations and
// returns the client's and the server's errors and what the server saw.
func handshake(t *testing.T, server, client *tls.Config) (peer *x509.Certificate, cerr, serr error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			serr = err
			return
		}
		defer c.Close()
		tc := tls.Server(c, server)
		if serr = tc.Handshake(); serr == nil {
			if cs := tc.ConnectionState(); len(cs.PeerCertificates) > 0 {
				peer = cs.PeerCertificates[0]
			}
			// Let the client read the server's last flight (TLS 1.3:
			// a client certificate is refused after the client's
			// handshake returned).
			tc.Write([]byte("x"))
		}
	}()
	c, err := tls.Dial("tcp", l.Addr().String(), client)
	if err == nil {
		_, cerr = c.Read(make([]byte, 1))
		c.Close()
	} else {
		cerr = err
	}
	<-done
	return peer, cerr, serr
}

func TestMutualTLSRefusesForgedAndExpiredCertificates(t *testing.T) {
	p := newPKI(t)
	p.issue("brain", Request{Kind: KindBrain, Name: "brain"})
	p.issue("h1", Request{Kind: KindHost, Name: "h1"})
	p.issue("old", Request{Kind: KindHost, Name: "h1", NotBefore: p.now.Add(-48 * time.Hour), NotAfter: p.now.Add(-time.Hour)})
	forged := newPKI(t)
	forged.issue("h1", Request{Kind: KindHost, Name: "h1"})
	forged.issue("brain", Request{Kind: KindBrain, Name: "brain"})

	srv, err := ServerConfig(ServerFiles{Cert: CertFile(p.dir, "brain"), Key: KeyFile(p.dir, "brain"), ClientCA: filepath.Join(p.dir, CACertFile)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := func(dir, name string) *tls.Config {
		c, err := ClientConfig(ClientFiles{Cert: CertFile(dir, name), Key: KeyFile(dir, name), CA: filepath.Join(p.dir, CACertFile)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.ServerName = "localhost"
		return c
	}
	if peer, cerr, serr := handshake(t, srv, client(p.dir, "h1")); cerr != nil || serr != nil || peer.Subject.CommonName != "h1" {
		t.Fatalf("good host certificate: client %v, server %v", cerr, serr)
	}
	_, cerr, serr := handshake(t, srv, client(forged.dir, "h1"))
	if serr == nil || !strings.Contains(serr.Error(), "unknown authority") || cerr == nil || !strings.Contains(cerr.Error(), "unknown certificate authority") {
		t.Errorf("certificate of another CA: client %v, server %v", cerr, serr)
	}
	_, cerr, serr = handshake(t, srv, client(p.dir, "old"))
	if serr == nil || !strings.Contains(serr.Error(), "expired") || cerr == nil || !strings.Contains(cerr.Error(), "expired certificate") {
		t.Errorf("expired certificate: client %v, server %v", cerr, serr)
	}
	// A client refuses a server that is not a brain of its CA, and a
	// host certificate cannot serve (no server-auth key usage).
	forgedSrv, err := ServerConfig(ServerFiles{Cert: CertFile(forged.dir, "brain"), Key: KeyFile(forged.dir, "brain"), ClientCA: filepath.Join(p.dir, CACertFile)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, cerr, _ := handshake(t, forgedSrv, client(p.dir, "h1")); cerr == nil || !strings.Contains(cerr.Error(), "unknown authority") {
		t.Errorf("brain of another CA: %v", cerr)
	}
	hostSrv, err := ServerConfig(ServerFiles{Cert: CertFile(p.dir, "h1"), Key: KeyFile(p.dir, "h1"), ClientCA: filepath.Join(p.dir, CACertFile)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := client(p.dir, "h1")
	hc.ServerName = "h1"
	if _, cerr, _ := handshake(t, hostSrv, hc); cerr == nil || !strings.Contains(cerr.Error(), "usage") {
		t.Errorf("host certificate serving: %v", cerr)
	}
}

func TestCertificatesReloadAtTheNextHandshake(t *testing.T) {
	p := newPKI(t)
	p.issue("brain", Request{Kind: KindBrain, Name: "brain"})
	first := p.issue("h1", Request{Kind: KindHost, Name: "h1"})
	var reloadErrs []error
	srv, err := ServerConfig(ServerFiles{Cert: CertFile(p.dir, "brain"), Key: KeyFile(p.dir, "brain"), ClientCA: filepath.Join(p.dir, CACertFile)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := ClientConfig(ClientFiles{Cert: CertFile(p.dir, "h1"), Key: KeyFile(p.dir, "h1"), CA: filepath.Join(p.dir, CACertFile)},
		func(err error) { reloadErrs = append(reloadErrs, err) })
	if err != nil {
		t.Fatal(err)
	}
	cl.ServerName = "localhost"
	serialSeen := func() string {
		t.Helper()
		peer, cerr, serr := handshake(t, srv, cl)
		if cerr != nil || serr != nil {
			t.Fatalf("handshake: client %v, server %v", cerr, serr)
		}
		return peer.SerialNumber.String()
	}
	if got := serialSeen(); got != first.Cert.SerialNumber.String() {
		t.Fatalf("server saw serial %s, want %s", got, first.Cert.SerialNumber)
	}
	second := p.issue("h1", Request{Kind: KindHost, Name: "h1"})
	if got := serialSeen(); got != second.Cert.SerialNumber.String() {
		t.Fatalf("after rotation the server saw serial %s, want the new %s", got, second.Cert.SerialNumber)
	}
	// A broken file keeps the last good certificate in service.
	if err := os.WriteFile(CertFile(p.dir, "h1"), []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := serialSeen(); got != second.Cert.SerialNumber.String() {
		t.Fatalf("after a broken write the server saw serial %s, want the last good %s", got, second.Cert.SerialNumber)
	}
	if len(reloadErrs) != 1 || !strings.Contains(reloadErrs[0].Error(), "keeping") {
		t.Errorf("reload errors %v, want one saying the last good certificate is kept", reloadErrs)
	}
}

func TestHTTPClientRefusesPlainTextBeyondLoopback(t *testing.T) {
	if _, err := HTTPClient("http://127.0.0.1:9480", ClientFiles{}, nil); err != nil {
		t.Error(err)
	}
	if _, err := HTTPClient("http://10.1.2.3:9480", ClientFiles{}, nil); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("plain text to 10.1.2.3: %v", err)
	}
	if _, err := HTTPClient("https://10.1.2.3:9480", ClientFiles{}, nil); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("https without files: %v", err)
	}
	if _, err := HTTPClient("ftp://x", ClientFiles{}, nil); err == nil {
		t.Error("ftp accepted")
	}
}

func TestCheckHostFile(t *testing.T) {
	p := newPKI(t)
	p.issue("h1", Request{Kind: KindHost, Name: "h1"})
	p.issue("ops", Request{Kind: KindOperator, Name: "ops", Scope: ScopeAdmin})
	if err := CheckHostFile(CertFile(p.dir, "h1"), "h1"); err != nil {
		t.Error(err)
	}
	if err := CheckHostFile(CertFile(p.dir, "h1"), "h2"); err == nil || !strings.Contains(err.Error(), "not host h2's") {
		t.Errorf("h1's certificate for h2: %v", err)
	}
	if err := CheckHostFile(CertFile(p.dir, "ops"), "ops"); err == nil || !strings.Contains(err.Error(), "operator ops") {
		t.Errorf("an operator certificate for a host: %v", err)
	}
	if err := CheckHostFile(KeyFile(p.dir, "h1"), "h1"); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("a key as certificate: %v", err)
	}
}
