package auth

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"net/url"
	"testing"
)

// FuzzIdentityOf: any identity URI and common name either yield exactly
// the identity they spell or an error; never a panic, never a scope or
// kind outside the known ones.
func FuzzIdentityOf(f *testing.F) {
	for _, seed := range [][2]string{
		{"sluice://host/h1", "h1"}, {"sluice://scope/admin", "ops"}, {"sluice://brain/b", "b"},
		{"sluice://scope/root", "x"}, {"sluice://host/h1/x", "h1"}, {"sluice://host/", ""}, {"spiffe://x/y", "y"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, raw, cn string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		c := &x509.Certificate{Subject: pkix.Name{CommonName: cn}, URIs: []*url.URL{u}}
		id, err := IdentityOf(c)
		if err != nil {
			return
		}
		switch id.Kind {
		case KindHost:
			if id.Name != cn || id.Scope != ScopeNone || u.Host != uriHost {
				t.Fatalf("%q cn %q: %+v", raw, cn, id)
			}
		case KindOperator:
			if id.Name != cn || id.Scope < ScopeRead || id.Scope > ScopeAdmin || u.Host != uriScope {
				t.Fatalf("%q cn %q: %+v", raw, cn, id)
			}
		case KindBrain:
			if id.Scope != ScopeNone || u.Host != uriBrain {
				t.Fatalf("%q cn %q: %+v", raw, cn, id)
			}
		default:
			t.Fatalf("%q: kind %v", raw, id.Kind)
		}
		if id.Name == "" {
			t.Fatalf("%q: empty name", raw)
		}
	})
}
