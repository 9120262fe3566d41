package tc

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/netqos"
	"github.com/sluicehq/sluice/netqos/internal/nstest"
	"github.com/sluicehq/sluice/test/kerneltest"
)

const mbit = 1_000_000

// pair is a sender namespace whose device "up0" is shaped, linked to a
// receiver namespace by a veth pair.
type pair struct {
	tx, rx *nstest.NS
	e      *Enforcer
	dst    string
}

func newPair(t *testing.T) *pair {
	t.Helper()
	p := &pair{tx: nstest.New(t), rx: nstest.New(t)}
	nstest.Veth(t, p.tx, "up0", "10.201.0.1/24", p.rx, "down0", "10.201.0.2/24")
	var err error
	if p.e, err = New(Config{Handle: p.tx.Handle}); err != nil {
		t.Fatal(err)
	}
	ln := p.rx.Listen(t, "10.201.0.2:0")
	p.dst = ln.Addr().String()
	go nstest.Discard(ln)
	return p
}

func policy() netqos.Policy {
	return netqos.Policy{
		Devices:            []string{"up0"},
		LinkRateBitsPerSec: 100 * mbit,
		GoldRateBitsPerSec: 5 * mbit, SilverRateBitsPerSec: 80 * mbit, HeadroomBitsPerSec: 5 * mbit,
	}
}

// plan decides once from what the kernel holds now.
func (p *pair) plan(t *testing.T, pol netqos.Policy, st netqos.State, at time.Time) (netqos.Plan, netqos.State) {
	t.Helper()
	links, err := p.e.Links(pol)
	if err != nil {
		t.Fatalf("links: %v", err)
	}
	sig, _, err := p.e.Read(links)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return netqos.Decide(netqos.Signals{At: at, Devices: sig}, pol, st)
}

func mustApply(t *testing.T, e *Enforcer, plan netqos.Plan) []netqos.Change {
	t.Helper()
	var all []netqos.Change
	for _, r := range e.Apply(context.Background(), plan) {
		if r.Part == "leaf" && errors.Is(r.Err, ErrNotSupported) {
			continue // no fq_codel on some kernels: reported, tiers keep FIFOs
		}
		if r.Err != nil {
			t.Fatalf("apply %s %s: %v", r.Device, r.Part, r.Err)
		}
		all = append(all, r.Changes...)
	}
	return all
}

func TestApplyIdempotentAndAdoptedAfterRestartVM(t *testing.T) {
	p := newPair(t)
	pol := policy()
	at := time.Unix(1000, 0)
	plan, _ := p.plan(t, pol, netqos.State{}, at)
	if ch := mustApply(t, p.e, plan); len(ch) < 5 || ch[0].Op != netqos.OpReplaceRoot {
		t.Fatalf("first apply wrote %v", ch)
	}
	// What the kernel reports (tc's own view is checked where tc exists).
	have, err := p.e.Observe("up0")
	if err != nil {
		t.Fatal(err)
	}
	if b := findClass(have, netqos.ClassID(netqos.Bronze)); b.Parent != netqos.LinkClassID() || b.RateBitsPerSec != 10*mbit || b.CeilBitsPerSec != 10*mbit {
		t.Errorf("bronze class in the kernel: %+v, want rate = ceil = 10Mbit under 5100:1", b)
	}
	if _, err := exec.LookPath("tc"); err == nil && !kerneltest.InVM() { // the VM's tc is busybox's
		out := p.tx.Run(t, "tc", "class", "show", "dev", "up0")
		for _, want := range []string{"class htb 5100:1 root", "class htb 5100:30 parent 5100:1", "rate 10Mbit ceil 10Mbit"} {
			if !strings.Contains(out, want) {
				t.Errorf("tc class show lacks %q:\n%s", want, out)
			}
		}
	}
	// The same plan again writes nothing.
	if ch := mustApply(t, p.e, plan); len(ch) != 0 {
		t.Errorf("second apply wrote %v", ch)
	}
	// Set bronze's ceiling to something a fresh start would not choose.
	links, _ := p.e.Links(pol)
	tree, _ := netqos.Desire(pol, links[0], 64*mbit)
	plan.Devices[0].Tree = tree
	if ch := mustApply(t, p.e, plan); len(ch) != 1 || ch[0].Op != netqos.OpChangeClass {
		t.Fatalf("ceiling change wrote %v", ch)
	}
	// A restarted agent: new enforcer, empty state. It adopts 64 Mbit and
	// writes nothing.
	e2, _ := New(Config{Handle: p.tx.Handle})
	p.e = e2
	plan2, _ := p.plan(t, pol, netqos.State{}, at.Add(time.Hour))
	if c := plan2.Devices[0].Ceil; c.Reason.Kind != netqos.ReasonAdopt || c.BitsPerSec != 64*mbit {
		t.Errorf("restart decided %v (%s), want 64Mbit adopted", c.BitsPerSec, c.Reason)
	}
	if ch := mustApply(t, e2, plan2); len(ch) != 0 {
		t.Errorf("restarted agent wrote %v", ch)
	}
}

func TestForeignRootLeftAlone(t *testing.T) {
	p := newPair(t)
	p.tx.Run(t, "tc", "qdisc", "add", "dev", "up0", "root", "handle", "7:", "tbf", "rate", "50mbit", "burst", "32kbit", "latency", "50ms")
	pol := policy()
	plan, _ := p.plan(t, pol, netqos.State{}, time.Unix(1, 0))
	res := p.e.Apply(context.Background(), plan)
	if len(res) != 1 || !errors.Is(res[0].Err, netqos.ErrForeignRoot) {
		t.Fatalf("apply on foreign root = %+v", res)
	}
	if out := p.tx.Run(t, "tc", "qdisc", "show", "dev", "up0"); !strings.Contains(out, "qdisc tbf 7: root") || strings.Contains(out, "htb") {
		t.Errorf("foreign root touched:\n%s", out)
	}
	pol.ReplaceForeignRoot = true
	plan, _ = p.plan(t, pol, netqos.State{}, time.Unix(1, 0))
	mustApply(t, p.e, plan)
	if out := p.tx.Run(t, "tc", "qdisc", "show", "dev", "up0"); !strings.Contains(out, "qdisc htb 5100: root") {
		t.Errorf("replaceForeignRoot did not install the tree:\n%s", out)
	}
}

func TestForeignClassesUntouchedAndShapingOff(t *testing.T) {
	p := newPair(t)
	pol := policy()
	plan, _ := p.plan(t, pol, netqos.State{}, time.Unix(1, 0))
	mustApply(t, p.e, plan)
	// Someone adds a class of their own under our tree's link class.
	p.tx.Run(t, "tc", "class", "add", "dev", "up0", "parent", "5100:1", "classid", "5100:99", "htb", "rate", "1mbit")
	p.tx.Run(t, "tc", "qdisc", "add", "dev", "up0", "parent", "5100:99", "handle", "9:", "pfifo")
	// 5100:99 is in our range: removed as stale. Qdisc 9: is not ours,
	// but it goes with its class (the kernel's doing, not a write of ours).
	ch := mustApply(t, p.e, plan)
	if len(ch) != 1 || ch[0].Op != netqos.OpDeleteClass || ch[0].Class.ID != 0x51000099 {
		t.Errorf("stale class: wrote %v", ch)
	}
	// Shaping off: our root goes.
	off := netqos.Plan{Devices: []netqos.DevicePlan{{Device: "up0"}}}
	if ch := mustApply(t, p.e, off); len(ch) != 1 || ch[0].Op != netqos.OpDeleteRoot {
		t.Errorf("off wrote %v", ch)
	}
	if out := p.tx.Run(t, "tc", "qdisc", "show", "dev", "up0"); strings.Contains(out, "htb") {
		t.Errorf("tree still there:\n%s", out)
	}
}

func TestDeviceGoneAndNoSpeed(t *testing.T) {
	p := newPair(t)
	pol := policy()
	plan, _ := p.plan(t, pol, netqos.State{}, time.Unix(1, 0))
	l, _ := p.tx.Handle.LinkByName("up0")
	if err := p.tx.Handle.LinkDel(l); err != nil {
		t.Fatal(err)
	}
	res := p.e.Apply(context.Background(), plan)
	if len(res) != 1 || !errors.Is(res[0].Err, ErrDeviceGone) {
		t.Errorf("apply on a removed device = %+v", res)
	}
	if _, err := p.e.Links(pol); !errors.Is(err, ErrDeviceGone) {
		t.Errorf("links on a removed device: %v", err)
	}
	// No linkRate and a device without a speed in sysfs: rate 0, not shaped.
	q := newPair(t)
	q.e.sysNet = t.TempDir()
	pol.LinkRateBitsPerSec = 0
	links, err := q.e.Links(pol)
	if err == nil || !strings.Contains(err.Error(), "no link speed") || len(links) != 1 || links[0].RateBitsPerSec != 0 {
		t.Fatalf("links without speed = %+v, %v", links, err)
	}
	sig, _, _ := q.e.Read(links)
	plan, _ = netqos.Decide(netqos.Signals{At: time.Unix(1, 0), Devices: sig}, pol, netqos.State{})
	if plan.Devices[0].Shape() {
		t.Error("shaped a device of unknown speed")
	}
}

// flood sends as fast as it can over a connection whose socket priority is
// prio, until stop closes.
func flood(t *testing.T, c net.Conn, prio int, stop <-chan struct{}) {
	t.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PRIORITY, prio)
	}); err != nil || serr != nil {
		t.Fatalf("SO_PRIORITY: %v %v", err, serr)
	}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			if _, err := c.Write(buf); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
		}
	}()
}

// settle waits until the class counters stop growing.
func settle(t *testing.T, e *Enforcer, links []netqos.Link) {
	t.Helper()
	prev := tierBytes(t, e, links)
	for range 100 {
		time.Sleep(50 * time.Millisecond)
		cur := tierBytes(t, e, links)
		if cur == prev {
			return
		}
		prev = cur
	}
	t.Fatalf("class counters still growing after 5 s: %v", prev)
}

func tierBytes(t *testing.T, e *Enforcer, links []netqos.Link) [netqos.NumTiers]uint64 {
	t.Helper()
	sig, _, err := e.Read(links)
	if err != nil {
		t.Fatal(err)
	}
	return sig[0].TxBytes
}

// TestTiersShareTheLink floods silver and bronze together, then bronze
// alone, and checks the class counters the kernel reports: packets land
// in the class their socket priority names, silver gets far more than
// bronze while both flood, and bronze alone borrows well beyond its rate.
func TestTiersShareTheLinkVM(t *testing.T) {
	p := newPair(t)
	pol := policy()
	if kerneltest.InVM() {
		// Emulated CPUs send a few tens of Mbit/s: shape below that, or
		// nothing contends.
		pol.LinkRateBitsPerSec, pol.GoldRateBitsPerSec, pol.SilverRateBitsPerSec, pol.HeadroomBitsPerSec = 10*mbit, mbit/2, 8*mbit, mbit/2
	}
	plan, _ := p.plan(t, pol, netqos.State{}, time.Unix(1, 0))
	mustApply(t, p.e, plan)
	links, _ := p.e.Links(pol)
	// Bronze's ceiling at the link rate: the static part of the tree is
	// what is tested here; Decide's dynamics are tested in netqos.
	tree, _ := netqos.Desire(pol, links[0], pol.LinkRateBitsPerSec)
	plan.Devices[0].Tree = tree
	mustApply(t, p.e, plan)

	run := func(prios ...int) [netqos.NumTiers]uint64 {
		stop := make(chan struct{})
		var conns []net.Conn
		for _, pr := range prios {
			c := p.tx.Dial(t, p.dst)
			conns = append(conns, c)
			flood(t, c, pr, stop)
		}
		time.Sleep(300 * time.Millisecond) // let TCP reach the shaped rate
		before := tierBytes(t, p.e, links)
		time.Sleep(1500 * time.Millisecond)
		d := nstest.Delta(tierBytes(t, p.e, links), before)
		close(stop)
		for _, c := range conns {
			_ = c.(*net.TCPConn).SetLinger(0) // drop what is queued: the next run starts clean
			c.Close()
		}
		settle(t, p.e, links)
		return d
	}
	silver, bronze := int(netqos.ClassID(netqos.Silver)), int(netqos.ClassID(netqos.Bronze))
	both := run(silver, bronze)
	t.Logf("both flooding: gold %d silver %d bronze %d bytes", both[0], both[1], both[2])
	if both[netqos.Silver] < 3*both[netqos.Bronze] || both[netqos.Bronze] == 0 {
		t.Errorf("silver %d bytes vs bronze %d: want silver > 3x bronze and bronze > 0", both[netqos.Silver], both[netqos.Bronze])
	}
	alone := run(bronze)
	t.Logf("bronze alone: %d bytes", alone[netqos.Bronze])
	if alone[netqos.Bronze] < 3*both[netqos.Bronze] || alone[netqos.Silver] > alone[netqos.Bronze]/100 {
		t.Errorf("bronze alone %d bytes vs %d beside silver: want it to borrow the idle link (>3x)", alone[netqos.Bronze], both[netqos.Bronze])
	}
	// Unclassified traffic goes to gold, the default class.
	gold := run(0)
	if gold[netqos.Gold] == 0 || gold[netqos.Bronze] > gold[netqos.Gold]/100 {
		t.Errorf("unclassified flow: %v, want it in gold", gold)
	}
}
