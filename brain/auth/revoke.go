package auth

import (
	"crypto/x509"
	"fmt"
	"maps"
	"sync"
	"time"
)

// Revocations are the hosts whose certificates are revoked: every host
// certificate issued (NotBefore) at or before its host's cut-off is
// refused; certificates issued afterwards are good again, so a revoked
// host comes back with a freshly issued certificate. The cut-off is
// truncated to the second, as certificates' NotBefore is: a certificate
// issued in the same second as the revocation is revoked too.
//
// Safe for concurrent use.
type Revocations struct {
	mu     sync.RWMutex
	cutoff map[string]time.Time
}

// NewRevocations starts with the given cut-offs by host.
func NewRevocations(cutoffs map[string]time.Time) *Revocations {
	r := &Revocations{cutoff: map[string]time.Time{}}
	for h, t := range cutoffs {
		r.cutoff[h] = t.Truncate(time.Second)
	}
	return r
}

// Set records (or moves) a host's cut-off.
func (r *Revocations) Set(host string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cutoff[host] = at.Truncate(time.Second)
}

// All lists the cut-offs by host.
func (r *Revocations) All() map[string]time.Time {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return maps.Clone(r.cutoff)
}

// Check refuses a host certificate issued at or before its host's cut-off.
func (r *Revocations) Check(id Identity, c *x509.Certificate) error {
	if id.Kind != KindHost {
		return nil
	}
	r.mu.RLock()
	at, ok := r.cutoff[id.Name]
	r.mu.RUnlock()
	if ok && !c.NotBefore.After(at) {
		return fmt.Errorf("host %s: certificate %x (issued %s) is revoked: certificates issued up to %s are refused; issue a new one",
			id.Name, c.SerialNumber, c.NotBefore.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	return nil
}
