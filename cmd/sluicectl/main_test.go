package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/agent/converge"
	"github.com/sluicehq/sluice/agent/target"
	"github.com/sluicehq/sluice/qos"
)

func runCtl(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestPolicyCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, qos.DefaultPolicyYAML, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\ncpu:\n  highWater: 130%\nmemory:\n  highWater: -5%\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	if code, out, errs := runCtl(t, "policy", "check", good); code != 0 || !strings.Contains(out, "good.yaml: ok") {
		t.Errorf("check good: code %d out %q err %q", code, out, errs)
	}
	code, _, errs := runCtl(t, "policy", "check", good, bad)
	if code != 1 {
		t.Errorf("check bad: exit %d, want 1", code)
	}
	// Every problem, each with its line, as the agent would log them.
	for _, want := range []string{"bad.yaml:3: cpu.highWater: 130% is above 100%", "bad.yaml:5: memory.highWater"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr %q lacks %q", errs, want)
		}
	}
	// Sections that parse but that nothing enforces would be named, per
	// file; every section is enforced today (cache partitioning, network
	// tiers), so no file gets a note.
	shaped := filepath.Join(dir, "shaped.yaml")
	quiet := filepath.Join(dir, "quiet.yaml")
	for name, body := range map[string]string{
		shaped: "version: 1\nnetwork: {devices: [eth0], goldRate: 1Mbit, silverRate: 1Mbit, headroom: 1Mbit}\n",
		quiet:  "version: 1\nrdt: {enabled: false}\n",
	} {
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs := runCtl(t, "policy", "check", good, shaped, quiet)
	if code != 0 {
		t.Errorf("check good, shaped, quiet: code %d err %q", code, errs)
	}
	for _, f := range []string{"good", "shaped", "quiet"} {
		if strings.Contains(out, f+".yaml: not enforced") || !strings.Contains(out, f+".yaml: ok") {
			t.Errorf("stdout %q: %s.yaml asks for nothing unenforced and should only be ok", out, f)
		}
	}
	if code, _, errs := runCtl(t, "policy", "check", filepath.Join(dir, "missing.yaml")); code != 1 || !strings.Contains(errs, "missing.yaml") {
		t.Errorf("check missing file: code %d err %q", code, errs)
	}
	if code, out, _ := runCtl(t, "policy", "default"); code != 0 || out != string(qos.DefaultPolicyYAML) {
		t.Errorf("policy default: code %d", code)
	}
	if code, _, _ := runCtl(t, "nonsense"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}

func TestStatusTable(t *testing.T) {
	snap := agent.Snapshot{
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Brain: &target.Status{
			NodeID: "n-1", Registered: true, Stale: true, TargetVersion: 7, AppliedVersion: 6,
			Containers: []converge.ContainerState{{ID: "web-0", Job: "web", Class: qos.ClassOnline, Phase: converge.PhaseRunning, Restarts: 2}},
		},
		Host: qos.HostSample{CPUCapacityMilli: 8000, CPUUsedMilli: 4500, MemTotalBytes: 16 << 30, MemAvailableBytes: 6 << 30},
		Classes: map[qos.Class]qos.ClassUsage{
			qos.ClassOnline:  {CPUUsedMilli: 3000, MemoryUsageBytes: 4 << 30, Count: 1},
			qos.ClassOffline: {CPUUsedMilli: 1000, MemoryUsageBytes: 2 << 30, Count: 2},
		},
		Workloads: []qos.WorkloadSample{
			{ID: "web", Name: "web", Class: qos.ClassOnline, Priority: 9, CgroupPath: "/online/web", CPUUsedMilli: 3000},
			{ID: "batch", Name: "batch", Class: qos.ClassOffline, Priority: 1, CgroupPath: "/sluice/offline/batch", CPUUsedMilli: 1000},
		},
		Intents: []qos.IntentSummary{
			{Kind: qos.IntentOfflineCPU, Target: "/sluice/offline", Value: "1100m", Reason: "offline cpu budget 1100m: 8000m x 70% - online 3000m - system 500m"},
			{Kind: qos.IntentCacheGroup, Target: "sluice-offline", Value: "L3:0=3; MB:0=10", Reason: "offline (sluice-offline): online harmed"},
			{Kind: qos.IntentKill, Target: "batch", Value: "SIGKILL", Reason: "offline memory above its limit for 5s"},
			{Kind: qos.IntentNetwork, Target: "eth0", Value: "bronze ceil 600Mbit", Reason: "eth0 egress: bronze ceil cut 900Mbit -> 600Mbit"},
			{Kind: qos.IntentNetworkTier, Target: "/sluice/offline", Value: "bronze", Reason: "offline parent /sluice/offline: its traffic is bronze"},
		},
		Results: []qos.IntentResult{{Intent: qos.IntentOfflineMemory, Target: "/sluice/offline", Status: qos.ResultFailed, Err: "write memory.limit_in_bytes: device or resource busy"}},
		Policy:  agent.PolicyInfo{Source: "/etc/sluice/policy.yaml", LastError: "policy.yaml:3: cpu.highWater: 130% is above 100%", NotEnforced: []string{"future"}},
		Cache:   agent.CacheStatus{Error: "resctrl: kernel has no resctrl file system: not supported"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/state" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(snap)
	}))
	t.Cleanup(srv.Close)

	code, out, errs := runCtl(t, "status", "-addr", strings.TrimPrefix(srv.URL, "http://"))
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"enforcing", "4.50 / 8.00 cores", "REJECTED", "130% is above 100%", "not enforced yet: future\n",
		"online   1", "offline  2", "3.00", // class table
		"offline-cpu", "1100m", "kill", "batch", // pending actions with reasons
		"rdt-group", "L3:0=3; MB:0=10", "cache isolation off: resctrl: kernel has no resctrl file system: not supported",
		"network", "eth0", "bronze ceil 600Mbit", "network-tier", "its traffic is bronze",
		"/sluice/offline/batch", "FAILED LAST ITERATION", "device or resource busy",
		"brain: STALE", "v7 held, v6 applied", "web-0", "running", // the brain's connection and containers
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}

	if code, _, errs := runCtl(t, "status", "-addr", "127.0.0.1:1"); code != 1 || !strings.Contains(errs, "reach agent") {
		t.Errorf("unreachable agent: code %d err %q", code, errs)
	}
}

// A file that never ends (a device) is refused at the limit, not read
// forever.
func TestPolicyCheckEndlessFile(t *testing.T) {
	code, _, errs := runCtl(t, "policy", "check", "/dev/urandom")
	if code != 1 || !strings.Contains(errs, "/dev/urandom: larger than 1048576 bytes, the policy file limit") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}
