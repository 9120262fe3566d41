package brainlink

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
	"github.com/sluicehq/sluice/brain/server/servertest"
)

// A brain's log request rides the target stream; the link answers it from
// its log reader and keeps the target it holds.
func TestLinkAnswersLogRequests(t *testing.T) {
	url := servertest.Start(t)
	asked := make(chan int64, 8)
	cfg := Config{
		BrainURL: url, StateDir: t.TempDir(), HostName: "edge-1",
		Registration: Registration{Capacity: map[string]int64{"cpu": 8000, "memory": 16 << 30}},
		Logs: func(id string, maxBytes int64) ([]byte, bool, error) {
			asked <- maxBytes
			if id != "api-0" {
				return nil, false, errors.New("no output kept here")
			}
			return []byte("hello from api-0\n"), true, nil
		},
	}
	link, _ := runLink(t, cfg)
	ctx := context.Background()
	op := brainv1connect.NewOperatorServiceClient(http.DefaultClient, url)
	file := "version: 1\napps:\n  - {name: api, cpu: 1, memory: 1Gi, image: b}\nrequests:\n  - {app: api, count: 2}\n"
	if _, err := op.SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: []byte(file)})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the target arrives", func() bool { return len(link.Effective().Containers) == 2 })
	held := link.Effective().Version

	r, err := op.Logs(ctx, connect.NewRequest(&brainv1.LogsRequest{Job: "api", MaxBytes: 1000}))
	if err != nil {
		t.Fatal(err)
	}
	logs := r.Msg.GetLogs()
	if len(logs) != 2 || string(logs[0].GetData()) != "hello from api-0\n" || !logs[0].GetTruncated() || logs[0].GetHost() != "edge-1" {
		t.Fatalf("api-0: %+v", logs)
	}
	if logs[1].GetError() != "no output kept here" {
		t.Fatalf("api-1: %+v, want the reader's error", logs[1])
	}
	if n := <-asked; n != 1000 {
		t.Errorf("reader asked for %d bytes, want 1000", n)
	}
	if v := link.Effective().Version; v != held || len(link.Effective().Containers) != 2 {
		t.Errorf("a log request moved the held target: version %d -> %d", held, v)
	}
}
