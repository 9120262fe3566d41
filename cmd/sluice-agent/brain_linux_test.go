package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/agent/converge"
	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
	"github.com/sluicehq/sluice/brain/server/servertest"
	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/test/containerdtest"
	"github.com/sluicehq/sluice/test/kerneltest"
)

// sluice-agent -dry-run -brain registers its host with its name, labels,
// failure domain and capacity, acknowledges its target, and shows in /state
// what it would launch, while containerd gets no container at all.
func TestDryRunBrainAgentLaunchesNothing(t *testing.T) {
	kerneltest.RequireContainerd(t)
	bin := buildAgent(t)
	inst := containerdtest.Start(t)
	url := servertest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ns := kerneltest.UniqueName("sluice-dry")
	inst.ImportBusybox(t, ctx, ns)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "-dry-run", "-no-ebpf", "-listen", addr, "-containerd", inst.Address,
		"-containerd-namespace", ns, "-brain", url, "-host-name", "dry-1", "-state-dir", t.TempDir(),
		"-host-labels", "zone=a", "-failure-domain", "r1", "-log-level", "warn")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })

	op := brainv1connect.NewOperatorServiceClient(http.DefaultClient, url)
	host := func() *brainv1.Host {
		r, err := op.ListHosts(ctx, connect.NewRequest(&brainv1.ListHostsRequest{}))
		if err != nil {
			return nil
		}
		for _, h := range r.Msg.GetHosts() {
			if h.GetName() == "dry-1" {
				return h
			}
		}
		return nil
	}
	waitFor(t, "the agent registered", func() (bool, string) {
		h := host()
		return h != nil && h.GetState() == "up", fmt.Sprint(h)
	})
	h := host()
	if h.GetLabels()["zone"] != "a" || h.GetCapacity().GetAmounts()["cpu"] <= 0 || h.GetCapacity().GetAmounts()["memory"] <= 0 {
		t.Errorf("registered host %v: want label zone=a and the host's cpu and memory", h)
	}

	job := `version: 1
apps:
  - {name: nap, class: offline, cpu: 10m, memory: 8Mi, image: ` + containerdtest.BusyboxImageName + `, command: [sleep, "3600"], restart: always}
requests:
  - {name: dry-nap, app: nap, count: 2, priority: 1}
`
	// Offline work is placed against what the host lends: wait for a
	// heartbeat that carries the lent budget first.
	waitFor(t, "a heartbeat with the lent budget", func() (bool, string) {
		h := host()
		return h.GetLent().GetAmounts()["cpu"] > 0, fmt.Sprint(h)
	})
	if _, err := op.SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: []byte(job), FileName: "dry.yaml"})); err != nil {
		t.Fatal(err)
	}
	var snap agent.Snapshot
	waitFor(t, "the dry-run plan in /state, acknowledged", func() (bool, string) {
		resp, err := http.Get("http://" + addr + "/state")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		snap = agent.Snapshot{}
		if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil || snap.Brain == nil {
			return false, fmt.Sprint(err)
		}
		b := snap.Brain
		dry := 0
		for _, r := range b.Results {
			if r.Intent == converge.IntentLaunch && r.Status == qos.ResultDryRun {
				dry++
			}
		}
		return b.TargetVersion > 0 && b.AppliedVersion == b.TargetVersion && len(b.Containers) == 2 && dry == 2 && b.DryRun,
			fmt.Sprintf("%+v", *b)
	})
	for _, c := range snap.Brain.Containers {
		if c.Phase != converge.PhaseAbsent || c.Job != "dry-nap" {
			t.Errorf("dry-run container %+v: want absent, of dry-nap", c)
		}
	}
	cs, err := inst.Client.ContainerService().List(namespaces.WithNamespace(ctx, ns))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Errorf("dry-run agent left %d containers in %s", len(cs), ns)
	}
	if h := host(); h.GetAppliedVersion() != snap.Brain.TargetVersion {
		t.Errorf("brain shows applied v%d, the agent acknowledged v%d", h.GetAppliedVersion(), snap.Brain.TargetVersion)
	}
}

func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 60s: %s", what, detail)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
