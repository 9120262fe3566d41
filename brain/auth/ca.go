package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/sluicehq/sluice/brain/trace"
)

// Files in a certificate directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// CertFile and KeyFile name an issued certificate's files in dir.
func CertFile(dir, name string) string { return filepath.Join(dir, name+".crt") }
func KeyFile(dir, name string) string  { return filepath.Join(dir, name+".key") }

// DefaultValidity is an issued certificate's lifetime; the CA's is ten
// times longer.
const DefaultValidity = 365 * 24 * time.Hour

// CA is the cluster's certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// PEM is Cert encoded.
	PEM []byte
}

// NewCA creates a CA valid from now for validity.
func NewCA(name string, now time.Time, validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"sluice"}},
		NotBefore:             now.Truncate(time.Second),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("ca: sign: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	return &CA{Cert: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// InitDir creates a CA in dir (ca.crt, ca.key); it refuses a directory
// that already holds one, so a cluster's CA is never overwritten.
func InitDir(dir string, now time.Time) (*CA, error) {
	if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); err == nil {
		return nil, fmt.Errorf("ca %s: %s exists: a cluster keeps its CA (remove it by hand to start over)", dir, CAKeyFile)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ca %s: %w", dir, err)
	}
	ca, err := NewCA("sluice cluster CA", now, 10*DefaultValidity)
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeKey(ca.Key)
	if err != nil {
		return nil, fmt.Errorf("ca %s: %w", dir, err)
	}
	if err := writeFile(filepath.Join(dir, CAKeyFile), keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("ca %s: %w", dir, err)
	}
	if err := writeFile(filepath.Join(dir, CACertFile), ca.PEM, 0o644); err != nil {
		return nil, fmt.Errorf("ca %s: %w", dir, err)
	}
	return ca, nil
}

// LoadCA reads the CA (certificate and key) from dir.
func LoadCA(dir string) (*CA, error) {
	pair, err := loadPair(filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("ca %s: %w", dir, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("ca %s: key is not ECDSA", dir)
	}
	if !pair.Leaf.IsCA {
		return nil, fmt.Errorf("ca %s: %s is not a CA certificate", dir, CACertFile)
	}
	return &CA{Cert: pair.Leaf, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pair.Leaf.Raw})}, nil
}

// Request describes a certificate to issue.
type Request struct {
	Kind Kind
	// Name: the host's name (a DNS label), the operator's or the brain's.
	Name string
	// Scope of an operator certificate.
	Scope Scope
	// SANs are a brain's extra DNS names and IP addresses to serve under
	// (localhost, 127.0.0.1 and ::1 are always included).
	SANs []string
	// NotBefore and NotAfter default to now and now + DefaultValidity.
	NotBefore, NotAfter time.Time
}

// Issued is a signed certificate and its key, PEM-encoded.
type Issued struct {
	Cert            *x509.Certificate
	CertPEM, KeyPEM []byte
}

// Issue signs a certificate for r. NotBefore is truncated to the second
// (what X.509 stores), which revocation cut-offs compare against.
func (ca *CA) Issue(r Request, now time.Time) (*Issued, error) {
	if err := trace.ValidName(r.Name); err != nil {
		return nil, fmt.Errorf("issue %s %q: name: %w", r.Kind, r.Name, err)
	}
	if r.NotBefore.IsZero() {
		r.NotBefore = now
	}
	if r.NotAfter.IsZero() {
		r.NotAfter = r.NotBefore.Add(DefaultValidity)
	}
	if !r.NotAfter.After(r.NotBefore) {
		return nil, fmt.Errorf("issue %s %s: not after %s is not later than not before %s", r.Kind, r.Name, r.NotAfter, r.NotBefore)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("issue %s %s: %w", r.Kind, r.Name, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: r.Name, Organization: []string{"sluice"}},
		NotBefore:    r.NotBefore.Truncate(time.Second),
		NotAfter:     r.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	switch r.Kind {
	case KindHost:
		if r.Scope != ScopeNone || len(r.SANs) > 0 {
			return nil, fmt.Errorf("issue host %s: a host certificate carries no scope and no extra names", r.Name)
		}
		tmpl.DNSNames = []string{r.Name}
		tmpl.URIs = append(tmpl.URIs, identityURI(uriHost, r.Name))
	case KindOperator:
		if r.Scope == ScopeNone {
			return nil, fmt.Errorf("issue operator %s: no scope: want read, submit or admin", r.Name)
		}
		tmpl.Subject.OrganizationalUnit = []string{r.Scope.String()}
		tmpl.URIs = append(tmpl.URIs, identityURI(uriScope, r.Scope.String()))
	case KindBrain:
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		tmpl.URIs = append(tmpl.URIs, identityURI(uriBrain, r.Name))
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		for _, s := range r.SANs {
			if ip := net.ParseIP(s); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else if s != "" {
				tmpl.DNSNames = append(tmpl.DNSNames, s)
			}
		}
	default:
		return nil, fmt.Errorf("issue %q: unknown kind %d", r.Name, r.Kind)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("issue %s %s: key: %w", r.Kind, r.Name, err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue %s %s: sign: %w", r.Kind, r.Name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("issue %s %s: %w", r.Kind, r.Name, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, fmt.Errorf("issue %s %s: %w", r.Kind, r.Name, err)
	}
	return &Issued{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), KeyPEM: keyPEM}, nil
}

// IssueFiles issues one certificate per request and writes each as
// dir/<file>.crt and .key, file being the request's key in reqs.
func (ca *CA) IssueFiles(dir string, now time.Time, reqs map[string]Request) error {
	for file, r := range reqs {
		is, err := ca.Issue(r, now)
		if err != nil {
			return err
		}
		if err := is.Write(dir, file); err != nil {
			return err
		}
	}
	return nil
}

// Write stores the certificate and key as dir/<file>.crt and .key, each
// replaced atomically (written aside, then renamed), the key first: a
// process reloading between the two renames sees a mismatched pair,
// refuses it and keeps its last good one.
func (i *Issued) Write(dir, file string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	if err := writeFile(KeyFile(dir, file), i.KeyPEM, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	if err := writeFile(CertFile(dir, file), i.CertPEM, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}

func encodeKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	return s, nil
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(f.Name(), mode)); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}
