package auth

import (
	"crypto/tls"
	"net"
	"path/filepath"
	"testing"
)

// BenchmarkMutualTLSHandshake: one full mutual-TLS handshake (ECDSA
// P-256 on both sides, client chain verified, files checked for
// rotation) over an in-memory pipe; both ends run in this process, so
// the figure is the pair's cost (what a brain and its joining agent
// spend together).
func BenchmarkMutualTLSHandshake(b *testing.B) {
	p := newPKI(b)
	p.issue("brain", Request{Kind: KindBrain, Name: "brain"})
	p.issue("h1", Request{Kind: KindHost, Name: "h1"})
	srv, err := ServerConfig(ServerFiles{Cert: CertFile(p.dir, "brain"), Key: KeyFile(p.dir, "brain"), ClientCA: filepath.Join(p.dir, CACertFile)}, nil)
	if err != nil {
		b.Fatal(err)
	}
	cl, err := ClientConfig(ClientFiles{Cert: CertFile(p.dir, "h1"), Key: KeyFile(p.dir, "h1"), CA: filepath.Join(p.dir, CACertFile)}, nil)
	if err != nil {
		b.Fatal(err)
	}
	cl.ServerName = "localhost"
	b.ReportAllocs()
	for b.Loop() {
		// net.Pipe is unbuffered: the server's TLS 1.3 session ticket
		// needs a reader, so the client reads until the server closes.
		c1, c2 := net.Pipe()
		errs := make(chan error, 1)
		go func() {
			s := tls.Server(c1, srv)
			errs <- s.Handshake()
			s.Close()
		}()
		c := tls.Client(c2, cl)
		if err := c.Handshake(); err != nil {
			b.Fatal(err)
		}
		c.Read(make([]byte, 1))
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
