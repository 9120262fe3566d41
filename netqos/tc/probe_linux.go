package tc

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ProbeKinds are the kinds the agent asks the kernel about: what Sluice
// uses (htb, a leaf, clsact or ingress, bpf) and what an SRE may want to
// know is missing.
func ProbeKinds() Probed {
	return Probed{
		Qdiscs:      []string{"htb", "tbf", "pfifo", "fq_codel", "fq", "sfq", "netem", "clsact", "ingress"},
		Classifiers: []string{"bpf", "u32", "matchall", "flower", "fw", "cgroup"},
	}
}

// Probed is what Probe found.
type Probed struct {
	Qdiscs      []string
	Classifiers []string
}

// Probe asks the kernel which of the kinds it offers, by
// creating each on the loopback device of a private network namespace
// made for the probe (and gone after it): the host's devices are never
// touched. The kernel answers ENOENT for a kind it does not know (after
// trying to load its module); any other answer, including EINVAL for the
// empty options the probe sends, means the kind exists.
func Probe(kinds Probed) (Probed, error) {
	var p Probed
	h, err := privateNetns()
	if err != nil {
		return p, err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return p, fmt.Errorf("netqos/tc: probe: loopback: %w", err)
	}
	idx := lo.Attrs().Index
	for _, kind := range kinds.Qdiscs {
		attrs := netlink.QdiscAttrs{LinkIndex: idx, Parent: netlink.HANDLE_ROOT, Handle: netlink.MakeHandle(1, 0)}
		if kind == "clsact" || kind == "ingress" {
			attrs.Parent, attrs.Handle = netlink.HANDLE_CLSACT, netlink.MakeHandle(0xffff, 0)
		}
		q := &netlink.GenericQdisc{QdiscAttrs: attrs, QdiscType: kind}
		err := h.QdiscAdd(q)
		if err == nil {
			_ = h.QdiscDel(q)
		}
		if !errors.Is(err, unix.ENOENT) {
			p.Qdiscs = append(p.Qdiscs, kind)
		}
	}
	// Classifiers hang off a classful root; the probe's own HTB.
	root := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: idx, Parent: netlink.HANDLE_ROOT, Handle: netlink.MakeHandle(1, 0)})
	if err := h.QdiscAdd(root); err != nil {
		return p, fmt.Errorf("netqos/tc: probe: htb root for the classifier probe: %w", err)
	}
	for i, kind := range kinds.Classifiers {
		f := &netlink.GenericFilter{FilterAttrs: netlink.FilterAttrs{LinkIndex: idx, Parent: root.Handle,
			Priority: uint16(i + 1), Protocol: unix.ETH_P_ALL}, FilterType: kind}
		if err := h.FilterAdd(f); !errors.Is(err, unix.ENOENT) {
			p.Classifiers = append(p.Classifiers, kind)
		}
	}
	return p, nil
}

// privateNetns returns a netlink handle in a new, unnamed network
// namespace; the namespace goes away with the handle.
func privateNetns() (*netlink.Handle, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("netqos/tc: probe: current netns: %w", err)
	}
	defer orig.Close()
	ns, err := netns.New() // switches this thread into it
	if err != nil {
		return nil, fmt.Errorf("netqos/tc: probe: new netns: %w", err)
	}
	defer ns.Close()
	h, herr := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err := netns.Set(orig); err != nil {
		panic(fmt.Sprintf("netqos/tc: probe: switch back to the original netns: %v", err))
	}
	if herr != nil {
		return nil, fmt.Errorf("netqos/tc: probe: netlink handle: %w", herr)
	}
	if lo, err := h.LinkByName("lo"); err == nil {
		_ = h.LinkSetUp(lo)
	}
	return h, nil
}
