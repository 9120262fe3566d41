package server_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/reflect/protoreflect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
	"github.com/sluicehq/sluice/brain/auth"
	"github.com/sluicehq/sluice/brain/server"
	"github.com/sluicehq/sluice/brain/server/servertest"
)

// tlsFleet is a TLS brain and a certificate directory to call it with.
type tlsFleet struct {
	t     *testing.T
	dir   string
	ca    *auth.CA
	brain servertest.Brain
}

func newTLSFleet(t *testing.T) *tlsFleet {
	t.Helper()
	dir := t.TempDir()
	ca, err := auth.InitDir(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f := &tlsFleet{t: t, dir: dir, ca: ca}
	f.issue("brain", auth.Request{Kind: auth.KindBrain, Name: "brain"})
	f.brain = servertest.StartTLS(t, server.Liveness{}, auth.ServerFiles{
		Cert: auth.CertFile(dir, "brain"), Key: auth.KeyFile(dir, "brain"), ClientCA: filepath.Join(dir, auth.CACertFile),
	})
	return f
}

func (f *tlsFleet) issue(file string, r auth.Request) {
	f.t.Helper()
	is, err := f.ca.Issue(r, time.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	if err := is.Write(f.dir, file); err != nil {
		f.t.Fatal(err)
	}
}

// client is an HTTP client presenting dir/file.crt, trusting this
// fleet's CA.
func (f *tlsFleet) client(dir, file string) *http.Client {
	f.t.Helper()
	hc, err := auth.HTTPClient(f.brain.URL, auth.ClientFiles{
		Cert: auth.CertFile(dir, file), Key: auth.KeyFile(dir, file), CA: filepath.Join(f.dir, auth.CACertFile),
	}, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return hc
}

func (f *tlsFleet) agent(file string) brainv1connect.AgentServiceClient {
	return brainv1connect.NewAgentServiceClient(f.client(f.dir, file), f.brain.URL)
}

func (f *tlsFleet) operator(file string) brainv1connect.OperatorServiceClient {
	return brainv1connect.NewOperatorServiceClient(f.client(f.dir, file), f.brain.URL)
}

func (f *tlsFleet) access(file string) brainv1connect.AccessServiceClient {
	return brainv1connect.NewAccessServiceClient(f.client(f.dir, file), f.brain.URL)
}

// etcd is every key of the brain's state with its mod revision.
func (f *tlsFleet) etcd() map[string]int64 {
	f.t.Helper()
	resp, err := f.brain.Client.Get(context.Background(), "/sluice/", clientv3.WithPrefix())
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]int64{}
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = kv.ModRevision
	}
	return out
}

// refused checks err is a Connect error of code whose message holds
// every want, and that etcd did not change since before.
func (f *tlsFleet) refused(what string, err error, code connect.Code, before map[string]int64, want ...string) {
	f.t.Helper()
	if connect.CodeOf(err) != code {
		f.t.Errorf("%s: %v (code %v), want %v", what, err, connect.CodeOf(err), code)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			f.t.Errorf("%s: %q does not say %q", what, err, w)
		}
	}
	if after := f.etcd(); !maps.Equal(before, after) {
		f.t.Errorf("%s changed etcd: %v -> %v", what, before, after)
	}
}

func register(name string) *connect.Request[brainv1.RegisterRequest] {
	return connect.NewRequest(&brainv1.RegisterRequest{
		NodeId: "node-" + name, Name: name, Capacity: &brainv1.Resources{Amounts: map[string]int64{"cpu": 8000, "memory": 16 << 30}},
	})
}

const oneJob = "version: 1\napps:\n  - {name: api, cpu: 1, memory: 1Gi, image: busybox}\nrequests:\n  - {app: api, count: 1}\n"

func TestHostsSpeakOnlyForThemselves(t *testing.T) {
	f := newTLSFleet(t)
	f.issue("h1", auth.Request{Kind: auth.KindHost, Name: "h1"})
	f.issue("h2", auth.Request{Kind: auth.KindHost, Name: "h2"})
	ctx := context.Background()
	h1, h2 := f.agent("h1"), f.agent("h2")
	if _, err := h1.Register(ctx, register("h1")); err != nil {
		t.Fatal(err)
	}
	if _, err := h2.Register(ctx, register("h2")); err != nil {
		t.Fatal(err)
	}
	before := f.etcd()
	_, err := h1.Register(ctx, register("h2"))
	f.refused("h1's certificate registering h2", err, connect.CodePermissionDenied, before, "host h1", `may not speak for host "h2"`)
	_, err = h1.Heartbeat(ctx, connect.NewRequest(&brainv1.HeartbeatRequest{NodeId: "node-h2", Name: "h2"}))
	f.refused("h1's certificate heartbeating for h2", err, connect.CodePermissionDenied, before, "may not speak for host")
	_, err = h1.Ack(ctx, connect.NewRequest(&brainv1.AckRequest{NodeId: "node-h2", Name: "h2"}))
	f.refused("h1's certificate acknowledging for h2", err, connect.CodePermissionDenied, before, "may not speak for host")
	s, err := h1.Targets(ctx, connect.NewRequest(&brainv1.TargetsRequest{NodeId: "node-h2", Name: "h2"}))
	if err == nil {
		for s.Receive() {
			t.Errorf("h1 received h2's target %v", s.Msg())
		}
		err = s.Err()
		s.Close()
	}
	f.refused("h1's certificate following h2's targets", err, connect.CodePermissionDenied, before, "may not speak for host")
	// Host certificates are not operator credentials, and the reverse.
	_, err = f.operator("h1").ListHosts(ctx, connect.NewRequest(&brainv1.ListHostsRequest{}))
	f.refused("a host listing hosts", err, connect.CodePermissionDenied, before, "needs scope read", "host h1")
	f.issue("admin", auth.Request{Kind: auth.KindOperator, Name: "ops", Scope: auth.ScopeAdmin})
	_, err = f.agent("admin").Heartbeat(ctx, connect.NewRequest(&brainv1.HeartbeatRequest{NodeId: "node-h2", Name: "h2"}))
	f.refused("an operator heartbeating", err, connect.CodePermissionDenied, before, "needs a host certificate", "operator ops")
	if _, err := h2.Heartbeat(ctx, connect.NewRequest(&brainv1.HeartbeatRequest{NodeId: "node-h2", Name: "h2"})); err != nil {
		t.Errorf("h2's own heartbeat: %v", err)
	}
}

func TestOperatorScopes(t *testing.T) {
	f := newTLSFleet(t)
	f.issue("reader", auth.Request{Kind: auth.KindOperator, Name: "ro", Scope: auth.ScopeRead})
	f.issue("submitter", auth.Request{Kind: auth.KindOperator, Name: "ci", Scope: auth.ScopeSubmit})
	f.issue("admin", auth.Request{Kind: auth.KindOperator, Name: "ops", Scope: auth.ScopeAdmin})
	f.issue("h1", auth.Request{Kind: auth.KindHost, Name: "h1"})
	ctx := context.Background()
	if _, err := f.agent("h1").Register(ctx, register("h1")); err != nil {
		t.Fatal(err)
	}
	reader, submitter, admin := f.operator("reader"), f.operator("submitter"), f.operator("admin")
	who, err := f.access("reader").WhoAmI(ctx, connect.NewRequest(&brainv1.WhoAmIRequest{}))
	if err != nil || who.Msg.GetKind() != "operator" || who.Msg.GetName() != "ro" || who.Msg.GetScope() != "read" {
		t.Fatalf("whoami: %v %v", who, err)
	}
	if _, err := reader.ListHosts(ctx, connect.NewRequest(&brainv1.ListHostsRequest{})); err != nil {
		t.Errorf("read scope listing hosts: %v", err)
	}
	before := f.etcd()
	_, err = reader.SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: []byte(oneJob)}))
	f.refused("a read-only credential submitting a job", err, connect.CodePermissionDenied, before, "needs scope submit", "operator ro (scope read)")
	_, err = reader.DrainHost(ctx, connect.NewRequest(&brainv1.DrainHostRequest{Name: "h1"}))
	f.refused("a read-only credential draining", err, connect.CodePermissionDenied, before, "needs scope admin")
	if _, err := submitter.SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: []byte(oneJob)})); err != nil {
		t.Fatalf("submit scope submitting: %v", err)
	}
	before = f.etcd()
	_, err = submitter.DeleteJob(ctx, connect.NewRequest(&brainv1.DeleteJobRequest{Name: "api"}))
	f.refused("a submit credential deleting", err, connect.CodePermissionDenied, before, "needs scope admin")
	_, err = f.access("submitter").RevokeHost(ctx, connect.NewRequest(&brainv1.RevokeHostRequest{Name: "h1"}))
	f.refused("a submit credential revoking", err, connect.CodePermissionDenied, before, "needs scope admin")
	if _, err := admin.DeleteJob(ctx, connect.NewRequest(&brainv1.DeleteJobRequest{Name: "api"})); err != nil {
		t.Errorf("admin deleting: %v", err)
	}
}

func TestForgedAndExpiredCertificatesAreRefused(t *testing.T) {
	f := newTLSFleet(t)
	forgedDir := t.TempDir()
	forgedCA, err := auth.InitDir(forgedDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	is, err := forgedCA.Issue(auth.Request{Kind: auth.KindOperator, Name: "mallory", Scope: auth.ScopeAdmin}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := is.Write(forgedDir, "admin"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	f.issue("expired", auth.Request{Kind: auth.KindOperator, Name: "old", Scope: auth.ScopeAdmin, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	ctx := context.Background()
	before := f.etcd()
	submit := func(hc *http.Client) error {
		_, err := brainv1connect.NewOperatorServiceClient(hc, f.brain.URL).SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: []byte(oneJob)}))
		return err
	}
	// A refused handshake reaches the client as the TLS alert naming the
	// reason. TLS 1.2 here: in TLS 1.3 the client's handshake completes
	// before the server has checked its certificate, and whether the
	// client then reads the alert or first fails writing its request is
	// a race (brain/auth's handshake tests read the alert in 1.3).
	tls12 := func(hc *http.Client) *http.Client {
		hc.Transport.(*http.Transport).TLSClientConfig.MaxVersion = tls.VersionTLS12
		return hc
	}
	f.refused("a certificate of another CA", submit(tls12(f.client(forgedDir, "admin"))), connect.CodeUnavailable, before, "unknown certificate authority")
	f.refused("an expired certificate", submit(tls12(f.client(f.dir, "expired"))), connect.CodeUnavailable, before, "expired certificate")
	// TLS 1.3 refuses them too, whichever way the client learns it.
	for _, hc := range []*http.Client{f.client(forgedDir, "admin"), f.client(f.dir, "expired")} {
		if err := submit(hc); err == nil {
			t.Error("a forged or expired certificate submitted over TLS 1.3")
		}
	}
	if after := f.etcd(); !maps.Equal(before, after) {
		t.Errorf("refused handshakes changed etcd: %v -> %v", before, after)
	}
}

func TestRevocationCutsAHostOffAndANewCertificateLetsItBack(t *testing.T) {
	f := newTLSFleet(t)
	f.issue("h1", auth.Request{Kind: auth.KindHost, Name: "h1"})
	f.issue("h2", auth.Request{Kind: auth.KindHost, Name: "h2"})
	f.issue("admin", auth.Request{Kind: auth.KindOperator, Name: "ops", Scope: auth.ScopeAdmin})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h1hc := f.client(f.dir, "h1")
	h1 := brainv1connect.NewAgentServiceClient(h1hc, f.brain.URL)
	if _, err := h1.Register(ctx, register("h1")); err != nil {
		t.Fatal(err)
	}
	// h1 follows its target over one long-lived stream.
	stream, err := h1.Targets(ctx, connect.NewRequest(&brainv1.TargetsRequest{NodeId: "node-h1", Name: "h1"}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if !stream.Receive() {
		t.Fatalf("first target: %v", stream.Err())
	}
	rv, err := f.access("admin").RevokeHost(ctx, connect.NewRequest(&brainv1.RevokeHostRequest{Name: "h1"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := rv.Msg.GetRevocation(); got.GetHost() != "h1" || got.GetBy() != "operator ops (scope admin)" {
		t.Errorf("revocation %v", got)
	}
	if _, ok := f.etcd()["/sluice/revoked/h1"]; !ok {
		t.Errorf("no revocation in etcd: %v", f.etcd())
	}
	before := f.etcd()
	_, err = h1.Heartbeat(ctx, connect.NewRequest(&brainv1.HeartbeatRequest{NodeId: "node-h1", Name: "h1"}))
	f.refused("a revoked host's heartbeat (same connection)", err, connect.CodePermissionDenied, before, "h1", "revoked")
	_, err = f.agent("h1").Heartbeat(ctx, connect.NewRequest(&brainv1.HeartbeatRequest{NodeId: "node-h1", Name: "h1"}))
	f.refused("a revoked host's heartbeat (new connection)", err, connect.CodePermissionDenied, before, "revoked")
	if _, err := f.agent("h2").Register(ctx, register("h2")); err != nil {
		t.Errorf("h2 after h1's revocation: %v", err)
	}
	// The open stream ends at its next update, without sending it.
	level := 0.5
	if _, err := f.operator("admin").SetHostOverrides(ctx, connect.NewRequest(&brainv1.SetHostOverridesRequest{
		Name: "h1", Overrides: &brainv1.QoSOverrides{CpuWaterLevel: &level}})); err != nil {
		t.Fatal(err)
	}
	for stream.Receive() {
		t.Errorf("revoked h1 received target v%d", stream.Msg().GetVersion())
	}
	if connect.CodeOf(stream.Err()) != connect.CodePermissionDenied || !strings.Contains(stream.Err().Error(), "revoked") {
		t.Errorf("revoked host's stream ended with %v", stream.Err())
	}
	list, err := f.access("admin").ListRevocations(ctx, connect.NewRequest(&brainv1.ListRevocationsRequest{}))
	if err != nil || len(list.Msg.GetRevocations()) != 1 || list.Msg.GetRevocations()[0].GetHost() != "h1" {
		t.Errorf("revocations %v %v", list, err)
	}
	// A certificate issued after the cut-off (certificates count whole
	// seconds) speaks for h1 again, through the same client, which is
	// never told to reconnect: the brain closes a revoked certificate's
	// connection (GOAWAY), the client's next request dials again and
	// reads the certificate rotated on disk at the handshake.
	cutoff := time.UnixMilli(rv.Msg.GetRevocation().GetCutoffUnixMs())
	for !time.Now().Truncate(time.Second).After(cutoff) {
		time.Sleep(50 * time.Millisecond)
	}
	f.issue("h1", auth.Request{Kind: auth.KindHost, Name: "h1"})
	var hbErr error
	eventuallyOK := func() bool {
		_, hbErr = h1.Heartbeat(ctx, connect.NewRequest(&brainv1.HeartbeatRequest{NodeId: "node-h1", Name: "h1"}))
		return hbErr == nil
	}
	for deadline := time.Now().Add(30 * time.Second); !eventuallyOK(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("h1 with a certificate issued after its revocation: %v", hbErr)
		}
	}
}

// Every procedure the brain serves has a rule on purpose.
func TestEveryProcedureHasARule(t *testing.T) {
	for _, fd := range []protoreflect.FileDescriptor{brainv1.File_v1_agent_proto, brainv1.File_v1_operator_proto, brainv1.File_v1_access_proto, brainv1.File_v1_maintenance_proto} {
		for i := range fd.Services().Len() {
			s := fd.Services().Get(i)
			for j := range s.Methods().Len() {
				proc := fmt.Sprintf("/%s/%s", s.FullName(), s.Methods().Get(j).Name())
				if !server.HasAccessRule(proc) {
					t.Errorf("%s has no access rule (brain/server/access.go)", proc)
				}
			}
		}
	}
}

// The event stream is for operators: a host certificate is refused with
// the reason, a read-only operator gets the stream.
func TestEventStreamNeedsAnOperator(t *testing.T) {
	f := newTLSFleet(t)
	f.issue("node-1", auth.Request{Kind: auth.KindHost, Name: "node-1"})
	f.issue("reader", auth.Request{Kind: auth.KindOperator, Name: "alice", Scope: auth.ScopeRead})
	get := func(file string) (int, string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.brain.URL+"/v1/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := f.client(f.dir, file).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 512)
		n, _ := resp.Body.Read(buf)
		return resp.StatusCode, string(buf[:n])
	}
	if code, body := get("node-1"); code != http.StatusForbidden || !strings.Contains(body, "operator credential") {
		t.Errorf("host certificate on /v1/events: %d %q, want 403 naming the credential needed", code, body)
	}
	if code, _ := get("reader"); code != http.StatusOK {
		t.Errorf("read-only operator on /v1/events: %d, want 200", code)
	}
}
