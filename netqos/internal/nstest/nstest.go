//go:build linux

// Package nstest gives the network tier tests their own network
// namespaces, veth pairs and sockets, each named uniquely and removed in
// t.Cleanup.
package nstest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/sluicehq/sluice/test/kerneltest"
)

// NS is a named network namespace (/run/netns/Name).
type NS struct {
	Name   string
	Path   string
	Handle *netlink.Handle
	ns     netns.NsHandle
}

// Suffix returns a short random suffix for unique names.
func Suffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// New creates a namespace (through netlink and a bind mount under
// /run/netns, no ip binary: the VM lane has none) with its loopback up.
func New(t testing.TB) *NS {
	t.Helper()
	kerneltest.RequireRoot(t)
	name := "sltest-" + Suffix()
	n := &NS{Name: name, Path: "/run/netns/" + name}
	var err error
	n.ns, err = newNamed(name)
	if err != nil {
		kerneltest.Missing(t, kerneltest.FeatureRoot, "new network namespace: %v", err)
	}
	t.Cleanup(func() {
		n.ns.Close()
		_ = netns.DeleteNamed(name)
	})
	if n.Handle, err = netlink.NewHandleAt(n.ns, unix.NETLINK_ROUTE); err != nil {
		t.Fatalf("netlink handle in %s: %v", name, err)
	}
	t.Cleanup(n.Handle.Close)
	lo, err := n.Handle.LinkByName("lo")
	if err == nil {
		err = n.Handle.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("%s: lo up: %v", name, err)
	}
	return n
}

// newNamed creates a named namespace without leaving the calling thread
// in it.
func newNamed(name string) (netns.NsHandle, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return netns.None(), err
	}
	defer orig.Close()
	h, err := netns.NewNamed(name)
	if serr := netns.Set(orig); serr != nil {
		panic(fmt.Sprintf("nstest: switch back from %s: %v", name, serr))
	}
	return h, err
}

// Route adds a route to dst (CIDR, or "default") via gw.
func (n *NS) Route(t testing.TB, dst, gw string) {
	t.Helper()
	r := netlink.Route{Gw: net.ParseIP(gw)}
	if dst != "default" {
		_, ipn, err := net.ParseCIDR(dst)
		if err != nil {
			t.Fatal(err)
		}
		r.Dst = ipn
	}
	if err := n.Handle.RouteAdd(&r); err != nil {
		t.Fatalf("%s: route %s via %s: %v", n.Name, dst, gw, err)
	}
}

// Sysctl writes a /proc/sys value (path relative to /proc/sys) in the
// namespace.
func (n *NS) Sysctl(t testing.TB, key, value string) {
	t.Helper()
	if err := n.Do(func() error {
		return os.WriteFile("/proc/sys/"+key, []byte(value), 0o644)
	}); err != nil {
		t.Fatalf("%s: sysctl %s=%s: %v", n.Name, key, value, err)
	}
}

// Do runs f on a thread switched into the namespace; sockets f creates
// stay in the namespace afterwards.
func (n *NS) Do(f func() error) error { return kerneltest.InNetns(n.ns, f) }

// Command runs a program inside the namespace (nsenter, which leaves /sys
// and the cgroup mounts alone, unlike ip netns exec).
func (n *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + n.Path, name}, args...)...)
}

// Veth links a and b with a veth pair named devA (in a) and devB (in b),
// addresses cidrA and cidrB (e.g. "10.77.0.1/24"), both up. A nil
// namespace means the test process's own.
func Veth(t testing.TB, a *NS, devA, cidrA string, b *NS, devB, cidrB string) {
	t.Helper()
	la := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: devA, TxQLen: 1000}, PeerName: devB}
	if a != nil {
		la.Namespace = netlink.NsFd(int(a.ns))
	}
	if b != nil {
		la.PeerNamespace = netlink.NsFd(int(b.ns))
	}
	if err := netlink.LinkAdd(la); err != nil {
		t.Fatalf("veth %s/%s: %v", devA, devB, err)
	}
	t.Cleanup(func() {
		if a == nil {
			if l, err := netlink.LinkByName(devA); err == nil {
				_ = netlink.LinkDel(l)
			}
		}
	})
	for _, s := range []struct {
		ns        *NS
		dev, cidr string
	}{{a, devA, cidrA}, {b, devB, cidrB}} {
		h := netlink.Handle{}
		hp := &h
		if s.ns != nil {
			hp = s.ns.Handle
		}
		l, err := hp.LinkByName(s.dev)
		if err != nil {
			t.Fatalf("%s: %v", s.dev, err)
		}
		if s.cidr != "" {
			addr, err := netlink.ParseAddr(s.cidr)
			if err != nil {
				t.Fatal(err)
			}
			if err := hp.AddrAdd(l, addr); err != nil {
				t.Fatalf("%s: addr %s: %v", s.dev, s.cidr, err)
			}
		}
		if err := hp.LinkSetUp(l); err != nil {
			t.Fatalf("%s up: %v", s.dev, err)
		}
	}
}

// Listen opens a TCP listener inside the namespace.
func (n *NS) Listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := n.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return }); err != nil {
		t.Fatalf("listen %s in %s: %v", addr, n.Name, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// Dial opens a TCP connection from inside the namespace.
func (n *NS) Dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	if err := n.Do(func() (err error) { c, err = net.Dial("tcp", addr); return }); err != nil {
		t.Fatalf("dial %s from %s: %v", addr, n.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Run runs a command in the namespace and fails the test on error.
func (n *NS) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := n.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s in %s: %v: %s", name, strings.Join(args, " "), n.Name, err, out)
	}
	return string(out)
}
