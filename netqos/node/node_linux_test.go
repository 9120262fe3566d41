package node

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicehq/sluice/netqos"
	"github.com/sluicehq/sluice/netqos/internal/nstest"
	"github.com/sluicehq/sluice/netqos/tc"
	"github.com/sluicehq/sluice/test/kerneltest"
)

const mbit = 1_000_000

// startSender runs bash in cgroup dir and namespace ns sending zeros to
// addr until stopped or the test ends (the whole process group: bash may
// fork the sender).
func startSender(t *testing.T, dir string, ns *nstest.NS, addr string) (stop func()) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	script := fmt.Sprintf(`echo $$ > %s/cgroup.procs && exec nsenter --net=%s bash -c 'cat /dev/zero > /dev/tcp/%s/%s'`, dir, ns.Path, host, port)
	cmd := exec.Command("bash", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopAll := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}
	t.Cleanup(stopAll)
	return stopAll
}

// TestLoopMovesBronzeCeiling runs the agent's loop (Signals, Decide,
// Apply) against real traffic from a container-like namespace: bronze's
// ceiling in the kernel rises on an idle link, is cut when silver floods,
// and rises again when silver stops; bronze's own flood never counts
// against it.
func TestLoopMovesBronzeCeiling(t *testing.T) {
	v2 := kerneltest.RequireCgroupV2(t)
	kerneltest.RequireBinary(t, kerneltest.FeatureRoot, "nsenter")
	tp := nstest.NewTopo(t)
	rel := "/" + kerneltest.UniqueName("sluice-netnode")
	cg := kerneltest.MakeCgroup(t, rel, v2)[0]
	kerneltest.MakeCgroup(t, rel+"/silver", v2)
	kerneltest.MakeCgroup(t, rel+"/bronze", v2)

	n, err := New(Config{Handle: tp.Host.Handle, CgroupV2Dir: cg, TC: tc.Config{LeafQdisc: "-"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if n.cls == nil {
		kerneltest.Missing(t, kerneltest.FeatureBPF, "classifier did not load")
	}
	for tier, dir := range map[netqos.Tier]string{netqos.Silver: rel + "/silver", netqos.Bronze: rel + "/bronze"} {
		if err := n.SetTier(filepath.Join(v2, dir), tier); err != nil {
			t.Fatal(err)
		}
	}
	pol := netqos.Policy{Devices: []string{"up0"}, LinkRateBitsPerSec: 100 * mbit,
		GoldRateBitsPerSec: 5 * mbit, SilverRateBitsPerSec: 60 * mbit, HeadroomBitsPerSec: 5 * mbit,
		Ingress: true}
	var st netqos.State
	var reasons []string
	tick := func() netqos.Plan {
		t.Helper()
		sig, err := n.Signals(pol, time.Now())
		if err != nil {
			t.Fatalf("signals: %v", err)
		}
		var plan netqos.Plan
		plan, st = netqos.Decide(sig, pol, st)
		var res []tc.Result
		if err := tp.Host.Do(func() error { res = n.Apply(context.Background(), plan); return nil }); err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("apply %s %s: %v", r.Device, r.Part, r.Err)
			}
		}
		reasons = append(reasons, plan.Devices[0].Ceil.Reason.String())
		return plan
	}
	kernelCeil := func() uint64 {
		links, _ := n.tc.Links(pol)
		sig, _, err := n.tc.Read(links)
		if err != nil {
			t.Fatal(err)
		}
		return sig[0].BronzeCeilBitsPerSec
	}
	ticks := func(k int) {
		for range k {
			tick()
			time.Sleep(250 * time.Millisecond)
		}
	}
	defer func() {
		if t.Failed() {
			t.Logf("reasons:\n%s", strings.Join(reasons, "\n"))
		}
	}()

	startSender(t, filepath.Join(cg, "bronze"), tp.Ctr, tp.Sink)
	ticks(4)
	if c := kernelCeil(); c < 90*mbit {
		t.Errorf("bronze alone: ceiling %d, want >= 90Mbit (link - headroom)", c)
	}
	stopSilver := startSender(t, filepath.Join(cg, "silver"), tp.Ctr, tp.Sink)
	ticks(6)
	if c := kernelCeil(); c > 45*mbit {
		t.Errorf("silver flooding: bronze ceiling %d, want it cut near its 30Mbit floor", c)
	}
	stopSilver()
	ticks(6)
	if c := kernelCeil(); c < 90*mbit {
		t.Errorf("silver stopped: ceiling %d, want it back >= 90Mbit", c)
	}
	var cut bool
	for _, r := range reasons {
		cut = cut || strings.Contains(r, "bronze ceil cut")
	}
	if !cut {
		t.Error("no cut among the reasons")
	}
	// Metrics: one series per device and tier for six families, plus
	// ingress; bronze's ceiling as the kernel has it.
	if c := testutil.CollectAndCount(n.Collector()); c != 6*3+2*3+1 {
		t.Errorf("collected %d series", c)
	}
	exp := fmt.Sprintf("# HELP sluice_net_tier_ceil_bits The tier's ceiling in the kernel, bits/s.\n# TYPE sluice_net_tier_ceil_bits gauge\n"+
		"sluice_net_tier_ceil_bits{device=\"up0\",tier=\"bronze\"} %d\nsluice_net_tier_ceil_bits{device=\"up0\",tier=\"gold\"} 1e+08\nsluice_net_tier_ceil_bits{device=\"up0\",tier=\"silver\"} 1e+08\n", n.stats[0].Tiers[netqos.Bronze].CeilBitsPerSec)
	if err := testutil.CollectAndCompare(n.Collector(), strings.NewReader(exp), "sluice_net_tier_ceil_bits"); err != nil {
		t.Error(err)
	}
	// Shaping turned off: the tree goes.
	pol = netqos.Policy{}
	off := func() {
		if err := tp.Host.Do(func() error {
			plan, _ := netqos.Decide(netqos.Signals{At: time.Now()}, pol, st)
			for _, r := range n.Apply(context.Background(), plan) {
				if r.Err != nil {
					return r.Err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	off()
	if o, err := n.tc.Observe("up0"); err != nil || o.Root != nil {
		t.Errorf("after shaping was turned off: root %+v, %v", o.Root, err)
	}
	off() // nothing left to remove

	// A new agent finds and removes a tree an earlier one left.
	mustInstall := func() {
		links, _ := n.tc.Links(netqos.Policy{Devices: []string{"up0"}, LinkRateBitsPerSec: 100 * mbit, GoldRateBitsPerSec: mbit, SilverRateBitsPerSec: mbit})
		tree, _ := netqos.Desire(netqos.Policy{GoldRateBitsPerSec: mbit, SilverRateBitsPerSec: mbit}, links[0], 0)
		for _, r := range n.tc.Apply(context.Background(), netqos.Plan{Devices: []netqos.DevicePlan{{Device: "up0", Tree: tree}}}) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	mustInstall()
	n2, err := New(Config{Handle: tp.Host.Handle, TC: tc.Config{LeafQdisc: "-"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = n.Close()
	n = n2
	off()
	if o, err := n.tc.Observe("up0"); err != nil || o.Root != nil {
		t.Errorf("a new agent with shaping off left the old tree: root %+v, %v", o.Root, err)
	}
}

// TestAttachFailureKeepsShaping: a classifier that cannot attach (here: a
// cgroup directory that does not exist) is reported in its own result;
// the tree is still installed.
func TestAttachFailureKeepsShaping(t *testing.T) {
	kerneltest.RequireCgroupV2(t)
	tp := nstest.NewTopo(t)
	n, err := New(Config{Handle: tp.Host.Handle, CgroupV2Dir: filepath.Join(t.TempDir(), "no-such-cgroup"), TC: tc.Config{LeafQdisc: "-"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if n.cls == nil {
		kerneltest.Missing(t, kerneltest.FeatureBPF, "classifier did not load")
	}
	pol := netqos.Policy{Devices: []string{"up0"}, LinkRateBitsPerSec: 100 * mbit, GoldRateBitsPerSec: mbit, SilverRateBitsPerSec: mbit}
	sig, err := n.Signals(pol, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	plan, _ := netqos.Decide(sig, pol, netqos.State{})
	var res []tc.Result
	_ = tp.Host.Do(func() error { res = n.Apply(context.Background(), plan); return nil })
	var treeOK, classifyErr bool
	for _, r := range res {
		switch r.Part {
		case "tree":
			treeOK = r.Err == nil && len(r.Changes) > 0
		case "classify":
			classifyErr = r.Err != nil && strings.Contains(r.Err.Error(), "no-such-cgroup")
		}
	}
	if !treeOK || !classifyErr {
		t.Errorf("results %+v: want the tree installed and the attach failure reported", res)
	}
}
