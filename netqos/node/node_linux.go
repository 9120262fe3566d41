package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	sebpf "github.com/sluicehq/sluice/ebpf"
	"github.com/sluicehq/sluice/netqos"
	"github.com/sluicehq/sluice/netqos/classify"
	"github.com/sluicehq/sluice/netqos/tc"
)

// Config sets up a Node.
type Config struct {
	Log *slog.Logger
	// Handle is the netlink handle of the host namespace (nil: the caller's).
	Handle *netlink.Handle
	// CgroupV2Dir is where the classifier's socket programs attach: the v2
	// root (/sys/fs/cgroup/unified on hybrid hosts, /sys/fs/cgroup on v2
	// hosts). Empty leaves traffic unclassified (everything is gold).
	CgroupV2Dir string
	// Classifier settings: mark bits, and PinDir (e.g.
	// /sys/fs/bpf/sluice/netqos) so that classification survives an agent
	// restart and the next agent adopts it.
	Classify classify.Config
	// TC settings (sysfs root, leaf qdisc); Handle and Log are filled in.
	TC tc.Config
}

// Node is the network tiers' kernel side on one host. Methods are meant
// for the agent's loop goroutine; Collector may be scraped concurrently.
type Node struct {
	log *slog.Logger
	h   *netlink.Handle
	tc  *tc.Enforcer
	cls *classify.Classifier // nil when BPF is unavailable
	cg  string

	attachedVeth map[int]bool // veth ifindex -> attached
	shaped       map[string]bool
	// tiers are the cgroups SetTiers put into the tier map, by v2
	// directory, with the id each had then.
	tiers map[string]tierEntry

	mu    sync.Mutex
	stats []tc.DeviceStats
	rx    [netqos.NumTiers]classify.RxCounter
	plan  netqos.Plan
}

// New loads the classifier (degrading to unclassified traffic when BPF is
// unavailable: the error is logged and trees are still shaped) and the tc
// enforcer.
func New(cfg Config) (*Node, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "netqos")
	tcc := cfg.TC
	tcc.Handle, tcc.Log = cfg.Handle, log
	e, err := tc.New(tcc)
	if err != nil {
		return nil, err
	}
	h := cfg.Handle
	if h == nil {
		if h, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil { // route only: kernels without xfrm refuse the default set
			return nil, fmt.Errorf("netqos: netlink handle: %w", err)
		}
	}
	n := &Node{log: log, h: h, tc: e, cg: cfg.CgroupV2Dir, attachedVeth: map[int]bool{}, shaped: map[string]bool{}}
	// Trees an earlier agent left are Sluice's to keep up or remove.
	if devs, err := e.Shaped(); err != nil {
		log.Warn("cannot list shaped devices", "err", err)
	} else {
		for _, d := range devs {
			n.shaped[d] = true
		}
	}
	if cfg.CgroupV2Dir != "" {
		if n.cls, err = classify.Load(cfg.Classify); err != nil {
			log.Warn("network classification off: all traffic is gold", "err", err)
			n.cls = nil
		}
	}
	return n, nil
}

// Close releases the node. The HTB trees stay (the next agent adopts
// them); the classifier's attachments stay too when they are pinned.
func (n *Node) Close() error {
	if n.cls != nil {
		return n.cls.Close()
	}
	return nil
}

// SetTier puts a v2 cgroup directory (and what is below it) into tier t.
func (n *Node) SetTier(dir string, t netqos.Tier) error {
	if n.cls == nil {
		return fmt.Errorf("netqos: set tier of %s: %w", dir, classify.ErrNotSupported)
	}
	return n.cls.SetTier(dir, t)
}

type tierEntry struct {
	tier netqos.Tier
	id   uint64
}

// TierChange is what SetTiers did with one cgroup directory.
type TierChange struct {
	Dir     string
	Tier    netqos.Tier
	Changed bool // written this call (new, another tier, or re-created)
	Err     error
}

// SetTiers makes the classifier hold exactly the given v2 cgroup
// directories with their tiers: new or changed ones are written, and the
// ones of an earlier call that are no longer wanted (the cgroup is gone,
// or no longer classified) are removed by the id they had, so a cgroup
// that was removed is forgotten too. Idempotent: a second call with the
// same map writes nothing, unless a cgroup was re-created under the same
// path (a new id).
func (n *Node) SetTiers(want map[string]netqos.Tier) []TierChange {
	if n.tiers == nil {
		n.tiers = map[string]tierEntry{}
	}
	out := make([]TierChange, 0, len(want))
	for dir, t := range want {
		c := TierChange{Dir: dir, Tier: t}
		id, err := sebpf.CgroupID(dir)
		switch {
		case n.cls == nil:
			c.Err = fmt.Errorf("netqos: set tier of %s: %w", dir, classify.ErrNotSupported)
		case err != nil:
			c.Err = fmt.Errorf("netqos: set tier of %s: %w", dir, err)
		case n.tiers[dir] == tierEntry{tier: t, id: id}:
		default:
			if old, ok := n.tiers[dir]; ok && old.id != id {
				_ = n.cls.ForgetID(old.id)
			}
			if c.Err = n.cls.SetTier(dir, t); c.Err == nil {
				n.tiers[dir], c.Changed = tierEntry{tier: t, id: id}, true
			}
		}
		out = append(out, c)
	}
	for dir, e := range n.tiers {
		if _, ok := want[dir]; ok {
			continue
		}
		if err := n.cls.ForgetID(e.id); err != nil {
			out = append(out, TierChange{Dir: dir, Err: err})
			continue
		}
		delete(n.tiers, dir)
	}
	slices.SortFunc(out, func(a, b TierChange) int { return strings.Compare(a.Dir, b.Dir) })
	return out
}

// Signals reads this tick's counters for pol's devices.
func (n *Node) Signals(pol netqos.Policy, at time.Time) (netqos.Signals, error) {
	sig := netqos.Signals{At: at}
	if !pol.Enabled() {
		return sig, nil
	}
	links, lerr := n.tc.Links(pol)
	devs, stats, rerr := n.tc.Read(links)
	sig.Devices = devs
	var cerr error
	var rx [netqos.NumTiers]classify.RxCounter
	if n.cls != nil && pol.Ingress {
		if rx, cerr = n.cls.Rx(); cerr == nil {
			for _, t := range netqos.Tiers {
				sig.RxBytes[t] = rx[t].Bytes
			}
			sig.IngressBudgetBitsPerSec, cerr = n.cls.IngressBudget()
		}
	}
	n.mu.Lock()
	n.stats, n.rx = stats, rx
	n.mu.Unlock()
	return sig, errors.Join(lerr, rerr, cerr)
}

// Apply makes the kernel match the plan: each device's tree, then the
// classifier's attachments, DSCP and ingress budget. Parts fail
// independently; the results say which.
func (n *Node) Apply(ctx context.Context, p netqos.Plan) []tc.Result {
	// A device shaped before and absent from the plan now (the policy
	// stopped naming it, or shaping is off) loses Sluice's tree.
	inPlan := map[string]bool{}
	for _, dp := range p.Devices {
		inPlan[dp.Device] = true
	}
	all := p
	all.Devices = slices.Clone(p.Devices)
	for d := range n.shaped {
		if !inPlan[d] {
			all.Devices = append(all.Devices, netqos.DevicePlan{Device: d})
		}
	}
	res := n.tc.Apply(ctx, all)
	for _, r := range res {
		if r.Part == "tree" && r.Err == nil {
			if inPlan[r.Device] {
				n.shaped[r.Device] = true
			} else {
				delete(n.shaped, r.Device)
			}
		}
	}
	n.mu.Lock()
	n.plan = p
	n.mu.Unlock()
	if n.cls == nil {
		return res
	}
	cl := tc.Result{Part: "classify"}
	var errs []error
	ingress := p.Ingress != nil
	if len(p.Devices) > 0 {
		errs = append(errs, n.cls.AttachSockets(n.cg))
	}
	if ingress {
		errs = append(errs, n.cls.AttachIngress(n.cg))
	}
	for _, dp := range p.Devices {
		if !dp.Shape() {
			continue
		}
		l, err := n.h.LinkByName(dp.Device)
		if err != nil {
			continue // reported by the tree result
		}
		errs = append(errs, n.cls.AttachUplink(l.Attrs().Index))
	}
	if len(p.Devices) > 0 {
		errs = append(errs, n.attachVeths())
	}
	if err := n.cls.SetDSCP(p.DSCP); err != nil {
		errs = append(errs, err)
	}
	budget := uint64(0)
	if ingress {
		budget = p.Ingress.BitsPerSec
		cl.Reason = p.Ingress.Reason.String()
	}
	if err := n.cls.SetIngressBudget(budget); err != nil {
		errs = append(errs, err)
	}
	cl.Err = errors.Join(errs...)
	return append(res, cl)
}

// attachVeths attaches the veth program to every veth whose peer lives in
// another namespace (a container's host side), once per device.
func (n *Node) attachVeths() error {
	links, err := n.h.LinkList()
	if err != nil {
		return fmt.Errorf("netqos: list links: %w", err)
	}
	present := map[int]bool{}
	var errs []error
	for _, l := range links {
		a := l.Attrs()
		if l.Type() != "veth" || a.NetNsID < 0 {
			continue
		}
		present[a.Index] = true
		if n.attachedVeth[a.Index] {
			continue
		}
		if err := n.cls.AttachVeth(a.Index); err != nil {
			errs = append(errs, err)
			continue
		}
		n.attachedVeth[a.Index] = true
	}
	// A removed veth took its TCX link with it; forget its index, which
	// the kernel may reuse.
	for i := range n.attachedVeth {
		if !present[i] {
			delete(n.attachedVeth, i)
			errs = append(errs, n.cls.DetachVeth(i))
		}
	}
	return errors.Join(errs...)
}
