package server

import (
	"context"
	"fmt"
	"testing"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
)

func TestLogsAreFetchedFromTheAgentsOverTheirStreams(t *testing.T) {
	tb := startBrain(t, t.TempDir(), newClock(), testLiveness)
	agents := fleet(t, tb, 2)
	submit(t, tb, []byte(fmt.Sprintf(rollJob, "busybox:1", 3)))
	agentsAgree(t, tb, agents)
	placed, _ := stored(t, tb)
	op := tb.operator()
	ctx := context.Background()

	r, err := op.Logs(ctx, connect.NewRequest(&brainv1.LogsRequest{Job: "api"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Msg.GetLogs()) != 3 {
		t.Fatalf("logs of %d replicas, want 3", len(r.Msg.GetLogs()))
	}
	for _, l := range r.Msg.GetLogs() {
		want := fmt.Sprintf("output of %s on %s\n", l.GetReplica(), placed[l.GetReplica()])
		if string(l.GetData()) != want || l.GetHost() != placed[l.GetReplica()] || l.GetError() != "" {
			t.Errorf("replica %s: %+v, want %q from its host", l.GetReplica(), l, want)
		}
	}
	one, err := op.Logs(ctx, connect.NewRequest(&brainv1.LogsRequest{Job: "api", Replica: "api-1"}))
	if err != nil || len(one.Msg.GetLogs()) != 1 || one.Msg.GetLogs()[0].GetReplica() != "api-1" {
		t.Fatalf("one replica: %v %v", one, err)
	}
	// The log requests did not move any target version.
	agentsAgree(t, tb, agents)

	for _, bad := range []*brainv1.LogsRequest{
		{Job: "nope"}, {Job: "api", Replica: "api-7"}, {Job: "api", MaxBytes: 2 << 20}, {Job: "api", MaxBytes: -1},
	} {
		if _, err := op.Logs(ctx, connect.NewRequest(bad)); err == nil {
			t.Errorf("Logs(%+v) accepted", bad)
		}
	}
	// An answer nobody waits for, or from another host, is refused.
	a := agents[0]
	_, err = a.client.PutLogs(ctx, connect.NewRequest(&brainv1.PutLogsRequest{NodeId: a.nodeID, Name: a.name, RequestId: "999", Data: []byte("x")}))
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("unsolicited logs: %v", err)
	}
}
