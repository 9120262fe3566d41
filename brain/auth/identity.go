package auth

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Scope is what an operator credential may do. Each scope includes the
// ones before it: read < submit < admin.
type Scope int

// Scopes, weakest first. ScopeNone is "not an operator".
const (
	ScopeNone Scope = iota
	ScopeRead
	ScopeSubmit
	ScopeAdmin
)

// String is the scope's name as written in certificates and flags.
func (s Scope) String() string {
	switch s {
	case ScopeRead:
		return "read"
	case ScopeSubmit:
		return "submit"
	case ScopeAdmin:
		return "admin"
	}
	return "none"
}

// ParseScope reads a scope name.
func ParseScope(s string) (Scope, error) {
	switch s {
	case "read":
		return ScopeRead, nil
	case "submit":
		return ScopeSubmit, nil
	case "admin":
		return ScopeAdmin, nil
	}
	return ScopeNone, fmt.Errorf("scope %q: want read, submit or admin", s)
}

// Kind is what a certificate identifies.
type Kind int

// Kinds of identity.
const (
	KindHost Kind = iota + 1
	KindOperator
	KindBrain
)

func (k Kind) String() string {
	switch k {
	case KindHost:
		return "host"
	case KindOperator:
		return "operator"
	case KindBrain:
		return "brain"
	}
	return "unknown"
}

// URI scheme and the path kinds of identity URIs.
const (
	uriScheme     = "sluice"
	uriHost       = "host"
	uriScope      = "scope"
	uriBrain      = "brain"
	identityForms = "sluice://host/NAME, sluice://scope/SCOPE or sluice://brain/NAME"
)

// Identity is who a verified certificate speaks for.
type Identity struct {
	Kind Kind
	// Name is the host's, operator's (CN) or brain's name.
	Name string
	// Scope is an operator's scope; ScopeNone for hosts and brains.
	Scope Scope
}

func (id Identity) String() string {
	if id.Kind == KindOperator {
		return fmt.Sprintf("operator %s (scope %s)", id.Name, id.Scope)
	}
	return fmt.Sprintf("%s %s", id.Kind, id.Name)
}

// ErrNoIdentity is wrapped by IdentityOf for certificates without exactly
// one Sluice identity URI.
var ErrNoIdentity = errors.New("no sluice identity")

// IdentityOf reads the identity a certificate carries. It does not verify
// the certificate: call it on a verified chain's leaf.
func IdentityOf(c *x509.Certificate) (Identity, error) {
	var ids []Identity
	for _, u := range c.URIs {
		if u.Scheme != uriScheme {
			continue
		}
		id, err := identityOfURI(u, c.Subject.CommonName)
		if err != nil {
			return Identity{}, fmt.Errorf("certificate %s: %w", c.Subject.CommonName, err)
		}
		ids = append(ids, id)
	}
	switch len(ids) {
	case 0:
		return Identity{}, fmt.Errorf("certificate %s: %w: want one URI SAN of %s", c.Subject.CommonName, ErrNoIdentity, identityForms)
	case 1:
		return ids[0], nil
	}
	return Identity{}, fmt.Errorf("certificate %s: %w: %d identity URIs, want exactly one", c.Subject.CommonName, ErrNoIdentity, len(ids))
}

func identityOfURI(u *url.URL, cn string) (Identity, error) {
	value := strings.TrimPrefix(u.Path, "/")
	if value == "" || strings.Contains(value, "/") {
		return Identity{}, fmt.Errorf("identity URI %s: want %s", u, identityForms)
	}
	switch u.Host {
	case uriHost:
		if cn != value {
			return Identity{}, fmt.Errorf("identity URI %s: common name %q differs", u, cn)
		}
		return Identity{Kind: KindHost, Name: value}, nil
	case uriBrain:
		return Identity{Kind: KindBrain, Name: value}, nil
	case uriScope:
		s, err := ParseScope(value)
		if err != nil {
			return Identity{}, fmt.Errorf("identity URI %s: %w", u, err)
		}
		if cn == "" {
			return Identity{}, fmt.Errorf("identity URI %s: operator certificate without a common name", u)
		}
		return Identity{Kind: KindOperator, Name: cn, Scope: s}, nil
	}
	return Identity{}, fmt.Errorf("identity URI %s: want %s", u, identityForms)
}

func identityURI(kind, value string) *url.URL {
	return &url.URL{Scheme: uriScheme, Host: kind, Path: "/" + value}
}

// CheckHostFile checks the certificate in certFile is host name's, so an
// agent started with another host's certificate (or an operator's) says
// so at start instead of being refused at every request.
func CheckHostFile(certFile, name string) error {
	data, err := os.ReadFile(certFile)
	if err != nil {
		return fmt.Errorf("certificate %s: %w", certFile, err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return fmt.Errorf("certificate %s: no PEM certificate in it", certFile)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("certificate %s: %w", certFile, err)
	}
	id, err := IdentityOf(c)
	if err != nil {
		return fmt.Errorf("certificate %s: %w", certFile, err)
	}
	if id.Kind != KindHost || id.Name != name {
		return fmt.Errorf("certificate %s is %s's, not host %s's (the brain accepts a host's requests only with its own certificate)", certFile, id, name)
	}
	return nil
}
