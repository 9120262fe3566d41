package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
	"github.com/sluicehq/sluice/brain/server/servertest"
)

// startBrain runs a real brain on an embedded etcd with two registered
// hosts lending half their size, and returns its URL.
func startBrain(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	url := servertest.Start(t)
	agent := brainv1connect.NewAgentServiceClient(http.DefaultClient, url)
	for _, name := range []string{"node-a", "node-b"} {
		_, err := agent.Register(ctx, connect.NewRequest(&brainv1.RegisterRequest{NodeId: "id-" + name, Name: name,
			Capacity: &brainv1.Resources{Amounts: map[string]int64{"cpu": 8000, "memory": 16 << 30}}}))
		if err != nil {
			t.Fatal(err)
		}
		_, err = agent.Heartbeat(ctx, connect.NewRequest(&brainv1.HeartbeatRequest{NodeId: "id-" + name, Name: name, LentCpuMilli: 4000, LentMemoryBytes: 8 << 30}))
		if err != nil {
			t.Fatal(err)
		}
	}
	return url
}

func ctl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestBrainCommands(t *testing.T) {
	url := startBrain(t)
	out, errOut, code := ctl(t, "--brain", url, "jobs", "submit", "../../brain/examples/jobs.yaml")
	if code != 0 {
		t.Fatalf("submit: %d %s", code, errOut)
	}
	if !strings.Contains(out, "web") || !strings.Contains(out, "2/2") || !strings.Contains(out, "crunch-nightly") {
		t.Fatalf("submit output:\n%s", out)
	}
	out, _, code = ctl(t, "--brain="+url, "jobs", "get", "web")
	if code != 0 || !strings.Contains(out, "web-0") || !strings.Contains(out, "node-") {
		t.Fatalf("jobs get (%d):\n%s", code, out)
	}
	// No agent reports its containers here: none is counted running.
	if !strings.Contains(out, "ROLLOUT") || !regexp.MustCompile(`(?m)^done +0/2 +0 +1`).MatchString(out) {
		t.Fatalf("jobs get shows no rollout state:\n%s", out)
	}
	out, _, code = ctl(t, "--brain", url, "hosts", "-o", "json")
	var hosts struct {
		Hosts []struct {
			Name       string `json:"name"`
			State      string `json:"state"`
			Containers int    `json:"containers"`
		} `json:"hosts"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &hosts) != nil || len(hosts.Hosts) != 2 || hosts.Hosts[0].State != "up" {
		t.Fatalf("hosts -o json (%d):\n%s", code, out)
	}
	if hosts.Hosts[0].Containers+hosts.Hosts[1].Containers != 5 {
		t.Fatalf("hosts hold %+v, want 5 containers in all", hosts.Hosts)
	}
	out, _, code = ctl(t, "--brain", url, "hosts")
	if code != 0 || !strings.HasPrefix(out, "HOST ") || !strings.Contains(out, "node-a  ") {
		t.Fatalf("hosts table (%d):\n%s", code, out)
	}
	out, _, code = ctl(t, "--brain", url, "explain", "web")
	if code != 0 || !strings.Contains(out, "web (replica web-0)") || !strings.Contains(out, "node-b") {
		t.Fatalf("explain (%d):\n%s", code, out)
	}
	if _, errOut, code = ctl(t, "--brain", url, "hosts", "drain", "node-a"); code != 0 {
		t.Fatalf("drain: %s", errOut)
	}
	out, _, _ = ctl(t, "--brain", url, "jobs", "get", "web")
	if strings.Contains(out, "node-a") {
		t.Fatalf("web still on the drained host:\n%s", out)
	}
	if _, errOut, code = ctl(t, "--brain", url, "hosts", "uncordon", "node-a"); code != 0 {
		t.Fatalf("uncordon: %s", errOut)
	}
	out, errOut, code = ctl(t, "--brain", url, "hosts", "override", "node-b", "cpu-water-level=0.6", "offline-cpu-cap=2000")
	if code != 0 || !strings.Contains(out, "cpu-water-level=0.6,offline-cpu-cap=2000") {
		t.Fatalf("override (%d): %s %s", code, out, errOut)
	}
	if _, errOut, code = ctl(t, "--brain", url, "hosts", "override", "node-b", "cpu-water-level=2"); code != 1 || !strings.Contains(errOut, "outside (0, 1]") {
		t.Fatalf("bad override (%d): %s", code, errOut)
	}
	if _, errOut, code = ctl(t, "--brain", url, "hosts", "override", "node-b", "colour=red"); code != 2 || !strings.Contains(errOut, "unknown key") {
		t.Fatalf("unknown override key (%d): %s", code, errOut)
	}
	if _, errOut, code = ctl(t, "--brain", url, "jobs", "delete", "web"); code != 0 {
		t.Fatalf("delete: %s", errOut)
	}
	out, _, _ = ctl(t, "--brain", url, "jobs", "list")
	if strings.Contains(out, "web ") || !strings.Contains(out, "crunch-nightly") {
		t.Fatalf("after delete:\n%s", out)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\napps:\n  - {name: a, cpu: 1, memory: 1Gi}\nrequests:\n  - {app: a, count: 1}\n"), 0o644)
	_, errOut, code = ctl(t, "--brain", url, "jobs", "submit", bad)
	if code != 1 || !strings.Contains(errOut, `bad.yaml:5: requests[0].app: app "a" has no image`) {
		t.Fatalf("bad file (%d): %s", code, errOut)
	}
	if _, errOut, code = ctl(t, "--brain", url, "jobs", "get"); code != 2 || !strings.Contains(errOut, "want one NAME") {
		t.Fatalf("missing name (%d): %s", code, errOut)
	}
	if _, errOut, code = ctl(t, "--brain", url, "hosts", "-o", "yaml"); code != 2 {
		t.Fatalf("-o yaml (%d): %s", code, errOut)
	}
	if _, errOut, code = ctl(t, "--brain", url, "jobs", "get", "nope"); code != 1 || !strings.Contains(errOut, `job "nope": unknown`) {
		t.Fatalf("unknown job (%d): %s", code, errOut)
	}
}

// With a list of brains the first one that answers serves (a dead one is
// skipped); brain status names the leader and its epoch; brain snapshot
// writes the store's snapshot.
func TestBrainListStatusAndSnapshot(t *testing.T) {
	b := servertest.StartHA(t)
	list := "http://127.0.0.1:1," + b.URL
	out, errOut, code := ctl(t, "--brain", list, "jobs", "submit", "../../brain/examples/jobs.yaml")
	if code != 0 || !strings.Contains(out, "web") {
		t.Fatalf("submit through a list with a dead brain first (%d): %s %s", code, out, errOut)
	}
	out, errOut, code = ctl(t, "--brain", list, "brain", "status")
	if code != 0 || !strings.Contains(out, "leader") || !strings.Contains(out, b.URL) || !strings.Contains(out, "alarms           none") {
		t.Fatalf("brain status (%d):\n%s%s", code, out, errOut)
	}
	out, _, code = ctl(t, "--brain", b.URL, "brain", "status", "-o", "json")
	var st struct {
		Leader string `json:"leader"`
		Epoch  string `json:"epoch"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Leader != b.URL || st.Epoch == "" {
		t.Fatalf("brain status -o json (%d): %s", code, out)
	}
	file := filepath.Join(t.TempDir(), "brain.snap")
	out, errOut, code = ctl(t, "--brain", list, "brain", "snapshot", file)
	if code != 0 || !strings.Contains(out, "saved "+file) {
		t.Fatalf("snapshot (%d): %s %s", code, out, errOut)
	}
	if fi, err := os.Stat(file); err != nil || fi.Size() < 4096 {
		t.Fatalf("snapshot file: %v %v", fi, err)
	}
	if _, errOut, code = ctl(t, "--brain", "127.0.0.1:9480", "jobs", "list"); code != 2 || !strings.Contains(errOut, "want http(s)://host:port") {
		t.Fatalf("URL without a scheme (%d): %s", code, errOut)
	}
	if _, errOut, code = ctl(t, "--brain", "http://127.0.0.1:1", "brain", "snapshot"); code != 2 {
		t.Fatalf("snapshot without FILE (%d): %s", code, errOut)
	}
	if _, errOut, code = ctl(t, "--brain", "http://127.0.0.1:1", "brain", "status"); code != 1 || !strings.Contains(errOut, "unavailable") {
		t.Fatalf("no brain reachable (%d): %s", code, errOut)
	}
}
