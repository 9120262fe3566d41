//go:build linux

package nstest

import (
	"io"
	"net"
	"testing"

	"github.com/sluicehq/sluice/netqos"
)

// Topo is a "host" namespace whose uplink up0 (10.211.0.1) leads to a
// "remote" namespace (down0, 10.211.0.2), with a "container" namespace
// (ctr0, 10.212.0.2) routed through the host by a veth pair whose host
// side is hveth0: the path a container's traffic takes to the uplink.
// Sink is the address of a TCP sink in the remote namespace that discards
// what it receives.
type Topo struct {
	Host, Remote, Ctr *NS
	Sink              string
}

// NewTopo builds the topology.
func NewTopo(t testing.TB) *Topo {
	t.Helper()
	tp := &Topo{Host: New(t), Remote: New(t), Ctr: New(t)}
	Veth(t, tp.Host, "up0", "10.211.0.1/24", tp.Remote, "down0", "10.211.0.2/24")
	Veth(t, tp.Host, "hveth0", "10.212.0.1/24", tp.Ctr, "ctr0", "10.212.0.2/24")
	tp.Ctr.Route(t, "default", "10.212.0.1")
	tp.Remote.Route(t, "10.212.0.0/24", "10.211.0.1")
	tp.Host.Sysctl(t, "net/ipv4/ip_forward", "1")
	ln := tp.Remote.Listen(t, "10.211.0.2:0")
	tp.Sink = ln.Addr().String()
	go Discard(ln)
	return tp
}

// Discard accepts connections on ln and reads them to the end until ln closes.
func Discard(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
	}
}

// Delta is after - before per tier, for counters that only grow.
func Delta(after, before [netqos.NumTiers]uint64) (d [netqos.NumTiers]uint64) {
	for i := range after {
		d[i] = after[i] - before[i]
	}
	return d
}
