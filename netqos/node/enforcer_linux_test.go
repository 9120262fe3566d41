package node

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/netqos"
	"github.com/sluicehq/sluice/netqos/internal/nstest"
	"github.com/sluicehq/sluice/netqos/tc"
	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
)

// TestEnforcerDryRunV1AndRemoval drives the agent's network enforcer on a
// host with no unified cgroup hierarchy (the zero Layout, as on pure v1):
// a dry-run plan writes nothing; the real plan installs the tree while
// classification reports unsupported; applying it again changes nothing;
// a plan without devices removes the tree.
func TestEnforcerDryRunV1AndRemoval(t *testing.T) {
	tp := nstest.NewTopo(t)
	e := NewEnforcer(Config{Handle: tp.Host.Handle, TC: tc.Config{LeafQdisc: "-"}}, cgroupfs.Layout{})
	t.Cleanup(func() { e.Close() })
	pol := netqos.Policy{Devices: []string{"up0"}, LinkRateBitsPerSec: 100 * mbit,
		GoldRateBitsPerSec: 5 * mbit, SilverRateBitsPerSec: 60 * mbit, HeadroomBitsPerSec: 5 * mbit}
	sig, err := e.Signals(pol, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	shaping, _ := netqos.Decide(sig, pol, netqos.State{})
	plan := qos.Plan{DryRun: true, Network: qos.NetworkIntent{Shaping: shaping,
		Tiers: []qos.NetworkTierIntent{{CgroupPath: "/offline", Tier: netqos.Bronze, Reason: qos.TierOfflineParent}}}}
	apply := func(p qos.Plan) map[string]qos.IntentResult {
		t.Helper()
		var rs []qos.IntentResult
		if err := tp.Host.Do(func() error { rs = e.Apply(context.Background(), p); return nil }); err != nil {
			t.Fatal(err)
		}
		out := map[string]qos.IntentResult{}
		for _, r := range rs {
			out[r.Intent+" "+r.Target] = r
		}
		return out
	}
	owned := func() bool {
		t.Helper()
		l, err := tp.Host.Handle.LinkByName("up0")
		if err != nil {
			t.Fatal(err)
		}
		qs, err := tp.Host.Handle.QdiscList(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			if netqos.Owned(q.Attrs().Handle) {
				return true
			}
		}
		return false
	}

	rs := apply(plan)
	if rs["network up0"].Status != qos.ResultDryRun || rs["network-tier /offline"].Status != qos.ResultDryRun || len(rs) != 2 {
		t.Errorf("dry run: %+v", rs)
	}
	if owned() {
		t.Fatal("dry run wrote a Sluice qdisc on up0")
	}

	plan.DryRun = false
	rs = apply(plan)
	if r := rs["network up0"]; r.Status != qos.ResultApplied {
		t.Errorf("tree: %+v", r)
	}
	if r := rs["network-tier /offline"]; r.Status != qos.ResultUnsupported || !strings.Contains(r.Err, "no unified hierarchy") {
		t.Errorf("classification without a unified hierarchy: %+v", r)
	}
	if !owned() {
		t.Fatal("no Sluice tree on up0 after a real plan")
	}
	if r := apply(plan)["network up0"]; r.Status != qos.ResultUnchanged {
		t.Errorf("second apply of the same plan: %+v, want unchanged", r)
	}

	rs = apply(qos.Plan{})
	if r := rs["network up0"]; r.Status != qos.ResultApplied {
		t.Errorf("removal: %+v", rs)
	}
	if owned() {
		t.Error("Sluice's tree is still on up0 after a plan without devices")
	}
}
