package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/sluicehq/sluice/netqos"
	"github.com/sluicehq/sluice/netqos/internal/nstest"
	"github.com/sluicehq/sluice/netqos/tc"
	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
	"github.com/sluicehq/sluice/test/kerneltest"
)

// eventually polls cond until it holds or the deadline passes; the
// deadline is a bound on a hung agent, not the measurement: what is
// asserted is what the kernel reports.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened; last: %s", what, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAgentShapesTheDevicesItsPolicyNames runs sluice-agent itself in a
// host namespace with a policy naming its uplink (a veth): the agent
// installs the HTB tree, classifies the offline parent's sockets as
// bronze and an online rule workload's as silver (both senders in a
// container's namespace, through its veth), and cuts bronze's ceiling
// when silver floods; a reload that names no device removes Sluice's
// tree and leaves the foreign qdiscs alone.
func TestAgentShapesTheDevicesItsPolicyNames(t *testing.T) {
	kerneltest.RequireCgroupV2(t)
	kerneltest.RequireBinary(t, kerneltest.FeatureRoot, "nsenter")
	layout, err := cgroupfs.Detect("/sys/fs/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	v2 := layout.Unified()
	tp := nstest.NewTopo(t)
	h := tp.Host.Handle
	// Foreign qdiscs: an ingress qdisc on the uplink, an HTB root on the
	// container's veth. Sluice must leave both alone.
	up0, err := h.LinkByName("up0")
	if err != nil {
		t.Fatal(err)
	}
	hveth, err := h.LinkByName("hveth0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.QdiscAdd(&netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: up0.Attrs().Index, Parent: netlink.HANDLE_INGRESS, Handle: netlink.MakeHandle(0xffff, 0)}}); err != nil {
		t.Fatalf("foreign ingress qdisc: %v", err)
	}
	if err := h.QdiscAdd(netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: hveth.Attrs().Index, Parent: netlink.HANDLE_ROOT, Handle: netlink.MakeHandle(1, 0)})); err != nil {
		t.Fatalf("foreign htb root: %v", err)
	}

	rel := "/" + kerneltest.UniqueName("sluice-netagent")
	var roots []string
	for _, c := range []cgroupfs.Controller{cgroupfs.CPU, cgroupfs.CPUAcct, cgroupfs.Memory} { // what the usage reader reads
		if d := layout.Hierarchy(c); d != "" {
			roots = append(roots, d)
		}
	}
	roots = append(roots, v2)
	kerneltest.MakeCgroup(t, rel+"/online", roots...)
	kerneltest.MakeCgroup(t, rel+"/offline/job", roots...)

	dir, err := os.MkdirTemp("", "sluice-netagent-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "sluice-agent")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/sluicehq/sluice/cmd/sluice-agent").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	policy := filepath.Join(dir, "policy.yaml")
	writePolicy := func(devices string) {
		t.Helper()
		body := fmt.Sprintf(`version: 1
dryRun: false
offlineParent: %s/offline
onStop: release
rdt: {enabled: false}
rules:
  - name: e2e online
    cgroup: %s/online
    class: online
    priority: 10
network:
  devices: %s
  linkRate: 100Mbit
  goldRate: 5Mbit
  silverRate: 60Mbit
  headroom: 5Mbit
`, rel, rel, devices)
		// Write-then-rename, as editors do: the agent never reads half a file.
		if err := os.WriteFile(policy+".new", []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(policy+".new", policy); err != nil {
			t.Fatal(err)
		}
	}
	writePolicy("[up0]")
	sock := filepath.Join(dir, "agent.sock")
	logs, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	agent := exec.Command("nsenter", "--net="+tp.Host.Path, bin, "-policy", policy, "-containerd", "",
		"-listen", "unix:"+sock, "-no-ebpf", "-net-pin-dir", "", "-log-level", "debug")
	agent.Stdout, agent.Stderr = logs, logs
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = agent.Process.Signal(syscall.SIGTERM)
		_ = agent.Wait()
		if b, _ := os.ReadFile(logs.Name()); t.Failed() {
			t.Logf("agent log:\n%s", b)
		}
	})
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
	get := func(path string) (string, error) {
		resp, err := client.Get("http://agent" + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}

	// The tree appears on up0 and nowhere else.
	sluiceQdisc := func(l netlink.Link) (netlink.Qdisc, []netlink.Qdisc) {
		qs, err := h.QdiscList(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			if netqos.Owned(q.Attrs().Handle) {
				return q, qs
			}
		}
		return nil, qs
	}
	eventually(t, "Sluice's HTB root on up0", func() (bool, string) {
		q, qs := sluiceQdisc(up0)
		return q != nil && q.Attrs().Handle == netqos.RootHandle() && q.Type() == "htb", fmt.Sprint(qs)
	})
	if q, _ := sluiceQdisc(hveth); q != nil {
		t.Errorf("hveth0 (not named by the policy) has a Sluice qdisc %v", q)
	}

	// /state: the classified cgroups with their tiers, applied.
	eventually(t, "the offline parent bronze and the online workload silver in /state", func() (bool, string) {
		body, err := get("/state")
		if err != nil {
			return false, err.Error()
		}
		var s struct {
			Plan         qos.Plan           `json:"plan"`
			Results      []qos.IntentResult `json:"results"`
			Capabilities struct {
				TC struct {
					Probed bool     `json:"probed"`
					Qdiscs []string `json:"qdiscs"`
				} `json:"tc"`
			} `json:"capabilities"`
		}
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			return false, err.Error()
		}
		if tc := s.Capabilities.TC; !tc.Probed || !slices.Contains(tc.Qdiscs, "htb") {
			return false, fmt.Sprintf("capabilities.tc %+v", tc)
		}
		want := []qos.NetworkTierIntent{
			{CgroupPath: rel + "/offline", Tier: netqos.Bronze, Reason: qos.TierOfflineParent},
			{CgroupPath: rel + "/online", Tier: netqos.Silver, Reason: qos.TierOnlineWorkload},
		}
		if !slices.Equal(s.Plan.Network.Tiers, want) {
			return false, fmt.Sprintf("tiers %+v", s.Plan.Network.Tiers)
		}
		applied := 0
		for _, r := range s.Results {
			if r.Intent == qos.IntentNetworkTier && (r.Status == qos.ResultApplied || r.Status == qos.ResultUnchanged) {
				applied++
			}
		}
		return applied == 2, fmt.Sprintf("results %+v", s.Results)
	})

	read, err := tc.New(tc.Config{Handle: h, LeafQdisc: "-"})
	if err != nil {
		t.Fatal(err)
	}
	kernel := func() netqos.DeviceSignal {
		sig, _, err := read.Read([]netqos.Link{{Device: "up0", RateBitsPerSec: 100 * mbit}})
		if err != nil || len(sig) != 1 {
			t.Fatalf("read up0: %v %v", sig, err)
		}
		return sig[0]
	}

	// Bronze alone: its bytes land in bronze's class and its ceiling
	// rises to link - headroom.
	before := kernel().TxBytes
	startSender(t, filepath.Join(v2, rel, "offline", "job"), tp.Ctr, tp.Sink)
	eventually(t, "bronze's flood in bronze's class with its ceiling at link - headroom", func() (bool, string) {
		k := kernel()
		d := nstest.Delta(k.TxBytes, before)
		return d[netqos.Bronze] > 1<<20 && d[netqos.Bronze] > 10*d[netqos.Silver] && k.BronzeCeilBitsPerSec >= 90*mbit,
			fmt.Sprintf("bytes since start %v, bronze ceil %d", d, k.BronzeCeilBitsPerSec)
	})

	// Silver floods too: its bytes land in silver's class and bronze's
	// ceiling is cut toward its floor (100 - 5 - 60 - 5 = 30 Mbit).
	before = kernel().TxBytes
	startSender(t, filepath.Join(v2, rel, "online"), tp.Ctr, tp.Sink)
	eventually(t, "silver's flood in silver's class and bronze's ceiling cut", func() (bool, string) {
		k := kernel()
		d := nstest.Delta(k.TxBytes, before)
		return d[netqos.Silver] > 1<<20 && k.BronzeCeilBitsPerSec <= 45*mbit,
			fmt.Sprintf("bytes since silver started %v, bronze ceil %d", d, k.BronzeCeilBitsPerSec)
	})
	metrics, err := get("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(metrics, `sluice_net_tier_ceil_bits{device="up0",tier="bronze"}`) {
		t.Errorf("/metrics lacks bronze's ceiling on up0")
	}

	// A reload naming no device removes Sluice's tree, and only it.
	writePolicy("[]")
	eventually(t, "Sluice's tree gone from up0", func() (bool, string) {
		q, qs := sluiceQdisc(up0)
		return q == nil, fmt.Sprint(qs)
	})
	_, qs := sluiceQdisc(up0)
	if !slices.ContainsFunc(qs, func(q netlink.Qdisc) bool { return q.Type() == "ingress" }) {
		t.Errorf("the foreign ingress qdisc on up0 is gone: %v", qs)
	}
	_, qs = sluiceQdisc(hveth)
	if !slices.ContainsFunc(qs, func(q netlink.Qdisc) bool {
		return q.Type() == "htb" && q.Attrs().Handle == netlink.MakeHandle(1, 0)
	}) {
		t.Errorf("the foreign HTB root on hveth0 is gone: %v", qs)
	}
}
