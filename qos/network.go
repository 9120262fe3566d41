package qos

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/netqos"
)

// NetworkSignals is what the network tiers' controller observes each
// tick, NetworkState what it carries between ticks (netqos.Decide).
type (
	NetworkSignals = netqos.Signals
	NetworkState   = netqos.State
)

// IntentNetwork reports a device's tree and bronze ceiling (Target: the
// device), IntentNetworkIngress bronze's host-wide ingress budget and
// IntentNetworkTier a cgroup's network tier (Target: its cgroup path).
const (
	IntentNetwork        = "network"
	IntentNetworkIngress = "network-ingress"
	IntentNetworkTier    = "network-tier"
)

// NetworkIntent is the network tiers' group of the plan: per shaped
// device its HTB tree with bronze's ceiling, bronze's ingress budget, the
// DSCP per tier (netqos.Decide), and which cgroups' traffic is silver or
// bronze (everything else is gold). Empty while the policy names no
// devices: shaping stays off, and a device shaped before loses Sluice's
// tree.
type NetworkIntent struct {
	Shaping netqos.Plan `json:"shaping"`
	// Tiers lists the classified cgroups by path (parents before
	// children); a cgroup's tier covers the cgroups below it that are not
	// listed themselves.
	Tiers []NetworkTierIntent `json:"tiers,omitempty"`
}

// Enabled reports whether the intent shapes anything.
func (n NetworkIntent) Enabled() bool { return len(n.Shaping.Devices) > 0 }

func (n NetworkIntent) equal(m NetworkIntent) bool {
	return n.Shaping.Equal(m.Shaping) && slices.Equal(n.Tiers, m.Tiers)
}

// NetworkTierIntent puts one cgroup's sockets into a tier.
type NetworkTierIntent struct {
	// CgroupPath is relative to each hierarchy root; the classifier keys
	// it by the same path in the v2 (unified) hierarchy.
	CgroupPath string      `json:"cgroupPath"`
	Tier       netqos.Tier `json:"tier"`
	Reason     TierReason  `json:"reason"`
}

// TierReason says why a cgroup has its tier.
type TierReason uint8

// Tier reasons.
const (
	// TierOfflineParent: the offline parent holds offline work: bronze.
	TierOfflineParent TierReason = iota + 1
	// TierOnlineWorkload: an online workload: silver.
	TierOnlineWorkload
	// TierOfflineWorkload: an offline workload outside the offline parent: bronze.
	TierOfflineWorkload
)

var tierReasons = [...]string{"", "offline-parent", "online-workload", "offline-workload"}

func (r TierReason) String() string {
	if int(r) < len(tierReasons) {
		return tierReasons[r]
	}
	return fmt.Sprintf("tier-reason(%d)", uint8(r))
}

// MarshalText spells the reason by name.
func (r TierReason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a reason name.
func (r *TierReason) UnmarshalText(b []byte) error {
	if i := slices.Index(tierReasons[:], string(b)); i > 0 {
		*r = TierReason(i)
		return nil
	}
	return fmt.Errorf("unknown tier reason %q", b)
}

// Describe words the reason for a tier intent.
func (t NetworkTierIntent) Describe() string {
	switch t.Reason {
	case TierOfflineParent:
		return fmt.Sprintf("offline parent %s: its traffic is bronze", t.CgroupPath)
	case TierOnlineWorkload:
		return fmt.Sprintf("online workload %s: its traffic is silver", t.CgroupPath)
	case TierOfflineWorkload:
		return fmt.Sprintf("offline workload %s outside the offline parent: its traffic is bronze", t.CgroupPath)
	}
	return t.Reason.String()
}

// decideNetwork runs the network tiers' controller on the observed
// signals and lists the classified cgroups. Nothing while the policy
// names no devices.
func decideNetwork(obs Observation, pol Policy, prev netqos.State) (NetworkIntent, netqos.State) {
	shaping, next := netqos.Decide(obs.Network, pol.Network, prev)
	out := NetworkIntent{Shaping: shaping}
	if !pol.Network.Enabled() {
		return out, next
	}
	seen := map[string]bool{}
	add := func(path string, t netqos.Tier, r TierReason) {
		if path == "" || seen[path] {
			return
		}
		seen[path] = true
		out.Tiers = append(out.Tiers, NetworkTierIntent{CgroupPath: path, Tier: t, Reason: r})
	}
	if pol.OfflineParent != "" && pol.OfflineParent != "/" {
		add(pol.OfflineParent, netqos.Bronze, TierOfflineParent)
	}
	for _, w := range obs.Workloads {
		switch {
		case w.Class == ClassOnline:
			add(w.CgroupPath, netqos.Silver, TierOnlineWorkload)
		case w.Class == ClassOffline && !below(w.CgroupPath, pol.OfflineParent):
			add(w.CgroupPath, netqos.Bronze, TierOfflineWorkload)
		}
	}
	slices.SortFunc(out.Tiers, func(a, b NetworkTierIntent) int { return strings.Compare(a.CgroupPath, b.CgroupPath) })
	return out, next
}

// below reports whether cgroup path p is parent or lies under it.
func below(p, parent string) bool {
	if parent == "" || parent == "/" {
		return false
	}
	parent = strings.TrimSuffix(parent, "/")
	return p == parent || strings.HasPrefix(p, parent+"/")
}

// networkIntents words the network group for IntentSummary lists.
func (n NetworkIntent) intents() []IntentSummary {
	var out []IntentSummary
	for _, d := range n.Shaping.Devices {
		v := "not shaped"
		if d.Shape() {
			v = "bronze ceil " + netqos.FormatRate(d.Ceil.BitsPerSec)
		}
		out = append(out, IntentSummary{Kind: IntentNetwork, Target: d.Device, Value: v, Reason: d.Ceil.Reason.String()})
	}
	if in := n.Shaping.Ingress; in != nil {
		out = append(out, IntentSummary{Kind: IntentNetworkIngress, Target: "host", Value: "bronze budget " + netqos.FormatRate(in.BitsPerSec), Reason: in.Reason.String()})
	}
	for _, t := range n.Tiers {
		out = append(out, IntentSummary{Kind: IntentNetworkTier, Target: t.CgroupPath, Value: t.Tier.String(), Reason: t.Describe()})
	}
	return out
}
