package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
	"github.com/sluicehq/sluice/brain/auth"
	"github.com/sluicehq/sluice/brain/server"
	"github.com/sluicehq/sluice/brain/server/servertest"
)

// The certificate steps of the README against a real TLS brain: init,
// issue a host and a read-only operator, scoped refusals, revocation.
func TestCertsAgainstATLSBrain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	if out, errOut, code := ctl(t, "certs", "init", dir, "-san", "brain.example,10.0.0.9"); code != 0 || !strings.Contains(out, "brain.crt") {
		t.Fatalf("init: %d %s %s", code, out, errOut)
	}
	if _, errOut, code := ctl(t, "certs", "init", dir); code != 1 || !strings.Contains(errOut, "keeps its CA") {
		t.Fatalf("second init: %d %s", code, errOut)
	}
	if out, errOut, code := ctl(t, "certs", "issue", "-dir", dir, "h1"); code != 0 || !strings.Contains(out, "host h1") {
		t.Fatalf("issue h1: %d %s %s", code, out, errOut)
	}
	if out, errOut, code := ctl(t, "certs", "issue", "-dir", dir, "-scope", "read", "reader"); code != 0 || !strings.Contains(out, "operator reader (scope read)") {
		t.Fatalf("issue reader: %d %s %s", code, out, errOut)
	}
	if _, errOut, code := ctl(t, "certs", "issue", "-dir", dir, "-scope", "root", "x"); code != 2 || !strings.Contains(errOut, "read, submit or admin") {
		t.Fatalf("bad scope: %d %s", code, errOut)
	}
	if _, errOut, code := ctl(t, "certs", "issue", "h2"); code != 2 || !strings.Contains(errOut, "SLUICE_CERTS") {
		t.Fatalf("issue without a directory: %d %s", code, errOut)
	}
	b := servertest.StartTLS(t, server.Liveness{}, auth.ServerFiles{
		Cert: auth.CertFile(dir, "brain"), Key: auth.KeyFile(dir, "brain"), ClientCA: filepath.Join(dir, auth.CACertFile)})
	hc, err := auth.HTTPClient(b.URL, auth.ClientFiles{Cert: auth.CertFile(dir, "h1"), Key: auth.KeyFile(dir, "h1"), CA: filepath.Join(dir, auth.CACertFile)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h1 := brainv1connect.NewAgentServiceClient(hc, b.URL)
	ctx := context.Background()
	if _, err := h1.Register(ctx, connect.NewRequest(&brainv1.RegisterRequest{NodeId: "n1", Name: "h1",
		Capacity: &brainv1.Resources{Amounts: map[string]int64{"cpu": 8000, "memory": 16 << 30}}})); err != nil {
		t.Fatal(err)
	}

	if _, errOut, code := ctl(t, "--brain", b.URL, "hosts"); code != 2 || !strings.Contains(errOut, "certificate") {
		t.Fatalf("https without a credential: %d %s", code, errOut)
	}
	t.Setenv(envCertDir, dir)
	if out, errOut, code := ctl(t, "--brain", b.URL, "hosts"); code != 0 || !strings.Contains(out, "h1") {
		t.Fatalf("hosts as admin: %d %s %s", code, out, errOut)
	}
	t.Setenv(envIdentity, "reader")
	if out, _, code := ctl(t, "--brain", b.URL, "certs", "whoami"); code != 0 || !strings.Contains(out, "operator  reader  read") {
		t.Fatalf("whoami: %d %s", code, out)
	}
	_, errOut, code := ctl(t, "--brain", b.URL, "jobs", "submit", "../../brain/examples/jobs.yaml")
	if code != 1 || !strings.Contains(errOut, "permission_denied") || !strings.Contains(errOut, "needs scope submit") {
		t.Fatalf("a read-only credential submitting: %d %s", code, errOut)
	}
	if _, errOut, code := ctl(t, "--brain", b.URL, "certs", "revoke", "h1"); code != 1 || !strings.Contains(errOut, "needs scope admin") {
		t.Fatalf("a read-only credential revoking: %d %s", code, errOut)
	}
	t.Setenv(envIdentity, "")
	if out, errOut, code := ctl(t, "--brain", b.URL, "certs", "revoke", "h1"); code != 0 || !strings.Contains(out, "operator admin (scope admin)") {
		t.Fatalf("revoke as admin: %d %s %s", code, out, errOut)
	}
	if out, _, code := ctl(t, "--brain", b.URL, "certs", "revoked"); code != 0 || !strings.Contains(out, "h1") {
		t.Fatalf("revoked: %d %s", code, out)
	}
	_, err = h1.Heartbeat(ctx, connect.NewRequest(&brainv1.HeartbeatRequest{NodeId: "n1", Name: "h1"}))
	if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked host's heartbeat: %v", err)
	}
}

func TestClientFilesFromTheEnvironment(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	if f, err := clientFiles(env()); err != nil || !f.Empty() {
		t.Errorf("nothing set: %+v %v", f, err)
	}
	f, err := clientFiles(env(envCertDir, "/c", envIdentity, "ro"))
	if err != nil || f.Cert != "/c/ro.crt" || f.Key != "/c/ro.key" || f.CA != "/c/ca.crt" {
		t.Errorf("directory: %+v %v", f, err)
	}
	if _, err := clientFiles(env(envCert, "a.crt")); err == nil {
		t.Error("a certificate without key and CA accepted")
	}
	if _, err := clientFiles(env(envCertDir, "/c", envCA, "ca.crt")); err == nil {
		t.Error("a directory and single files accepted together")
	}
	if _, _, err := brainHTTPClient("http://10.0.0.1:9480", env()); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("plain text beyond loopback: %v", err)
	}
	if _, _, err := brainHTTPClient("http://127.0.0.1:9480,http://10.0.0.1:9480", env()); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("plain text beyond loopback, second in the list: %v", err)
	}
}
