package brainlink

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
	"github.com/sluicehq/sluice/brain/auth"
	"github.com/sluicehq/sluice/brain/server"
	"github.com/sluicehq/sluice/brain/server/servertest"
)

// Over mutual TLS a link registers and follows its target with its host
// certificate; a link claiming another host's name is refused and never
// registers.
func TestLinkOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := auth.InitDir(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.IssueFiles(dir, time.Now(), map[string]auth.Request{
		"brain":  {Kind: auth.KindBrain, Name: "brain"},
		"edge-1": {Kind: auth.KindHost, Name: "edge-1"},
		"admin":  {Kind: auth.KindOperator, Name: "ops", Scope: auth.ScopeAdmin},
	}); err != nil {
		t.Fatal(err)
	}
	b := servertest.StartTLS(t, server.Liveness{}, auth.ServerFiles{
		Cert: auth.CertFile(dir, "brain"), Key: auth.KeyFile(dir, "brain"), ClientCA: filepath.Join(dir, auth.CACertFile)})
	client := func(file string) brainv1connect.OperatorServiceClient {
		hc, err := auth.HTTPClient(b.URL, auth.ClientFiles{Cert: auth.CertFile(dir, file), Key: auth.KeyFile(dir, file), CA: filepath.Join(dir, auth.CACertFile)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return brainv1connect.NewOperatorServiceClient(hc, b.URL)
	}
	start := func(name string) *Link {
		hc, err := auth.HTTPClient(b.URL, auth.ClientFiles{Cert: auth.CertFile(dir, "edge-1"), Key: auth.KeyFile(dir, "edge-1"), CA: filepath.Join(dir, auth.CACertFile)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		link, err := New(Config{
			BrainURL: b.URL, StateDir: t.TempDir(), HostName: name, HTTPClient: hc,
			Registration: Registration{Capacity: map[string]int64{"cpu": 8000, "memory": 16 << 30}},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); link.Run(ctx, func() Report { return Report{} }) }()
		t.Cleanup(func() { cancel(); <-done })
		return link
	}
	impostor := start("edge-2")
	waitFor(t, "the impostor refused", func() bool { return strings.Contains(impostor.Status().LastError, `may not speak for host "edge-2"`) })
	if impostor.Status().Registered {
		t.Fatal("a link with edge-1's certificate registered as edge-2")
	}
	link := start("edge-1")
	waitFor(t, "registered", func() bool { return link.Status().Registered })
	ctx := context.Background()
	if _, err := client("admin").SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{
		File: []byte("version: 1\napps:\n  - {name: api, cpu: 1, memory: 1Gi, image: busybox}\nrequests:\n  - {app: api, count: 1}\n")})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the target arrives over TLS", func() bool { return len(link.Effective().Containers) == 1 })
	hosts, err := client("admin").ListHosts(ctx, connect.NewRequest(&brainv1.ListHostsRequest{}))
	if err != nil || len(hosts.Msg.GetHosts()) != 1 || hosts.Msg.GetHosts()[0].GetName() != "edge-1" {
		t.Fatalf("hosts %v %v", hosts, err)
	}
}
