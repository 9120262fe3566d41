package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
)

// A snapshot taken through the API and restored into a new data dir
// gives a brain that resumes with every placement, target version and
// host, at a higher epoch than the lost store's (the revision bump).
func TestSnapshotRestoreResumesEveryPlacement(t *testing.T) {
	ctx := context.Background()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	child := startChild(t, t.TempDir(), addr)
	url := "http://" + addr
	registerHosts(t, url, 3)
	op := brainv1connect.NewOperatorServiceClient(http.DefaultClient, url)
	for i := range 10 {
		if _, err := op.SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: jobFile(fmt.Sprintf("j%d", i))})); err != nil {
			t.Fatal(err)
		}
	}
	jobsBefore := listing(t, op)
	hostsBefore, err := op.ListHosts(ctx, connect.NewRequest(&brainv1.ListHostsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	mc := brainv1connect.NewMaintenanceServiceClient(http.DefaultClient, url)
	st, err := mc.StoreStatus(ctx, connect.NewRequest(&brainv1.StoreStatusRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := mc.Snapshot(ctx, connect.NewRequest(&brainv1.SnapshotRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	for stream.Receive() {
		snap.Write(stream.Msg().GetData())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "brain.snap")
	if err := os.WriteFile(file, snap.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	child.Process.Kill()
	child.Wait()

	restored := t.TempDir()
	var out, errOut bytes.Buffer
	if code := runRestore([]string{"--snapshot", file, "--data-dir", restored}, &out, &errOut); code != 0 {
		t.Fatalf("restore: %d %s", code, errOut.String())
	}
	// A second restore into the same place is refused: it never
	// overwrites a store.
	errOut.Reset()
	if code := runRestore([]string{"--snapshot", file, "--data-dir", restored}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "never overwrites") {
		t.Fatalf("restore over a store: %d %s", code, errOut.String())
	}
	startChild(t, restored, addr)
	jobsAfter := listing(t, op)
	if jobsAfter != jobsBefore {
		t.Fatalf("placements after the restore differ:\nbefore:\n%s\nafter:\n%s", jobsBefore, jobsAfter)
	}
	hostsAfter, err := op.ListHosts(ctx, connect.NewRequest(&brainv1.ListHostsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range hostsAfter.Msg.GetHosts() {
		b := hostsBefore.Msg.GetHosts()[i]
		if h.GetName() != b.GetName() || h.GetTargetVersion() != b.GetTargetVersion() || h.GetContainers() != b.GetContainers() || h.GetState() != "up" {
			t.Errorf("host after restore %s v%d %d containers %s; before %s v%d %d", h.GetName(), h.GetTargetVersion(), h.GetContainers(), h.GetState(), b.GetName(), b.GetTargetVersion(), b.GetContainers())
		}
	}
	st2, err := mc.StoreStatus(ctx, connect.NewRequest(&brainv1.StoreStatusRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if st2.Msg.GetEpoch() <= st.Msg.GetEpoch() {
		t.Fatalf("epoch after restore %d, before %d: agents would refuse the restored brain", st2.Msg.GetEpoch(), st.Msg.GetEpoch())
	}
}

// listing renders every job's replicas and hosts.
func listing(t *testing.T, op brainv1connect.OperatorServiceClient) string {
	t.Helper()
	r, err := op.ListJobs(context.Background(), connect.NewRequest(&brainv1.ListJobsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, j := range r.Msg.GetJobs() {
		for _, rep := range j.GetReplicas() {
			if rep.GetHost() == "" {
				t.Fatalf("replica %s not placed", rep.GetId())
			}
			fmt.Fprintf(&b, "%s %s\n", rep.GetId(), rep.GetHost())
		}
	}
	return b.String()
}
