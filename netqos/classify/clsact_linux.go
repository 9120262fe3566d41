package classify

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Kernels before 6.6 have no TCX; there the tc programs go in as cls_bpf
// direct-action filters on a clsact qdisc. Sluice's filter is the one
// with priority filterPrio and handle 1 on its hook; other filters and the
// clsact qdisc (which others may share) are left alone. A filter holds its
// program in the kernel without any file descriptor, so it survives an
// agent restart; the next agent replaces it with its own program.
const filterPrio = 0x5100

// tcHook is a direction of a device's clsact qdisc.
type tcHook struct {
	tcx    ebpf.AttachType
	parent uint32
}

var (
	hookIngress = tcHook{tcx: ebpf.AttachTCXIngress, parent: netlink.HANDLE_MIN_INGRESS}
	hookEgress  = tcHook{tcx: ebpf.AttachTCXEgress, parent: netlink.HANDLE_MIN_EGRESS}
)

// attachTC attaches prog at hook of ifindex (in the caller's network
// namespace) through TCX, else through a clsact filter.
func attachTC(ifindex int, prog *ebpf.Program, hook tcHook) (attachment, error) {
	l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: prog, Attach: hook.tcx})
	if err == nil {
		return l, nil
	}
	if !errors.Is(err, ebpf.ErrNotSupported) {
		return nil, err
	}
	f, ferr := newClsactFilter(ifindex, prog, hook)
	if ferr != nil {
		return nil, fmt.Errorf("%w; clsact fallback: %w", err, ferr)
	}
	return f, nil
}

// clsactFilter is a cls_bpf filter as an attachment.
type clsactFilter struct {
	ifindex int
	hook    tcHook
	prog    *ebpf.Program
	pinned  bool
}

func (f *clsactFilter) handle() (*netlink.Handle, error) {
	return netlink.NewHandle(unix.NETLINK_ROUTE)
}

func (f *clsactFilter) filter(prog *ebpf.Program) *netlink.BpfFilter {
	return &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: f.ifindex, Parent: f.hook.parent, Handle: 1,
			Protocol: unix.ETH_P_ALL, Priority: filterPrio},
		Fd: prog.FD(), Name: "sluice-netclass", DirectAction: true,
	}
}

func newClsactFilter(ifindex int, prog *ebpf.Program, hook tcHook) (*clsactFilter, error) {
	f := &clsactFilter{ifindex: ifindex, hook: hook, prog: prog}
	h, err := f.handle()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	q := &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}}
	if err := h.QdiscAdd(q); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("add clsact qdisc: %w", err)
	}
	if err := h.FilterReplace(f.filter(prog)); err != nil {
		return nil, fmt.Errorf("add cls_bpf filter: %w", err)
	}
	return f, nil
}

// Update replaces the filter's program.
func (f *clsactFilter) Update(prog *ebpf.Program) error {
	h, err := f.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.FilterReplace(f.filter(prog)); err != nil {
		return err
	}
	f.prog = prog
	return nil
}

// Close removes the filter, unless it is pinned: then, like a pinned link,
// it stays and the kernel keeps classifying while no agent runs.
func (f *clsactFilter) Close() error {
	if f.pinned {
		return nil
	}
	return f.Unpin()
}

// Unpin removes the filter.
func (f *clsactFilter) Unpin() error {
	h, err := f.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	err = h.FilterDel(f.filter(f.prog))
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EINVAL) {
		return nil // gone with its device
	}
	return err
}

// Pin marks the filter to be kept by Close (the kernel holds it anyway).
func (f *clsactFilter) Pin(string) error {
	f.pinned = true
	return nil
}
