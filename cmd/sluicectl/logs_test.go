package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/sluicehq/sluice/agent/brainlink"
	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
	"github.com/sluicehq/sluice/brain/server/servertest"
)

func TestLogsCommand(t *testing.T) {
	url := servertest.Start(t)
	link, err := brainlink.New(brainlink.Config{
		BrainURL: url, StateDir: t.TempDir(), HostName: "edge-1",
		Registration: brainlink.Registration{Capacity: map[string]int64{"cpu": 8000, "memory": 16 << 30}},
		Logs: func(id string, _ int64) ([]byte, bool, error) {
			return []byte(fmt.Sprintf("%s says\thello\n", id)), false, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- link.Run(ctx, func() brainlink.Report { return brainlink.Report{} }) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(60 * time.Second)
	for !link.Status().Registered && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	op := brainv1connect.NewOperatorServiceClient(http.DefaultClient, url)
	file := "version: 1\napps:\n  - {name: api, cpu: 1, memory: 1Gi, image: b}\nrequests:\n  - {app: api, count: 2}\n"
	if _, err := op.SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: []byte(file)})); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := ctl(t, "--brain", url, "logs", "api", "1")
	if code != 0 || out != "api-1 says\thello\n" {
		t.Fatalf("logs api 1 (%d): %q %s", code, out, errOut)
	}
	out, _, code = ctl(t, "--brain", url, "logs", "api")
	want := "==> api-0 on edge-1 <==\napi-0 says\thello\n==> api-1 on edge-1 <==\napi-1 says\thello\n"
	if code != 0 || out != want {
		t.Fatalf("logs api (%d):\n%s\nwant:\n%s", code, out, want)
	}
	if _, errOut, code := ctl(t, "--brain", url, "logs", "api", "api-9"); code != 1 || !strings.Contains(errOut, "not a replica of job api") {
		t.Fatalf("unknown replica (%d): %s", code, errOut)
	}
	if _, _, code := ctl(t, "--brain", url, "logs"); code != 2 {
		t.Fatalf("no job named: exit %d, want 2 (usage)", code)
	}
}
