package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// stamp tells whether a file changed since it was last read.
type stamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	return stamp{fi.ModTime(), fi.Size()}, nil
}

// keyPair is a certificate and key read from disk again whenever either
// file changes, checked at each call (each TLS handshake). A pair that
// does not load (half written, mismatched, expired CA...) keeps the last
// good one in service and is reported through onErr once per change.
type keyPair struct {
	certPath, keyPath string
	onErr             func(error)

	mu     sync.Mutex
	stamps [2]stamp
	cur    *tls.Certificate
}

func newKeyPair(certPath, keyPath string, onErr func(error)) (*keyPair, error) {
	if onErr == nil {
		onErr = func(error) {}
	}
	p := &keyPair{certPath: certPath, keyPath: keyPath, onErr: onErr}
	if _, err := p.get(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *keyPair) get() (*tls.Certificate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs, cerr := stampOf(p.certPath)
	ks, kerr := stampOf(p.keyPath)
	if err := errors.Join(cerr, kerr); err != nil {
		if p.cur != nil {
			return p.cur, nil
		}
		return nil, fmt.Errorf("certificate %s: %w", p.certPath, err)
	}
	if p.cur != nil && p.stamps == [2]stamp{cs, ks} {
		return p.cur, nil
	}
	p.stamps = [2]stamp{cs, ks}
	c, err := loadPair(p.certPath, p.keyPath)
	if err != nil {
		if p.cur != nil {
			p.onErr(fmt.Errorf("%w (keeping the certificate loaded before)", err))
			return p.cur, nil
		}
		return nil, err
	}
	p.cur = c
	return c, nil
}

func loadPair(certPath, keyPath string) (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("certificate %s, key %s: %w", certPath, keyPath, err)
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("certificate %s: %w", certPath, err)
		}
	}
	return &c, nil
}

// caPool is a CA bundle file read again whenever it changes.
type caPool struct {
	path  string
	onErr func(error)

	mu  sync.Mutex
	st  stamp
	cur *x509.CertPool
}

func newCAPool(path string, onErr func(error)) (*caPool, error) {
	if onErr == nil {
		onErr = func(error) {}
	}
	p := &caPool{path: path, onErr: onErr}
	if _, err := p.get(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *caPool) get() (*x509.CertPool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := stampOf(p.path)
	if err != nil {
		if p.cur != nil {
			return p.cur, nil
		}
		return nil, fmt.Errorf("ca %s: %w", p.path, err)
	}
	if p.cur != nil && st == p.st {
		return p.cur, nil
	}
	p.st = st
	pool, err := readPool(p.path)
	if err != nil {
		if p.cur != nil {
			p.onErr(fmt.Errorf("%w (keeping the CA loaded before)", err))
			return p.cur, nil
		}
		return nil, err
	}
	p.cur = pool
	return pool, nil
}

func readPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca %s: %w", path, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("ca %s: no PEM certificate in it", path)
	}
	return pool, nil
}
