package server

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
	"github.com/sluicehq/sluice/brain/auth"
)

// rule is what a procedure asks of its caller: a host certificate naming
// the host the request speaks for (agent procedures), or an operator
// scope. ScopeNone with !host is any authenticated identity.
type rule struct {
	host  bool
	scope auth.Scope
}

// rules holds every procedure the brain serves. A procedure missing here
// needs admin (fail closed); a test checks every procedure of the
// generated services is listed, so a new RPC is given its scope on
// purpose.
var rules = map[string]rule{
	brainv1connect.AgentServiceRegisterProcedure:  {host: true},
	brainv1connect.AgentServiceHeartbeatProcedure: {host: true},
	brainv1connect.AgentServiceAckProcedure:       {host: true},
	brainv1connect.AgentServiceTargetsProcedure:   {host: true},
	brainv1connect.AgentServicePutLogsProcedure:   {host: true},

	brainv1connect.OperatorServiceListHostsProcedure:        {scope: auth.ScopeRead},
	brainv1connect.OperatorServiceListJobsProcedure:         {scope: auth.ScopeRead},
	brainv1connect.OperatorServiceGetJobProcedure:           {scope: auth.ScopeRead},
	brainv1connect.OperatorServiceExplainProcedure:          {scope: auth.ScopeRead},
	brainv1connect.OperatorServiceLogsProcedure:             {scope: auth.ScopeRead},
	brainv1connect.OperatorServiceSubmitJobsProcedure:       {scope: auth.ScopeSubmit},
	brainv1connect.OperatorServiceDeleteJobProcedure:        {scope: auth.ScopeAdmin},
	brainv1connect.OperatorServiceDrainHostProcedure:        {scope: auth.ScopeAdmin},
	brainv1connect.OperatorServiceUncordonHostProcedure:     {scope: auth.ScopeAdmin},
	brainv1connect.OperatorServiceSetHostOverridesProcedure: {scope: auth.ScopeAdmin},

	brainv1connect.AccessServiceWhoAmIProcedure:          {},
	brainv1connect.AccessServiceListRevocationsProcedure: {scope: auth.ScopeRead},
	brainv1connect.AccessServiceRevokeHostProcedure:      {scope: auth.ScopeAdmin},

	// Served by every brain (HA.Handler), leader or not.
	brainv1connect.MaintenanceServiceStoreStatusProcedure: {scope: auth.ScopeRead},
	brainv1connect.MaintenanceServiceSnapshotProcedure:    {scope: auth.ScopeAdmin},
}

func ruleOf(procedure string) rule {
	if r, ok := rules[procedure]; ok {
		return r
	}
	return rule{scope: auth.ScopeAdmin}
}

// peer is the TLS identity of a request, put in its context by
// withPeer.
type peer struct {
	id   auth.Identity
	cert *x509.Certificate
	err  error
}

type peerKey struct{}

// withPeer reads the identity of each request's verified client
// certificate into its context. A certificate revoked or expired since
// its connection's handshake also gets "Connection: close" (a GOAWAY in
// HTTP/2): the client's next request opens a new connection and presents
// the certificate it holds now, so an agent whose certificate was
// replaced on disk is back without a restart.
func (a *access) withPeer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Handlers nest (the HA's around a term's, the fleet view's around
		// the API): the outermost reads the identity, the rest reuse it.
		p, known := r.Context().Value(peerKey{}).(peer)
		if !known {
			p.id, p.cert, p.err = auth.PeerIdentity(r.TLS)
			if fwd := r.Header.Get(CallerCertHeader); fwd != "" && p.err == nil && p.id.Kind == auth.KindBrain {
				// A follower forwarded this request: the caller is the
				// certificate it verified, not the follower.
				p.id, p.cert, p.err = forwardedCaller(fwd)
			}
			r = r.WithContext(context.WithValue(r.Context(), peerKey{}, p))
		}
		// Each layer checks its own revocations (the HA's has none).
		if p.err == nil && (a.revoked.Check(p.id, p.cert) != nil || a.now().After(p.cert.NotAfter)) {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// forwardedCaller reads the certificate a follower names in
// CallerCertHeader.
func forwardedCaller(b64 string) (auth.Identity, *x509.Certificate, error) {
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return auth.Identity{}, nil, fmt.Errorf("forwarded caller certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return auth.Identity{}, nil, fmt.Errorf("forwarded caller certificate: %w", err)
	}
	id, err := auth.IdentityOf(cert)
	return id, cert, err
}

// callerOf is the identity of the request in ctx; ok is false on a
// plain-text (loopback) brain.
func callerOf(ctx context.Context) (auth.Identity, bool) {
	p, ok := ctx.Value(peerKey{}).(peer)
	return p.id, ok && p.err == nil
}

// access is the Connect interceptor that authorises every RPC on a TLS
// brain: it refuses unknown or revoked certificates, operator calls
// outside the credential's scope and agent calls for a host other than
// the certificate's. Refusals are counted by reason and change nothing.
type access struct {
	revoked *auth.Revocations
	now     func() time.Time
	denied  *prometheus.CounterVec
}

func newAccess(reg prometheus.Registerer, revoked *auth.Revocations, now func() time.Time) *access {
	a := &access{revoked: revoked, now: now, denied: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_brain_access_denied_total",
		Help: "RPCs refused by reason: identity (no usable certificate identity), revoked, scope (operator scope too small or wrong kind of caller), host (a host certificate speaking for another host).",
	}, []string{"reason"})}
	reg.MustRegister(a.denied)
	return a
}

// named is every agent request: it says which host it speaks for.
type named interface{ GetName() string }

// authorize checks the caller in ctx may call procedure, with msg (nil
// before a stream's request arrives).
func (a *access) authorize(ctx context.Context, procedure string, msg any) error {
	p, ok := ctx.Value(peerKey{}).(peer)
	if !ok {
		return a.deny("identity", connect.CodeUnauthenticated, fmt.Errorf("%s: no client certificate", procedure))
	}
	if p.err != nil {
		return a.deny("identity", connect.CodeUnauthenticated, fmt.Errorf("%s: %w", procedure, p.err))
	}
	if err := a.revoked.Check(p.id, p.cert); err != nil {
		return a.deny("revoked", connect.CodePermissionDenied, fmt.Errorf("%s: %w", procedure, err))
	}
	if now := a.now(); now.After(p.cert.NotAfter) {
		// Verified at the handshake, expired since on a long-lived
		// connection.
		return a.deny("identity", connect.CodeUnauthenticated, fmt.Errorf("%s: %s: certificate expired at %s", procedure, p.id, p.cert.NotAfter.UTC().Format(time.RFC3339)))
	}
	if p.id.Kind == auth.KindBrain {
		// Brains are peers: a follower checks its caller before it
		// forwards to the leader.
		return nil
	}
	r := ruleOf(procedure)
	switch {
	case r.host:
		if p.id.Kind != auth.KindHost {
			return a.deny("scope", connect.CodePermissionDenied, fmt.Errorf("%s is an agent procedure: it needs a host certificate, the caller is %s", procedure, p.id))
		}
		if n, ok := msg.(named); ok && n.GetName() != p.id.Name {
			return a.deny("host", connect.CodePermissionDenied, fmt.Errorf("%s: the certificate is host %s's; it may not speak for host %q", procedure, p.id.Name, n.GetName()))
		}
	case r.scope != auth.ScopeNone:
		if p.id.Kind != auth.KindOperator || p.id.Scope < r.scope {
			return a.deny("scope", connect.CodePermissionDenied, fmt.Errorf("%s needs scope %s; the caller is %s", procedure, r.scope, p.id))
		}
	}
	return nil
}

func (a *access) deny(reason string, code connect.Code, err error) error {
	a.denied.WithLabelValues(reason).Inc()
	return connect.NewError(code, err)
}

func (a *access) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if err := a.authorize(ctx, req.Spec().Procedure, req.Any()); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (a *access) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (a *access) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(ctx, &checkedConn{StreamingHandlerConn: conn, ctx: ctx, a: a})
	}
}

// checkedConn authorises a stream's every request message (agent
// streams name their host in it) and checks revocation again before each
// message sent, so a revoked host's open stream ends at its next update.
type checkedConn struct {
	connect.StreamingHandlerConn
	ctx context.Context
	a   *access
}

func (c *checkedConn) Receive(msg any) error {
	if err := c.StreamingHandlerConn.Receive(msg); err != nil {
		return err
	}
	return c.a.authorize(c.ctx, c.Spec().Procedure, msg)
}

func (c *checkedConn) Send(msg any) error {
	if p, ok := c.ctx.Value(peerKey{}).(peer); ok && p.err == nil {
		if err := c.a.revoked.Check(p.id, p.cert); err != nil {
			return c.a.deny("revoked", connect.CodePermissionDenied, err)
		}
	}
	return c.StreamingHandlerConn.Send(msg)
}

// HasAccessRule tells whether procedure has its own rule (tests check
// every served procedure does).
func HasAccessRule(procedure string) bool {
	_, ok := rules[procedure]
	return ok
}

// Viewers guards what the brain serves beside its RPCs — the fleet view
// and the event stream — on a TLS brain: an operator credential of any
// scope (or a brain) may look; a host certificate may not. /healthz and
// /metrics stay open to every verified certificate, and RPCs are
// authorised one by one by the interceptor. Plain text (loopback) passes
// everything.
func (b *Brain) Viewers(h http.Handler) http.Handler {
	if !b.cfg.Authenticate {
		return h
	}
	return b.access.withPeer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/sluice.brain.v1.") || r.URL.Path == "/healthz" || r.URL.Path == "/metrics" {
			h.ServeHTTP(w, r)
			return
		}
		p, _ := r.Context().Value(peerKey{}).(peer)
		switch {
		case p.err != nil:
			b.access.denied.WithLabelValues("identity").Inc()
			http.Error(w, fmt.Sprintf("%s: %v", r.URL.Path, p.err), http.StatusUnauthorized)
		case p.id.Kind != auth.KindOperator && p.id.Kind != auth.KindBrain:
			b.access.denied.WithLabelValues("scope").Inc()
			http.Error(w, fmt.Sprintf("%s needs an operator credential (scope %s); the caller is %s", r.URL.Path, auth.ScopeRead, p.id), http.StatusForbidden)
		default:
			h.ServeHTTP(w, r)
		}
	}))
}
