package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/sluicehq/sluice/netqos"
	"github.com/sluicehq/sluice/netqos/tc"
	"github.com/sluicehq/sluice/test/kerneltest"
)

type config struct {
	linkBits     uint64
	reqBytes     int
	reqPerSec    int
	round        time.Duration
	rounds       int
	tick         time.Duration
	gold, silver uint64
	headroom     uint64
	ramp         uint64
	conns        int
}

// Child roles: the bulk flow runs in processes of its own, so that its
// CPU and garbage do not stall the online driver's runtime.
const (
	roleEnv  = "NETBENCH_ROLE" // "sink" or "bulk"
	nsEnv    = "NETBENCH_NETNS"
	addrEnv  = "NETBENCH_ADDR"
	prioEnv  = "NETBENCH_PRIO"
	roleSink = "sink"
	roleBulk = "bulk"
)

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		fail(child(role)) // runs until killed
	}
	var c config
	var link, gold, silver, head, ramp string
	short := flag.Bool("short", false, "a quick check that the driver works: 2 rounds of 3 s")
	flag.StringVar(&link, "link", "200Mbit", "the shaped link's rate")
	flag.StringVar(&gold, "gold", "10Mbit", "gold's guaranteed rate")
	flag.StringVar(&silver, "silver", "100Mbit", "silver's guaranteed rate")
	flag.StringVar(&head, "headroom", "10Mbit", "headroom kept free of bronze")
	flag.StringVar(&ramp, "ramp", "200Mbit", "bronze's ceiling growth per second")
	flag.IntVar(&c.reqBytes, "req-bytes", 16<<10, "online request size (the reply is 64 bytes)")
	flag.IntVar(&c.reqPerSec, "rps", 500, "online requests per second (open loop)")
	flag.IntVar(&c.conns, "conns", 32, "online connections")
	flag.DurationVar(&c.round, "round", 10*time.Second, "length of one condition in one round")
	flag.IntVar(&c.rounds, "rounds", 5, "rounds (conditions interleaved in each)")
	flag.DurationVar(&c.tick, "tick", 100*time.Millisecond, "the dynamic controller's tick")
	flag.Parse()
	if *short {
		c.round, c.rounds = 3*time.Second, 2
	}
	for _, r := range []struct {
		s   string
		dst *uint64
	}{{link, &c.linkBits}, {gold, &c.gold}, {silver, &c.silver}, {head, &c.headroom}, {ramp, &c.ramp}} {
		v, err := parseRate(r.s)
		if err != nil {
			fail(err)
		}
		*r.dst = v
	}
	if err := run(c); err != nil {
		fail(err)
	}
}

// child runs a role inside the namespace named by NETBENCH_NETNS until
// killed: the sink prints the bytes it received so far every 100 ms; the
// bulk sender writes as fast as it can with its socket priority. It
// returns only on failure.
func child(role string) error {
	runtime.LockOSThread() // the main goroutine stays on the switched thread
	h, err := netns.GetFromName(os.Getenv(nsEnv))
	if err != nil {
		return err
	}
	if err := netns.Set(h); err != nil {
		return err
	}
	addr := os.Getenv(addrEnv)
	switch role {
	case roleSink:
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		var total atomic.Uint64
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					buf := make([]byte, 256<<10)
					for {
						n, err := c.Read(buf)
						total.Add(uint64(n))
						if err != nil {
							c.Close()
							return
						}
					}
				}()
			}
		}()
		for {
			fmt.Println(total.Load())
			time.Sleep(100 * time.Millisecond)
		}
	case roleBulk:
		var prio int
		if _, err := fmt.Sscan(os.Getenv(prioEnv), &prio); err != nil {
			return fmt.Errorf("%s: %w", prioEnv, err)
		}
		c, err := dialPrio(addr, uint32(prio))
		if err != nil {
			return err
		}
		buf := make([]byte, 256<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("unknown role %q", role)
}

func startChild(role string, n *ns, addr string, prio uint32) (*exec.Cmd, io.ReadCloser, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), roleEnv+"="+role, nsEnv+"="+n.name, addrEnv+"="+addr, fmt.Sprintf("%s=%d", prioEnv, prio))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	return cmd, out, cmd.Start()
}

func stopChild(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "netbench:", err)
	os.Exit(1)
}

func parseRate(s string) (uint64, error) {
	for _, u := range []struct {
		suf  string
		mult float64
	}{{"Gbit", 1e9}, {"Mbit", 1e6}, {"kbit", 1e3}} {
		if num, ok := strings.CutSuffix(s, u.suf); ok {
			var v float64
			if _, err := fmt.Sscanf(num, "%g", &v); err != nil || v <= 0 {
				return 0, fmt.Errorf("rate %q: want e.g. 200Mbit", s)
			}
			return uint64(v * u.mult), nil
		}
	}
	return 0, fmt.Errorf("rate %q: want e.g. 200Mbit", s)
}

// ns is a named network namespace.
type ns struct {
	name string
	h    netns.NsHandle
	nl   *netlink.Handle
}

func newNS(name string) (*ns, error) {
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %v: %s", name, err, out)
	}
	h, err := netns.GetFromName(name)
	if err != nil {
		return nil, err
	}
	nl, err := netlink.NewHandleAt(h, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	return &ns{name: name, h: h, nl: nl}, nil
}

func (n *ns) close() {
	n.nl.Close()
	n.h.Close()
	_ = exec.Command("ip", "netns", "del", n.name).Run()
}

func (n *ns) ip(args ...string) error {
	out, err := exec.Command("nsenter", append([]string{"--net=/run/netns/" + n.name, "ip"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s in %s: %v: %s", strings.Join(args, " "), n.name, err, out)
	}
	return nil
}

// do runs f on a thread inside the namespace.
func (n *ns) do(f func() error) error { return kerneltest.InNetns(n.h, f) }

type env struct {
	host, remote *ns
	e            *tc.Enforcer
	links        []netqos.Link
	pol          netqos.Policy
}

func setup(c config) (*env, error) {
	suffix := fmt.Sprintf("%d", os.Getpid())
	host, err := newNS("slbench-host-" + suffix)
	if err != nil {
		return nil, err
	}
	remote, err := newNS("slbench-remote-" + suffix)
	if err != nil {
		host.close()
		return nil, err
	}
	en := &env{host: host, remote: remote}
	fail := func(err error) (*env, error) { en.close(); return nil, err }
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "up0", TxQLen: 1000, Namespace: netlink.NsFd(int(host.h))},
		PeerName: "down0", PeerNamespace: netlink.NsFd(int(remote.h))}
	if err := netlink.LinkAdd(veth); err != nil {
		return fail(fmt.Errorf("veth: %w", err))
	}
	for _, s := range []struct {
		n         *ns
		dev, addr string
	}{{host, "up0", "10.231.0.1/24"}, {remote, "down0", "10.231.0.2/24"}} {
		for _, args := range [][]string{{"addr", "add", s.addr, "dev", s.dev}, {"link", "set", s.dev, "up"}, {"link", "set", "lo", "up"}} {
			if err := s.n.ip(args...); err != nil {
				return fail(err)
			}
		}
	}
	en.pol = netqos.Policy{Devices: []string{"up0"}, LinkRateBitsPerSec: c.linkBits,
		GoldRateBitsPerSec: c.gold, SilverRateBitsPerSec: c.silver, HeadroomBitsPerSec: c.headroom,
		RampBitsPerSecPerSec: c.ramp}
	if err := en.pol.Validate(); err != nil {
		return fail(err)
	}
	if en.e, err = tc.New(tc.Config{Handle: host.nl, LeafQdisc: "-", Log: slog.New(slog.DiscardHandler)}); err != nil {
		return fail(err)
	}
	if en.links, err = en.e.Links(en.pol); err != nil {
		return fail(err)
	}
	return en, nil
}

func (en *env) close() {
	en.host.close()
	en.remote.close()
}

// condition is one way of running the link.
type condition struct {
	name    string
	bulk    bool
	install func(en *env) error
	// loop runs until ctx ends (the dynamic controller); nil for none.
	loop func(ctx context.Context, en *env) error
}

// noTiers is one class at the link rate: a FIFO every flow shares.
func noTiers(en *env) error {
	l := en.pol.LinkRateBitsPerSec
	tree := netqos.Tree{
		Root: netqos.Qdisc{Handle: netqos.RootHandle(), Parent: netqos.RootParent, Kind: "htb", DefaultClass: netqos.LinkClassID()},
		Classes: []netqos.Class{{ID: netqos.LinkClassID(), Parent: netqos.RootHandle(), RateBitsPerSec: l, CeilBitsPerSec: l,
			BurstBytes: netqos.Burst(l), CburstBytes: netqos.Burst(l), QuantumBytes: netqos.Quantum(l)}},
	}
	return en.apply(tree)
}

// staticTiers holds bronze to its guaranteed share: the tree with
// bronze's ceiling at its floor.
func staticTiers(en *env) error {
	tree, err := netqos.Desire(en.pol, en.links[0], 0)
	if err != nil {
		return err
	}
	return en.apply(tree)
}

func (en *env) apply(tree netqos.Tree) error {
	// Start every condition from the kernel's default root.
	_ = en.e.Apply(context.Background(), netqos.Plan{Devices: []netqos.DevicePlan{{Device: "up0"}}})
	for _, r := range en.e.Apply(context.Background(), netqos.Plan{Devices: []netqos.DevicePlan{{Device: "up0", Tree: tree}}}) {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

// dynamic runs Sluice's controller: read counters, Decide, apply, each tick.
func dynamic(ctx context.Context, en *env, tick time.Duration) error {
	var st netqos.State
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		sig, _, err := en.e.Read(en.links)
		if err != nil {
			return err
		}
		var plan netqos.Plan
		plan, st = netqos.Decide(netqos.Signals{At: time.Now(), Devices: sig}, en.pol, st)
		for _, r := range en.e.Apply(ctx, plan) {
			if r.Err != nil && ctx.Err() == nil {
				return r.Err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

type result struct {
	p50, p99 time.Duration
	bulkBits float64
	onlBits  float64
	requests int
}

func run(c config) error {
	en, err := setup(c)
	if err != nil {
		return err
	}
	defer en.close()
	srv, err := startServers(en)
	if err != nil {
		return err
	}
	defer srv.close()
	conds := []condition{
		{name: "online alone", install: noTiers},
		{name: "bronze flood, no tiers", bulk: true, install: noTiers},
		{name: "bronze flood, static tiers", bulk: true, install: staticTiers},
		{name: "bronze flood, Sluice dynamic tiers", bulk: true, install: staticTiers,
			loop: func(ctx context.Context, en *env) error { return dynamic(ctx, en, c.tick) }},
	}
	results := make([][]result, len(conds))
	fmt.Fprintf(os.Stderr, "netbench: link %s, online %d x %d B/s, %d rounds of %s per condition\n",
		netqos.FormatRate(c.linkBits), c.reqPerSec, c.reqBytes, c.rounds, c.round)
	for r := 0; r < c.rounds; r++ {
		// Interleave, rotating the order each round so no condition always
		// follows the same one.
		for k := range conds {
			i := (k + r) % len(conds)
			res, err := runCondition(c, en, srv, conds[i])
			if err != nil {
				return fmt.Errorf("%s: %w", conds[i].name, err)
			}
			fmt.Fprintf(os.Stderr, "  round %d %-36s p99 %8s bronze %6.1f Mbit/s\n", r+1, conds[i].name, res.p99.Round(10*time.Microsecond), res.bulkBits/1e6)
			results[i] = append(results[i], res)
		}
	}
	report(os.Stdout, c, conds, results)
	return nil
}

type servers struct {
	online    net.Listener
	sink      *exec.Cmd
	bulkBytes atomic.Uint64
}

func (s *servers) close() {
	s.online.Close()
	stopChild(s.sink)
}

func startServers(en *env) (*servers, error) {
	s := &servers{}
	err := en.remote.do(func() (err error) {
		s.online, err = net.Listen("tcp", "10.231.0.2:7001")
		return err
	})
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := s.online.Accept()
			if err != nil {
				return
			}
			go serveOnline(c)
		}
	}()
	sink, out, err := startChild(roleSink, en.remote, "10.231.0.2:7002", 0)
	if err != nil {
		s.online.Close()
		return nil, fmt.Errorf("bulk sink: %w", err)
	}
	s.sink = sink
	lines := bufio.NewScanner(out)
	if !lines.Scan() {
		s.close()
		return nil, errors.New("bulk sink did not start")
	}
	go func() {
		for lines.Scan() {
			var n uint64
			if _, err := fmt.Sscan(lines.Text(), &n); err == nil {
				s.bulkBytes.Store(n)
			}
		}
	}()
	return s, nil
}

// serveOnline answers each length-prefixed request with 64 bytes.
func serveOnline(c net.Conn) {
	defer c.Close()
	var hdr [4]byte
	reply := make([]byte, 64)
	buf := make([]byte, 1<<20)
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if n > len(buf) {
			return
		}
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			return
		}
		if _, err := c.Write(reply); err != nil {
			return
		}
	}
}

func dial(en *env, addr string, prio uint32) (net.Conn, error) {
	var c net.Conn
	err := en.host.do(func() (err error) {
		c, err = dialPrio(addr, prio)
		return err
	})
	return c, err
}

// dialPrio connects from the calling thread's namespace with the socket
// priority prio (the tier's class, as the classifier stamps it).
func dialPrio(addr string, prio uint32) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PRIORITY, int(prio))
		}); err != nil {
			return err
		}
		return serr
	}}
	return d.Dial("tcp", addr)
}

func runCondition(c config, en *env, srv *servers, cond condition) (result, error) {
	if err := cond.install(en); err != nil {
		return result{}, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	loopErr := make(chan error, 1)
	if cond.loop != nil {
		wg.Add(1)
		go func() { defer wg.Done(); loopErr <- cond.loop(ctx, en) }()
	}
	var bulk *exec.Cmd
	if cond.bulk {
		var err error
		if bulk, _, err = startChild(roleBulk, en.host, "10.231.0.2:7002", netqos.ClassID(netqos.Bronze)); err != nil {
			return result{}, fmt.Errorf("bulk sender: %w", err)
		}
	}
	// Warm up: let the bulk flow fill its queue and the controller settle.
	time.Sleep(time.Second)
	bulkStart, t0 := srv.bulkBytes.Load(), time.Now()
	lat, onl, err := online(c, en)
	// Over the time the online run really took: late replies stretch it.
	bulkBits := float64(srv.bulkBytes.Load()-bulkStart) * 8 / time.Since(t0).Seconds()
	cancel()
	if bulk != nil {
		stopChild(bulk)
	}
	wg.Wait()
	select {
	case lerr := <-loopErr:
		if lerr != nil {
			return result{}, fmt.Errorf("controller: %w", lerr)
		}
	default:
	}
	if err != nil {
		return result{}, err
	}
	slices.Sort(lat)
	res := result{requests: len(lat), bulkBits: bulkBits, onlBits: onl}
	if len(lat) > 0 {
		res.p50 = lat[len(lat)/2]
		res.p99 = lat[len(lat)*99/100]
	}
	return res, nil
}

// online drives the request/response service open-loop for one round and
// returns every request's latency from its scheduled start, and the
// online bit rate achieved.
func online(c config, en *env) ([]time.Duration, float64, error) {
	type req struct{ at time.Time }
	queues := make([]chan req, c.conns)
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	var firstErr atomic.Value
	conns := make([]net.Conn, c.conns)
	for i := range queues {
		conn, err := dial(en, "10.231.0.2:7001", netqos.ClassID(netqos.Silver))
		if err != nil {
			return nil, 0, err
		}
		conns[i] = conn
		// One untimed request opens the connection's window.
		if err := roundTrip(conn, c.reqBytes); err != nil {
			return nil, 0, err
		}
		queues[i] = make(chan req, 1<<16)
		wg.Add(1)
		go func(conn net.Conn, q chan req) {
			defer wg.Done()
			defer conn.Close()
			msg := make([]byte, 4+c.reqBytes)
			binary.BigEndian.PutUint32(msg, uint32(c.reqBytes))
			reply := make([]byte, 64)
			for r := range q {
				if d := time.Until(r.at); d > 0 {
					time.Sleep(d)
				}
				if _, err := conn.Write(msg); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if _, err := io.ReadFull(conn, reply); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				d := time.Since(r.at)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}(conn, queues[i])
	}
	n := int(c.round.Seconds() * float64(c.reqPerSec))
	start := time.Now().Add(50 * time.Millisecond)
	interval := time.Second / time.Duration(c.reqPerSec)
	for i := 0; i < n; i++ {
		queues[i%c.conns] <- req{at: start.Add(time.Duration(i) * interval)}
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil && !errors.Is(err, net.ErrClosed) {
		return nil, 0, err
	}
	return lat, float64(n*c.reqBytes*8) / c.round.Seconds(), nil
}

func roundTrip(conn net.Conn, size int) error {
	msg := make([]byte, 4+size)
	binary.BigEndian.PutUint32(msg, uint32(size))
	if _, err := conn.Write(msg); err != nil {
		return err
	}
	_, err := io.ReadFull(conn, make([]byte, 64))
	return err
}

func report(w io.Writer, c config, conds []condition, results [][]result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "condition\tonline p50\tonline p99 median\tp99 min..max\tp99 / alone\tbronze Mbit/s\tbronze of idle\t\n")
	alone := median(results[0], func(r result) float64 { return float64(r.p99) })
	for i, cond := range conds {
		rs := results[i]
		p50 := median(rs, func(r result) float64 { return float64(r.p50) })
		p99 := median(rs, func(r result) float64 { return float64(r.p99) })
		lo, hi := spread(rs, func(r result) float64 { return float64(r.p99) })
		bulk := median(rs, func(r result) float64 { return r.bulkBits })
		onl := median(rs, func(r result) float64 { return r.onlBits })
		idle := float64(c.linkBits) - onl
		share := "-"
		if cond.bulk && idle > 0 {
			share = fmt.Sprintf("%.0f%%", 100*bulk/idle)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s..%s\t%.2f\t%.1f\t%s\t\n", cond.name,
			dur(p50), dur(p99), dur(lo), dur(hi), p99/alone, bulk/1e6, share)
	}
	tw.Flush()
	fmt.Fprintf(w, "(link %s; online %d req/s of %d B open-loop over %d connections; %d rounds of %s, conditions interleaved; medians over rounds; this machine is shared, so figures are noisy)\n",
		netqos.FormatRate(c.linkBits), c.reqPerSec, c.reqBytes, c.conns, c.rounds, c.round)
}

func dur(ns float64) string { return time.Duration(ns).Round(10 * time.Microsecond).String() }

func median(rs []result, f func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func spread(rs []result, f func(result) float64) (float64, float64) {
	lo, hi := f(rs[0]), f(rs[0])
	for _, r := range rs[1:] {
		lo, hi = min(lo, f(r)), max(hi, f(r))
	}
	return lo, hi
}
