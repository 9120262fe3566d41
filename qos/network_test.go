package qos

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/sluicehq/sluice/netqos"
)

const mbit = 1_000_000

func networkPolicy() Policy {
	pol := DefaultPolicy()
	pol.OfflineParent = "/sluice/offline"
	pol.Network = netqos.Policy{Devices: []string{"eth0"}, GoldRateBitsPerSec: 100 * mbit,
		SilverRateBitsPerSec: 300 * mbit, HeadroomBitsPerSec: 50 * mbit}
	return pol
}

func networkObs(at time.Time, gold, silver, bronze uint64) Observation {
	host := HostSample{CPUCapacityMilli: 4000, MemTotalBytes: 8 << 30, MemAvailableBytes: 6 << 30}
	ws := []WorkloadSample{
		{ID: "web", Class: ClassOnline, CgroupPath: "/online/web"},
		{ID: "batch", Class: ClassOffline, CgroupPath: "/sluice/offline/batch"},
		{ID: "etl", Class: ClassOffline, CgroupPath: "/jobs/etl"},
		{ID: "sshd", Class: ClassSystem, CgroupPath: "/system.slice/sshd.service"},
	}
	return Observation{Time: at, Host: host, Workloads: ws, Classes: AggregateClasses(host, ws, nil),
		Network: netqos.Signals{At: at, Devices: []netqos.DeviceSignal{{
			Link:    netqos.Link{Device: "eth0", RateBitsPerSec: 1000 * mbit},
			TxBytes: [netqos.NumTiers]uint64{gold, silver, bronze},
		}}}}
}

// TestDecideNetwork: the plan's network group carries the tree with
// bronze's ceiling from netqos.Decide, cut when silver grows, and the
// classified cgroups: the offline parent and offline work outside it
// bronze, online work silver, system work left to gold.
func TestDecideNetwork(t *testing.T) {
	pol := networkPolicy()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p1, s1 := Decide(networkObs(t0, 0, 0, 0), pol, Targets{}, State{})
	if len(p1.Network.Shaping.Devices) != 1 || !p1.Network.Shaping.Devices[0].Shape() {
		t.Fatalf("first plan does not shape eth0: %+v", p1.Network.Shaping)
	}
	if k := p1.Network.Shaping.Devices[0].Ceil.Reason.Kind; k != netqos.ReasonStart {
		t.Errorf("first ceiling reason %s, want start", k)
	}
	want := []NetworkTierIntent{
		{CgroupPath: "/jobs/etl", Tier: netqos.Bronze, Reason: TierOfflineWorkload},
		{CgroupPath: "/online/web", Tier: netqos.Silver, Reason: TierOnlineWorkload},
		{CgroupPath: "/sluice/offline", Tier: netqos.Bronze, Reason: TierOfflineParent},
	}
	if !slices.Equal(p1.Network.Tiers, want) {
		t.Errorf("tiers = %+v, want %+v", p1.Network.Tiers, want)
	}
	// Idle link: bronze ramps up to link - headroom.
	p2, s2 := Decide(networkObs(t0.Add(time.Second), 0, 0, 0), pol, Targets{}, s1)
	c2 := p2.Network.Shaping.Devices[0].Ceil
	if c2.BitsPerSec != 950*mbit || c2.Reason.Kind != netqos.ReasonRamp {
		t.Errorf("idle link: bronze ceil %d (%s), want 950Mbit ramp", c2.BitsPerSec, c2.Reason)
	}
	if p2.Equal(p1) {
		t.Error("plans with different bronze ceilings are Equal")
	}
	// Silver sends 200 Mbit/s: bronze is cut to 1000-200-50 (above its floor 1000-100-300-50).
	p3, s3 := Decide(networkObs(t0.Add(2*time.Second), 0, 200*mbit/8, 0), pol, Targets{}, s2)
	c3 := p3.Network.Shaping.Devices[0].Ceil
	if c3.BitsPerSec != 750*mbit || c3.Reason.Kind != netqos.ReasonCut {
		t.Errorf("silver busy: bronze ceil %d (%s), want 750Mbit cut", c3.BitsPerSec, c3.Reason)
	}
	// The state survives /state's JSON.
	b, err := json.Marshal(s3)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	p4, _ := Decide(networkObs(t0.Add(3*time.Second), 0, 1000*mbit/8, 0), pol, Targets{}, back)
	p4b, _ := Decide(networkObs(t0.Add(3*time.Second), 0, 1000*mbit/8, 0), pol, Targets{}, s3)
	if !p4.Equal(p4b) || p4.Network.Shaping.Devices[0].Ceil != p4b.Network.Shaping.Devices[0].Ceil {
		t.Errorf("decision from the JSON round-tripped state differs: %+v vs %+v", p4.Network.Shaping.Devices[0].Ceil, p4b.Network.Shaping.Devices[0].Ceil)
	}
	// Shaping off: no network intents at all.
	pol.Network.Devices = nil
	p5, s5 := Decide(networkObs(t0.Add(4*time.Second), 0, 0, 0), pol, Targets{}, s3)
	if p5.Network.Enabled() || len(p5.Network.Tiers) > 0 || !s5.Network.IsZero() {
		t.Errorf("shaping off: plan %+v state %+v", p5.Network, s5.Network)
	}
	var summary []string
	for _, is := range p3.Intents() {
		if is.Kind == IntentNetwork || is.Kind == IntentNetworkTier {
			summary = append(summary, is.Target+" "+is.Value)
		}
	}
	if !slices.Equal(summary, []string{"eth0 bronze ceil 750Mbit", "/jobs/etl bronze", "/online/web silver", "/sluice/offline bronze"}) {
		t.Errorf("intents = %q", summary)
	}
}
