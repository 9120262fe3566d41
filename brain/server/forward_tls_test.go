package server

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
	"github.com/sluicehq/sluice/brain/store"
)

// Two TLS brains: a follower forwards with its own brain certificate and
// the leader still authorises the caller the follower verified — a host
// certificate speaking for another host is refused through the follower
// as it is at the leader, and a read-only operator cannot submit.
func TestFollowerForwardsTheCallerNotItself(t *testing.T) {
	dir := t.TempDir()
	ca, err := auth.InitDir(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.IssueFiles(dir, time.Now(), map[string]auth.Request{
		"b1":     {Kind: auth.KindBrain, Name: "b1"},
		"b2":     {Kind: auth.KindBrain, Name: "b2"},
		"node-1": {Kind: auth.KindHost, Name: "node-1"},
		"reader": {Kind: auth.KindOperator, Name: "alice", Scope: auth.ScopeRead},
	}); err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, auth.CACertFile)
	e := startEtcd(t)
	cli, err := store.Dial([]string{e.ClientURL})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	start := func(name string) *haNode {
		srv, err := auth.ServerConfig(auth.ServerFiles{Cert: auth.CertFile(dir, name), Key: auth.KeyFile(dir, name), ClientCA: caFile}, nil)
		if err != nil {
			t.Fatal(err)
		}
		fwd, err := auth.ClientConfig(auth.ClientFiles{Cert: auth.CertFile(dir, name), Key: auth.KeyFile(dir, name), CA: caFile}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return startHAOn(t, cli, srv, fwd)
	}
	leader := start("b1")
	waitLeading(t, leader)
	follower := start("b2")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if url, _ := follower.ha.Leader(); url == leader.url {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the follower never learnt the leader")
		}
	}
	client := func(file string) *httpClientFor {
		hc, err := auth.HTTPClient(follower.url, auth.ClientFiles{Cert: auth.CertFile(dir, file), Key: auth.KeyFile(dir, file), CA: caFile}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return &httpClientFor{agent: brainv1connect.NewAgentServiceClient(hc, follower.url), op: brainv1connect.NewOperatorServiceClient(hc, follower.url)}
	}
	ctx := context.Background()
	reg := func(name string) *connect.Request[brainv1.RegisterRequest] {
		return connect.NewRequest(&brainv1.RegisterRequest{NodeId: "id-" + name, Name: name,
			Capacity: &brainv1.Resources{Amounts: map[string]int64{"cpu": 8000, "memory": 16 << 30}}})
	}
	node := client("node-1")
	if _, err := node.agent.Register(ctx, reg("node-2")); connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "may not speak for host") {
		t.Errorf("host node-1 registering node-2 through the follower: %v, want permission denied", err)
	}
	if _, err := node.agent.Register(ctx, reg("node-1")); err != nil {
		t.Errorf("host node-1 registering itself through the follower: %v", err)
	}
	reader := client("reader")
	_, err = reader.op.SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: testJob("api"), FileName: "j.yaml"}))
	if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "needs scope submit") {
		t.Errorf("read-only operator submitting through the follower: %v, want permission denied naming scope submit", err)
	}
	if _, err := reader.op.ListHosts(ctx, connect.NewRequest(&brainv1.ListHostsRequest{})); err != nil {
		t.Errorf("read-only operator listing through the follower: %v", err)
	}
}

type httpClientFor struct {
	agent brainv1connect.AgentServiceClient
	op    brainv1connect.OperatorServiceClient
}
