package classify

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	cebpf "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/sluicehq/sluice/netqos"
	"github.com/sluicehq/sluice/netqos/internal/nstest"
	"github.com/sluicehq/sluice/netqos/tc"
	"github.com/sluicehq/sluice/test/kerneltest"
)

const mbit = 1_000_000

// topo is a "host" namespace whose uplink up0 is shaped towards a "remote"
// namespace, with a "container" namespace routed through the host by a
// veth pair (ctr0 inside, hveth0 on the host side), and a v2 cgroup parent
// with a silver and a bronze child.
type topo struct {
	host, remote, ctr *nstest.NS
	e                 *tc.Enforcer
	links             []netqos.Link
	cg                string // v2 parent directory
	c                 *Classifier
	sinkAddr          string
}

func requireClassify(t *testing.T) string {
	t.Helper()
	v2 := kerneltest.RequireCgroupV2(t)
	for _, pt := range []cebpf.ProgramType{cebpf.CGroupSock, cebpf.CGroupSKB, cebpf.SchedCLS} {
		if err := features.HaveProgramType(pt); err != nil {
			kerneltest.Missing(t, kerneltest.FeatureBPF, "program type %s: %v", pt, err)
		}
	}
	return v2
}

func newTopo(t *testing.T) *topo {
	t.Helper()
	v2 := requireClassify(t)
	nt := nstest.NewTopo(t)
	tp := &topo{host: nt.Host, remote: nt.Remote, ctr: nt.Ctr, sinkAddr: nt.Sink}
	var err error
	if tp.e, err = tc.New(tc.Config{Handle: tp.host.Handle}); err != nil {
		t.Fatal(err)
	}
	pol := netqos.Policy{Devices: []string{"up0"}, LinkRateBitsPerSec: 100 * mbit,
		GoldRateBitsPerSec: 5 * mbit, SilverRateBitsPerSec: 80 * mbit, HeadroomBitsPerSec: 5 * mbit}
	if tp.links, err = tp.e.Links(pol); err != nil {
		t.Fatal(err)
	}
	tree, _ := netqos.Desire(pol, tp.links[0], 100*mbit)
	for _, r := range tp.e.Apply(context.Background(), netqos.Plan{Devices: []netqos.DevicePlan{{Device: "up0", Tree: tree}}}) {
		if r.Err != nil && r.Part == "tree" {
			t.Fatalf("install tree: %v", r.Err)
		}
	}

	rel := "/" + kerneltest.UniqueName("sluice-netclass")
	tp.cg = kerneltest.MakeCgroup(t, rel, v2)[0]
	kerneltest.MakeCgroup(t, rel+"/silver", v2)
	kerneltest.MakeCgroup(t, rel+"/bronze", v2)
	kerneltest.MakeCgroup(t, rel+"/bronze/job", v2)

	if tp.c, err = Load(Config{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tp.c.Close() })
	if err := tp.c.SetTier(filepath.Join(tp.cg, "silver"), netqos.Silver); err != nil {
		t.Fatal(err)
	}
	if err := tp.c.SetTier(filepath.Join(tp.cg, "bronze"), netqos.Bronze); err != nil {
		t.Fatal(err)
	}

	return tp
}

// senderEnv makes the test binary a sender (see TestMain): "NSPATH ADDR KIB".
const senderEnv = "SLUICE_NETQOS_SENDER"

func TestMain(m *testing.M) {
	if spec, ok := os.LookupEnv(senderEnv); ok {
		if err := sender(spec); err != nil {
			fmt.Fprintln(os.Stderr, "sender:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// sender waits for a line on stdin (its parent moves it into its cgroup
// first), enters the network namespace, and writes KIB KiB to ADDR over
// one TCP connection it opens there.
func sender(spec string) error {
	var nsPath, addr string
	var kib int
	if _, err := fmt.Sscan(spec, &nsPath, &addr, &kib); err != nil {
		return fmt.Errorf("%s=%q: %w", senderEnv, spec, err)
	}
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}
	runtime.LockOSThread()
	h, err := netns.GetFromPath(nsPath)
	if err != nil {
		return err
	}
	if err := netns.Set(h); err != nil {
		return err
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	buf := make([]byte, 1024)
	for range kib {
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
	return c.Close()
}

// send runs the test binary as a sender in cgroup dir and namespace ns,
// writing kib KiB to addr over one TCP connection it opens itself (so the
// socket is created in dir). No shell or nsenter: the VM lane has none.
func send(t *testing.T, dir string, ns *nstest.NS, addr string, kib int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", senderEnv, ns.Path, addr, kib))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("move sender into %s: %v", dir, err)
	}
	_, _ = io.WriteString(in, "go\n")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("send from %s: %v: %s", dir, err, out.String())
	}
}

func (tp *topo) classBytes(t *testing.T) [netqos.NumTiers]uint64 {
	t.Helper()
	sig, _, err := tp.e.Read(tp.links)
	if err != nil {
		t.Fatal(err)
	}
	return sig[0].TxBytes
}

// settled reads the class counters once they stop growing: a sender exits
// with data still queued, and its tail must not count for the next one.
func (tp *topo) settled(t *testing.T) [netqos.NumTiers]uint64 {
	t.Helper()
	prev := tp.classBytes(t)
	for range 100 {
		time.Sleep(50 * time.Millisecond)
		cur := tp.classBytes(t)
		if cur == prev {
			return cur
		}
		prev = cur
	}
	t.Fatalf("class counters still growing after 5 s: %v", prev)
	return prev
}

// landed sends kib KiB from dir in ns and returns the tier whose class
// counter grew by at least that much; it fails if none or several did.
func (tp *topo) landed(t *testing.T, dir string, ns *nstest.NS, kib int) netqos.Tier {
	t.Helper()
	before := tp.settled(t)
	send(t, dir, ns, tp.sinkAddr, kib)
	after := tp.settled(t)
	var got []netqos.Tier
	for _, tier := range netqos.Tiers {
		if after[tier]-before[tier] >= uint64(kib)<<10 {
			got = append(got, tier)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%d KiB from %s: class byte growth %v, want exactly one class with all of it", kib, dir, nstest.Delta(after, before))
	}
	return got[0]
}

// TestHostAndContainerTrafficLandInTheirTier: a host-network process in a
// bronze cgroup (and in a cgroup below it) lands in bronze's class, one in
// a silver cgroup in silver's; a container-like process (own namespace,
// veth, routed through the host) lands in its tier only with the veth and
// uplink programs attached, because the socket priority does not survive
// the namespace crossing.
func TestHostAndContainerTrafficLandInTheirTierVM(t *testing.T) {
	tp := newTopo(t)
	const kib = 2048
	bronze, silver := filepath.Join(tp.cg, "bronze"), filepath.Join(tp.cg, "silver")
	if got := tp.landed(t, bronze, tp.host, kib); got != netqos.Gold {
		t.Fatalf("before attaching, bronze cgroup traffic landed in %s, want gold (the default class)", got)
	}
	if err := tp.c.AttachSockets(tp.cg); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir  string
		want netqos.Tier
	}{{bronze, netqos.Bronze}, {filepath.Join(bronze, "job"), netqos.Bronze}, {silver, netqos.Silver}, {tp.cg, netqos.Gold}} {
		if got := tp.landed(t, c.dir, tp.host, kib); got != c.want {
			t.Errorf("host process in %s landed in %s, want %s", c.dir, got, c.want)
		}
	}
	// Container: the priority set at socket creation is lost at the veth.
	if got := tp.landed(t, bronze, tp.ctr, kib); got != netqos.Gold {
		t.Errorf("container traffic with the socket program only landed in %s, want gold (priority lost at the veth)", got)
	}
	var err error
	if e := tp.host.Do(func() error {
		hv, err := tp.host.Handle.LinkByName("hveth0")
		if err != nil {
			return err
		}
		up, err := tp.host.Handle.LinkByName("up0")
		if err != nil {
			return err
		}
		if err := tp.c.AttachVeth(hv.Attrs().Index); err != nil {
			return err
		}
		return tp.c.AttachUplink(up.Attrs().Index)
	}); e != nil {
		err = e
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir  string
		want netqos.Tier
	}{{bronze, netqos.Bronze}, {silver, netqos.Silver}, {tp.cg, netqos.Gold}} {
		if got := tp.landed(t, c.dir, tp.ctr, kib); got != c.want {
			t.Errorf("container process in %s landed in %s, want %s", c.dir, got, c.want)
		}
	}
	// Host processes still land right with the uplink program attached.
	if got := tp.landed(t, bronze, tp.host, kib); got != netqos.Bronze {
		t.Errorf("host bronze with uplink program: %s", got)
	}
}

// TestDSCPMarking: with DSCP set for bronze, the uplink program rewrites
// the TOS of bronze packets; a packet socket at the receiver reads the
// DSCP of what arrives (and the IPv4 checksum the kernel accepted).
func TestDSCPMarking(t *testing.T) {
	tp := newTopo(t)
	if err := tp.c.AttachSockets(tp.cg); err != nil {
		t.Fatal(err)
	}
	if err := tp.host.Do(func() error {
		up, err := tp.host.Handle.LinkByName("up0")
		if err != nil {
			return err
		}
		return tp.c.AttachUplink(up.Attrs().Index)
	}); err != nil {
		t.Fatal(err)
	}
	if err := tp.c.SetDSCP(map[netqos.Tier]uint8{netqos.Bronze: 8, netqos.Silver: 46}); err != nil {
		t.Fatal(err)
	}
	var fd int
	if err := tp.remote.Do(func() (err error) {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(htons(unix.ETH_P_IP)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	tv := unix.Timeval{Usec: 200000}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	count := make(chan map[uint8]int)
	go func() {
		seen := map[uint8]int{}
		buf := make([]byte, 128)
		for misses := 0; misses < 10; {
			n, _, err := unix.Recvfrom(fd, buf, unix.MSG_TRUNC)
			if err != nil {
				misses++
				continue
			}
			misses = 0
			if n >= 20 && buf[9] == unix.IPPROTO_TCP && net.IP(buf[12:16]).Equal(net.IPv4(10, 211, 0, 1)) {
				seen[buf[1]>>2]++
			}
		}
		count <- seen
	}()
	send(t, filepath.Join(tp.cg, "bronze"), tp.host, tp.sinkAddr, 256)
	send(t, filepath.Join(tp.cg, "silver"), tp.host, tp.sinkAddr, 256)
	send(t, tp.cg, tp.host, tp.sinkAddr, 256)
	seen := <-count
	t.Logf("packets by DSCP: %v", seen)
	for _, d := range []uint8{8, 46, 0} {
		// 256 KiB is a few dozen TSO segments on a veth.
		if seen[d] < 5 {
			t.Errorf("%d packets with DSCP %d, want a flow's worth (>= 5): %v", seen[d], d, seen)
		}
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// receive starts busybox nc listening on port in cgroup dir (host
// namespace), discarding what it gets from one connection.
func (tp *topo) receive(t *testing.T, dir string, port int) {
	t.Helper()
	bb := kerneltest.RequireBinary(t, kerneltest.FeatureRoot, "busybox")
	kerneltest.RequireBinary(t, kerneltest.FeatureRoot, "nsenter")
	kerneltest.RequireBinary(t, kerneltest.FeatureRoot, "bash")
	script := fmt.Sprintf(`echo $$ > %s/cgroup.procs && exec nsenter --net=%s %s nc -l -p %d > /dev/null`, dir, tp.host.Path, bb, port)
	cmd := exec.Command("bash", "-c", script)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
}

// floodFor sends from the remote namespace to addr for d.
func (tp *topo) floodFor(t *testing.T, addr string, d time.Duration) {
	t.Helper()
	var c net.Conn
	for deadline := time.Now().Add(5 * time.Second); ; {
		err := tp.remote.Do(func() (err error) { c, err = net.Dial("tcp", addr); return })
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer c.Close()
	buf := make([]byte, 64<<10)
	_ = c.SetWriteDeadline(time.Now().Add(d))
	for {
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// TestIngressPolicesBronze: a bronze receiver gets far less of the same
// flood once bronze's ingress budget is set, and the policer's drop
// counter says why; silver is never policed.
func TestIngressPolicesBronze(t *testing.T) {
	tp := newTopo(t)
	if err := tp.c.AttachIngress(tp.cg); err != nil {
		t.Fatal(err)
	}
	bronze := filepath.Join(tp.cg, "bronze")
	run := func(dir string, port int) RxCounter {
		t.Helper()
		before, err := tp.c.Rx()
		if err != nil {
			t.Fatal(err)
		}
		tp.receive(t, dir, port)
		tp.floodFor(t, fmt.Sprintf("10.211.0.1:%d", port), 1500*time.Millisecond)
		after, _ := tp.c.Rx()
		tier := netqos.Bronze
		if dir != bronze {
			tier = netqos.Silver
		}
		return RxCounter{Bytes: after[tier].Bytes - before[tier].Bytes, Drops: after[tier].Drops - before[tier].Drops}
	}
	free := run(bronze, 17001)
	if err := tp.c.SetIngressBudget(8 * mbit); err != nil {
		t.Fatal(err)
	}
	if b, err := tp.c.IngressBudget(); err != nil || b != 8*mbit {
		t.Fatalf("budget read back %d, %v", b, err)
	}
	policed := run(bronze, 17002)
	silver := run(filepath.Join(tp.cg, "silver"), 17003)
	t.Logf("bronze unpoliced %d bytes (%d drops), policed %d bytes (%d drops), silver %d bytes (%d drops)",
		free.Bytes, free.Drops, policed.Bytes, policed.Drops, silver.Bytes, silver.Drops)
	if free.Drops != 0 || free.Bytes == 0 {
		t.Errorf("unpoliced bronze: %+v", free)
	}
	if policed.Drops == 0 || policed.Bytes == 0 || policed.Bytes*4 > free.Bytes {
		t.Errorf("policed bronze %+v vs unpoliced %+v: want drops and under a quarter of the bytes", policed, free)
	}
	if silver.Drops != 0 || silver.Bytes*4 < free.Bytes {
		t.Errorf("silver %+v: want it unpoliced", silver)
	}
}

// TestClsactFallback: the tc programs attached as clsact cls_bpf filters
// (what kernels before 6.6, without TCX, get) classify a container's
// traffic the same way, and closing an unpinned filter removes it.
func TestClsactFallback(t *testing.T) {
	tp := newTopo(t)
	if err := tp.c.AttachSockets(tp.cg); err != nil {
		t.Fatal(err)
	}
	var filters []*clsactFilter
	if err := tp.host.Do(func() error {
		for _, a := range []struct {
			dev  string
			prog *cebpf.Program
			hook tcHook
		}{{"hveth0", tp.c.objs.StampVeth, hookIngress}, {"up0", tp.c.objs.StampUplink, hookEgress}} {
			l, err := tp.host.Handle.LinkByName(a.dev)
			if err != nil {
				return err
			}
			f, err := newClsactFilter(l.Attrs().Index, a.prog, a.hook)
			if err != nil {
				return err
			}
			filters = append(filters, f)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	bronze := filepath.Join(tp.cg, "bronze")
	if got := tp.landed(t, bronze, tp.ctr, 1024); got != netqos.Bronze {
		t.Fatalf("container bronze through clsact filters landed in %s", got)
	}
	if err := tp.host.Do(func() error {
		return errors.Join(filters[0].Close(), filters[1].Close())
	}); err != nil {
		t.Fatal(err)
	}
	if got := tp.landed(t, bronze, tp.ctr, 1024); got != netqos.Gold {
		t.Errorf("after the filters closed, container bronze landed in %s, want gold", got)
	}
}
