package tc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/sluicehq/sluice/netqos"
)

// ErrNotSupported marks a part of the tree the kernel refuses (a qdisc
// whose module is missing). It is cilium/ebpf's sentinel, the one
// capability error of the project.
var ErrNotSupported = ebpf.ErrNotSupported

// ErrDeviceGone is returned for a device the policy names that does not
// exist (or no longer does).
var ErrDeviceGone = errors.New("device not found")

// Config sets up an Enforcer.
type Config struct {
	// Handle is the netlink handle (of a network namespace); nil uses the
	// caller's namespace.
	Handle *netlink.Handle
	// Log receives transitions (trees installed, parts unsupported).
	Log *slog.Logger
	// SysClassNet is where device speeds are read (default /sys/class/net).
	SysClassNet string
	// LeafQdisc is the leaf qdisc kind to try under each tier ("fq_codel"
	// by default; "-" for none). When the kernel refuses it, the tiers
	// keep HTB's default FIFO and the leaf part reports ErrNotSupported.
	LeafQdisc string
}

// Enforcer reads and writes the HTB trees of the shaped devices. It is
// safe for use by one goroutine at a time per method; Apply is
// level-triggered and idempotent.
type Enforcer struct {
	h      *netlink.Handle
	log    *slog.Logger
	sysNet string
	mu     sync.Mutex
	leaf   string // "" once the kernel refused it
}

// New builds an Enforcer.
func New(cfg Config) (*Enforcer, error) {
	h := cfg.Handle
	if h == nil {
		var err error
		if h, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil { // route only: kernels without xfrm refuse the default set
			return nil, fmt.Errorf("netqos/tc: netlink handle: %w", err)
		}
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Enforcer{h: h, log: log.With("component", "netqos"), sysNet: cfg.SysClassNet, leaf: cfg.LeafQdisc}
	if e.sysNet == "" {
		e.sysNet = "/sys/class/net"
	}
	switch e.leaf {
	case "":
		e.leaf = "fq_codel"
	case "-":
		e.leaf = ""
	}
	return e, nil
}

// Result is the outcome of one part of a device's plan.
type Result struct {
	Device string
	// Part is "tree" (root qdisc and classes), "leaf" (the tiers' leaf
	// qdiscs) or "ingress".
	Part string
	// Changes are the writes made (none when the device already matched).
	Changes []netqos.Change
	Err     error
	// Reason is the plan's reason for the device's bronze ceiling.
	Reason string
}

// Links resolves the policy's device names (and the DefaultRoute keyword)
// to the present devices with the rate to share out: the policy's
// linkRate, else the speed the driver reports, else 0 (not shaped). A
// named device that is missing is returned with rate 0 and its error.
func (e *Enforcer) Links(pol netqos.Policy) ([]netqos.Link, error) {
	var names []string
	var errs []error
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, d := range pol.Devices {
		if d != netqos.DefaultRoute {
			add(d)
			continue
		}
		devs, err := e.defaultRouteDevices()
		if err != nil {
			errs = append(errs, err)
		}
		for _, n := range devs {
			add(n)
		}
	}
	leaf := e.leafKind()
	out := make([]netqos.Link, 0, len(names))
	for _, n := range names {
		l := netqos.Link{Device: n, RateBitsPerSec: pol.LinkRateBitsPerSec, LeafQdisc: leaf}
		if _, err := e.h.LinkByName(n); err != nil {
			errs = append(errs, fmt.Errorf("device %s: %w: %w", n, ErrDeviceGone, err))
			continue
		}
		if l.RateBitsPerSec == 0 {
			speed, err := e.speed(n)
			if err != nil {
				errs = append(errs, fmt.Errorf("device %s: no link speed (set network.linkRate): %w", n, err))
			}
			l.RateBitsPerSec = speed
		}
		out = append(out, l)
	}
	return out, errors.Join(errs...)
}

func (e *Enforcer) leafKind() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leaf
}

// speed reads the driver's link speed in bits/s (sysfs reports Mbit/s,
// -1 or EINVAL when unknown: virtual devices and links that are down).
func (e *Enforcer) speed(dev string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(e.sysNet, dev, "speed"))
	if err != nil {
		return 0, fmt.Errorf("read speed: %w", err)
	}
	mbit, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || mbit <= 0 {
		return 0, fmt.Errorf("driver reports speed %q", strings.TrimSpace(string(b)))
	}
	return uint64(mbit) * 1_000_000, nil
}

// defaultRouteDevices lists the devices of the main table's IPv4 and IPv6
// default routes, multipath next hops included.
func (e *Enforcer) defaultRouteDevices() ([]string, error) {
	var idx []int
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := e.h.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, fmt.Errorf("default-route: list routes: %w", err)
		}
		for _, r := range routes {
			if r.Dst != nil {
				if ones, _ := r.Dst.Mask.Size(); ones != 0 {
					continue
				}
			}
			if r.LinkIndex > 0 {
				idx = append(idx, r.LinkIndex)
			}
			for _, nh := range r.MultiPath {
				idx = append(idx, nh.LinkIndex)
			}
		}
	}
	var out []string
	for _, i := range idx {
		l, err := e.h.LinkByIndex(i)
		if err != nil {
			continue // gone between the two calls; next tick
		}
		out = append(out, l.Attrs().Name)
	}
	if len(out) == 0 {
		return nil, errors.New("default-route: no default route")
	}
	return out, nil
}

// TierStats are one tier class's kernel counters on one device.
type TierStats struct {
	Bytes, Packets                 uint64
	Drops, Overlimits              uint64
	RateBitsPerSec, CeilBitsPerSec uint64
}

// DeviceStats are the counters of one device's tiers; Present is false
// when the device has no Sluice tree.
type DeviceStats struct {
	Device  string
	Present bool
	Tiers   [netqos.NumTiers]TierStats
}

// Read reads each link's Sluice tree: the signal Decide needs (class byte
// counters, bronze's current ceiling) and the counters for metrics.
func (e *Enforcer) Read(links []netqos.Link) ([]netqos.DeviceSignal, []DeviceStats, error) {
	sig := make([]netqos.DeviceSignal, 0, len(links))
	stats := make([]DeviceStats, 0, len(links))
	var errs []error
	for _, l := range links {
		s := netqos.DeviceSignal{Link: l}
		ds := DeviceStats{Device: l.Device}
		link, err := e.h.LinkByName(l.Device)
		if err == nil {
			var classes []netlink.Class
			classes, err = e.h.ClassList(link, 0)
			for _, c := range classes {
				hc, ok := c.(*netlink.HtbClass)
				if !ok {
					continue
				}
				t, ok := netqos.TierOfClass(hc.Handle)
				if !ok {
					continue
				}
				ds.Present = true
				ts := TierStats{RateBitsPerSec: hc.Rate * 8, CeilBitsPerSec: hc.Ceil * 8}
				if st := hc.Statistics; st != nil {
					if st.Basic != nil {
						ts.Bytes, ts.Packets = st.Basic.Bytes, uint64(st.Basic.Packets)
					}
					if st.Queue != nil {
						ts.Drops, ts.Overlimits = uint64(st.Queue.Drops), uint64(st.Queue.Overlimits)
					}
				}
				ds.Tiers[t] = ts
				s.TxBytes[t] = ts.Bytes
			}
			if ds.Present {
				s.BronzeCeilBitsPerSec = ds.Tiers[netqos.Bronze].CeilBitsPerSec
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("device %s: read classes: %w", l.Device, err))
		}
		sig = append(sig, s)
		stats = append(stats, ds)
	}
	return sig, stats, errors.Join(errs...)
}

// Shaped lists the devices whose root qdisc is Sluice's: what an agent
// that starts finds of an earlier one's work.
func (e *Enforcer) Shaped() ([]string, error) {
	links, err := e.h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var out []string
	for _, l := range links {
		qs, err := e.h.QdiscList(l)
		if err != nil {
			continue // gone meanwhile
		}
		for _, q := range qs {
			if a := q.Attrs(); a.Parent == netlink.HANDLE_ROOT && a.LinkIndex == l.Attrs().Index && netqos.Owned(a.Handle) {
				out = append(out, l.Attrs().Name)
			}
		}
	}
	return out, nil
}

// Observe reads what the diff needs of one device.
func (e *Enforcer) Observe(dev string) (netqos.Observed, error) {
	link, err := e.h.LinkByName(dev)
	if err != nil {
		return netqos.Observed{}, fmt.Errorf("device %s: %w: %w", dev, ErrDeviceGone, err)
	}
	return e.observe(link)
}

func (e *Enforcer) observe(link netlink.Link) (netqos.Observed, error) {
	var o netqos.Observed
	dev := link.Attrs().Name
	qdiscs, err := e.h.QdiscList(link)
	if err != nil {
		return o, fmt.Errorf("device %s: list qdiscs: %w", dev, err)
	}
	for _, q := range qdiscs {
		a := q.Attrs()
		if a.LinkIndex != link.Attrs().Index {
			continue
		}
		nq := netqos.Qdisc{Handle: a.Handle, Parent: a.Parent, Kind: q.Type()}
		if h, ok := q.(*netlink.Htb); ok {
			nq.DefaultClass = netqos.MakeHandle(netqos.HandleMajor(a.Handle), uint16(h.Defcls))
		}
		switch {
		case a.Parent == netlink.HANDLE_ROOT:
			if a.Handle != 0 || q.Type() != "noqueue" {
				o.Root = &nq
			}
		case netqos.Owned(a.Handle) && a.Parent != netlink.HANDLE_INGRESS && a.Parent != netlink.HANDLE_CLSACT:
			o.Leaves = append(o.Leaves, nq)
		}
	}
	if o.Root == nil || !netqos.Owned(o.Root.Handle) {
		return o, nil
	}
	classes, err := e.h.ClassList(link, 0)
	if err != nil {
		return o, fmt.Errorf("device %s: list classes: %w", dev, err)
	}
	for _, c := range classes {
		hc, ok := c.(*netlink.HtbClass)
		if !ok || !netqos.Owned(hc.Handle) {
			continue
		}
		parent := hc.Parent
		if parent == netlink.HANDLE_ROOT {
			// The kernel reports a top-level class's parent as TC_H_ROOT.
			parent = o.Root.Handle
		}
		o.Classes = append(o.Classes, netqos.Class{
			ID: hc.Handle, Parent: parent,
			RateBitsPerSec: hc.Rate * 8, CeilBitsPerSec: hc.Ceil * 8,
			BurstBytes: netlink.Xmitsize(hc.Rate, hc.Buffer), CburstBytes: netlink.Xmitsize(hc.Ceil, hc.Cbuffer),
			QuantumBytes: hc.Quantum, Prio: hc.Prio,
		})
	}
	return o, nil
}

// Apply makes each device's tree what the plan says, writing only the
// differences. Devices are independent: one failing does not stop the
// others. A plan with no tree for a device removes Sluice's tree there.
func (e *Enforcer) Apply(ctx context.Context, p netqos.Plan) []Result {
	var out []Result
	for _, dp := range p.Devices {
		if ctx.Err() != nil {
			out = append(out, Result{Device: dp.Device, Part: "tree", Err: ctx.Err()})
			continue
		}
		out = append(out, e.applyDevice(dp)...)
	}
	return out
}

func (e *Enforcer) applyDevice(dp netqos.DevicePlan) []Result {
	tree := Result{Device: dp.Device, Part: "tree", Reason: dp.Ceil.Reason.String()}
	link, err := e.h.LinkByName(dp.Device)
	if err != nil {
		tree.Err = fmt.Errorf("device %s: %w: %w", dp.Device, ErrDeviceGone, err)
		return []Result{tree}
	}
	have, err := e.observe(link)
	if err != nil {
		tree.Err = err
		return []Result{tree}
	}
	changes, err := netqos.Diff(dp.Tree, have, dp.ReplaceForeignRoot)
	if err != nil {
		tree.Err = fmt.Errorf("device %s: %w", dp.Device, err)
		return []Result{tree}
	}
	leaf := Result{Device: dp.Device, Part: "leaf"}
	var treeErrs, leafErrs []error
	for _, ch := range changes {
		err := e.write(link, ch)
		isLeaf := ch.Op == netqos.OpReplaceLeaf || ch.Op == netqos.OpDeleteLeaf
		switch {
		case err != nil && isLeaf:
			leafErrs = append(leafErrs, err)
			if errors.Is(err, ErrNotSupported) {
				e.refuseLeaf(ch.Qdisc.Kind, err)
			}
		case err != nil:
			treeErrs = append(treeErrs, err)
			if ch.Op == netqos.OpReplaceRoot {
				// Nothing below a missing root can be written.
				tree.Err = errors.Join(treeErrs...)
				return []Result{tree}
			}
		case isLeaf:
			leaf.Changes = append(leaf.Changes, ch)
		default:
			tree.Changes = append(tree.Changes, ch)
		}
	}
	tree.Err, leaf.Err = errors.Join(treeErrs...), errors.Join(leafErrs...)
	if len(tree.Changes) > 0 && tree.Changes[0].Op == netqos.OpReplaceRoot {
		e.log.Info("installed tree", "device", dp.Device, "reason", tree.Reason)
	}
	out := []Result{tree}
	if len(dp.Tree.Leaves) > 0 || len(leaf.Changes) > 0 || leaf.Err != nil {
		out = append(out, leaf)
	}
	return out
}

func (e *Enforcer) refuseLeaf(kind string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.leaf == kind {
		e.leaf = ""
		e.log.Warn("leaf qdisc not supported; tiers keep HTB's default FIFO", "kind", kind, "err", err)
	}
}

// write performs one change. A qdisc kind the kernel does not know
// (ENOENT: module missing; EOPNOTSUPP) is ErrNotSupported.
func (e *Enforcer) write(link netlink.Link, ch netqos.Change) error {
	idx := link.Attrs().Index
	var err error
	switch ch.Op {
	case netqos.OpReplaceRoot:
		q := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: idx, Handle: ch.Qdisc.Handle, Parent: netlink.HANDLE_ROOT})
		q.Defcls = ch.Qdisc.DefaultClass & 0xffff
		err = e.h.QdiscReplace(q)
	case netqos.OpDeleteRoot:
		err = e.h.QdiscDel(&netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: idx, Handle: ch.Qdisc.Handle, Parent: netlink.HANDLE_ROOT}, QdiscType: ch.Qdisc.Kind})
	case netqos.OpAddClass, netqos.OpChangeClass:
		c := ch.Class
		err = e.h.ClassReplace(netlink.NewHtbClass(
			netlink.ClassAttrs{LinkIndex: idx, Handle: c.ID, Parent: c.Parent},
			netlink.HtbClassAttrs{Rate: c.RateBitsPerSec, Ceil: c.CeilBitsPerSec, Buffer: c.BurstBytes, Cbuffer: c.CburstBytes, Quantum: c.QuantumBytes, Prio: c.Prio}))
	case netqos.OpDeleteClass:
		err = e.h.ClassDel(&netlink.GenericClass{ClassAttrs: netlink.ClassAttrs{LinkIndex: idx, Handle: ch.Class.ID, Parent: ch.Class.Parent}, ClassType: "htb"})
	case netqos.OpReplaceLeaf:
		err = e.h.QdiscReplace(leafQdisc(idx, ch.Qdisc))
	case netqos.OpDeleteLeaf:
		err = e.h.QdiscDel(&netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: idx, Handle: ch.Qdisc.Handle, Parent: ch.Qdisc.Parent}, QdiscType: ch.Qdisc.Kind})
	default:
		return fmt.Errorf("device %s: %s: unknown op", link.Attrs().Name, ch)
	}
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.ENOENT) && (ch.Op == netqos.OpReplaceRoot || ch.Op == netqos.OpReplaceLeaf) || errors.Is(err, unix.EOPNOTSUPP) {
		err = fmt.Errorf("%w: %w", ErrNotSupported, err)
	}
	return fmt.Errorf("device %s: %s: %w", link.Attrs().Name, ch, err)
}

func leafQdisc(idx int, q netqos.Qdisc) netlink.Qdisc {
	a := netlink.QdiscAttrs{LinkIndex: idx, Handle: q.Handle, Parent: q.Parent}
	if q.Kind == "fq_codel" {
		return netlink.NewFqCodel(a)
	}
	return &netlink.GenericQdisc{QdiscAttrs: a, QdiscType: q.Kind}
}
