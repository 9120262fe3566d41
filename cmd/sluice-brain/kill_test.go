package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
	"github.com/sluicehq/sluice/brain/store"
)

// TestMain lets the test binary be the brain process (SLUICE_BRAIN_CHILD),
// so a test can kill it with SIGKILL.
func TestMain(m *testing.M) {
	if os.Getenv("SLUICE_BRAIN_CHILD") == "1" {
		o := options{listen: os.Getenv("SLUICE_BRAIN_LISTEN"), dataDir: os.Getenv("SLUICE_BRAIN_DIR"), etcdPrefix: "/sluice/",
			etcdEndpoints: os.Getenv("SLUICE_BRAIN_ETCD"), maxTxnOps: store.DefaultMaxTxnOps,
			tls: tlsOptions{insecureLoopback: true}}
		if n, err := strconv.Atoi(os.Getenv("SLUICE_BRAIN_MAX_OPS")); err == nil {
			o.maxTxnOps = n
		}
		o.name, o.initialCluster = os.Getenv("SLUICE_BRAIN_NAME"), os.Getenv("SLUICE_BRAIN_INITIAL_CLUSTER")
		o.peerURL, o.etcdClientURL = os.Getenv("SLUICE_BRAIN_PEER_URL"), os.Getenv("SLUICE_BRAIN_ETCD_CLIENT_URL")
		log := slog.New(slog.DiscardHandler)
		if path := os.Getenv("SLUICE_BRAIN_LOG"); path != "" {
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			log = slog.New(slog.NewTextHandler(f, nil))
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		if err := run(ctx, o, log, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func startChild(t *testing.T, dir, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SLUICE_BRAIN_CHILD=1", "SLUICE_BRAIN_DIR="+dir, "SLUICE_BRAIN_LISTEN="+addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("brain not healthy after 2 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// registerHosts registers hosts h0.. (nodes n0..) of 64 CPUs, 256 GiB.
func registerHosts(t *testing.T, url string, n int) {
	t.Helper()
	agent := brainv1connect.NewAgentServiceClient(http.DefaultClient, url)
	for i := range n {
		_, err := agent.Register(context.Background(), connect.NewRequest(&brainv1.RegisterRequest{NodeId: fmt.Sprintf("n%d", i), Name: fmt.Sprintf("h%d", i),
			Capacity: &brainv1.Resources{Amounts: map[string]int64{"cpu": 64000, "memory": 256 << 30}}}))
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Kill -9 the brain during a stream of submissions and restart it on the
// same data dir: every acknowledged job is there, every job present has
// each replica placed once, and no host is marked down.
func TestKill9MidStreamLosesNothing(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	child := startChild(t, dir, addr)
	url := "http://" + addr
	ctx := context.Background()
	registerHosts(t, url, 3)
	op := brainv1connect.NewOperatorServiceClient(http.DefaultClient, url)
	var mu sync.Mutex
	acked := map[string]bool{}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				file := fmt.Sprintf("version: 1\napps:\n  - {name: j%d, cpu: 100m, memory: 64Mi, image: busybox}\nrequests:\n  - {app: j%d, count: 2}\n", i, i)
				if _, err := op.SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: []byte(file)})); err == nil {
					mu.Lock()
					acked[fmt.Sprintf("j%d", i)] = true
					mu.Unlock()
				}
			}
		}()
	}
	killed := false
	for i := range 400 {
		jobs <- i
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 40 && !killed {
			child.Process.Signal(syscall.SIGKILL)
			child.Wait()
			killed = true
		}
	}
	close(jobs)
	wg.Wait()
	if !killed {
		t.Fatal("never killed the brain")
	}

	startChild(t, dir, addr)
	list, err := op.ListJobs(ctx, connect.NewRequest(&brainv1.ListJobsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	replicas := 0
	for _, j := range list.Msg.GetJobs() {
		present[j.GetName()] = true
		for _, r := range j.GetReplicas() {
			if r.GetHost() == "" {
				t.Errorf("job %s: replica %s lost its placement", j.GetName(), r.GetId())
			}
			replicas++
		}
	}
	for name := range acked {
		if !present[name] {
			t.Errorf("acknowledged job %s lost in the kill", name)
		}
	}
	hosts, err := op.ListHosts(ctx, connect.NewRequest(&brainv1.ListHostsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	inTargets := 0
	for _, h := range hosts.Msg.GetHosts() {
		if h.GetState() != "up" {
			t.Errorf("host %s is %s after the restart", h.GetName(), h.GetState())
		}
		inTargets += int(h.GetContainers())
	}
	if inTargets != replicas {
		t.Fatalf("targets hold %d containers, jobs have %d replicas: lost or duplicated", inTargets, replicas)
	}
	t.Logf("%d jobs acknowledged before the kill, %d present after, %d replicas", len(acked), len(present), replicas)
}
