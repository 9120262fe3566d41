package server

import (
	"context"
	"net/http"
	"testing"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
)

// A revocation is kept in etcd: a restarted brain still refuses the
// host's old certificates.
func TestRevocationSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	tb := startBrain(t, dir, clk, testLiveness)
	access := brainv1connect.NewAccessServiceClient(http.DefaultClient, tb.url)
	ctx := context.Background()
	if _, err := access.RevokeHost(ctx, connect.NewRequest(&brainv1.RevokeHostRequest{Name: "Bad_Name"})); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("revoking an invalid name: %v", err)
	}
	r, err := access.RevokeHost(ctx, connect.NewRequest(&brainv1.RevokeHostRequest{Name: "h1"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Msg.GetRevocation(); got.GetBy() != "loopback" || got.GetCutoffUnixMs() != clk.Now().UnixMilli() {
		t.Errorf("revocation %v", got)
	}
	tb.stop()
	tb2 := startBrain(t, dir, clk, testLiveness)
	if got := tb2.brain.revoked.All(); !got["h1"].Equal(clk.Now()) || len(got) != 1 {
		t.Errorf("revocations after a restart: %v", got)
	}
	list, err := brainv1connect.NewAccessServiceClient(http.DefaultClient, tb2.url).ListRevocations(ctx, connect.NewRequest(&brainv1.ListRevocationsRequest{}))
	if err != nil || len(list.Msg.GetRevocations()) != 1 || list.Msg.GetRevocations()[0].GetBy() != "loopback" {
		t.Errorf("listed after a restart: %v %v", list, err)
	}
}
