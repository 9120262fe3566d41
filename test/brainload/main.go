// Command brainload measures sluice-brain under a fleet of protocol-level
// simulated agents on loopback. It starts the brain binary as its own
// process (so its CPU and RSS are its own) on an embedded etcd in a temp
// dir, then:
//
//  1. registers -agents hosts, each heartbeating at the interval the
//     brain hands out (forced with -heartbeat) and following its target;
//
//  2. idles -idle long and reads the brain's CPU time and RSS from /proc;
//
//  3. submits -jobs one-replica jobs from -clients concurrent clients and
//     reports persisted placements per second (each submission returns
//     once its placement is committed);
//
//  4. reports target propagation: from each submission's return (its
//     commit) to the agent's acknowledgement, p50/p99, and the brain's
//     own commit-to-ack histogram.
//
//     go run ./test/brainload -brain bin/sluice-brain -agents 1000 -jobs 2000
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
)

type options struct {
	brain     string
	agents    int
	jobs      int
	clients   int
	heartbeat time.Duration
	idle      time.Duration
	trickle   int
	profile   string
	h2c       bool
}

func main() {
	var o options
	flag.StringVar(&o.brain, "brain", "bin/sluice-brain", "sluice-brain binary")
	flag.IntVar(&o.agents, "agents", 1000, "simulated agents")
	flag.IntVar(&o.jobs, "jobs", 2000, "one-replica jobs to submit")
	flag.IntVar(&o.clients, "clients", 1000, "concurrent submitting clients")
	flag.DurationVar(&o.heartbeat, "heartbeat", time.Second, "heartbeat interval forced on agents")
	flag.DurationVar(&o.idle, "idle", 30*time.Second, "how long to measure CPU and RSS with the fleet heartbeating")
	flag.IntVar(&o.trickle, "trickle", 200, "jobs submitted one at a time to measure propagation alone")
	flag.StringVar(&o.profile, "cpuprofile", "", "write the brain's CPU profile over the submission flood to this file")
	flag.BoolVar(&o.h2c, "h2c", false, "speak HTTP/2 without TLS to the brain (as agents will over TLS) instead of HTTP/1.1")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "brainload: %v\n", err)
		os.Exit(1)
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "brainload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b, err := startBrain(o, dir)
	if err != nil {
		return err
	}
	defer b.stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	fleet := newFleet(b.hc, b.url, o.agents)
	t0 := time.Now()
	if err := fleet.register(ctx); err != nil {
		return err
	}
	fmt.Printf("registered %d agents in %v\n", o.agents, time.Since(t0).Round(time.Millisecond))
	fleet.start(ctx)

	if err := measureIdle(o, b, fleet); err != nil {
		return err
	}
	op := brainv1connect.NewOperatorServiceClient(b.hc, b.url)
	profiled := b.profile(o.profile)
	m0, _ := scrapeSums(b.hc, b.url)
	cpu0, _ := procCPU(b.pid())
	self0, _ := procCPU(os.Getpid())
	commits, failed := submitFlood(ctx, o, op)
	cpu1, _ := procCPU(b.pid())
	self1, _ := procCPU(os.Getpid())
	// CPU time per placement holds still on a busy machine, where the
	// rate swings with what else runs.
	fmt.Printf("flood CPU: brain %.2fs (%.0fµs per placement), driver %.2fs (%.0fµs per placement)\n",
		(cpu1 - cpu0).Seconds(), float64((cpu1-cpu0).Microseconds())/float64(o.jobs),
		(self1 - self0).Seconds(), float64((self1-self0).Microseconds())/float64(o.jobs))
	if m1, err := scrapeSums(b.hc, b.url); err == nil {
		passes := m1["sluice_brain_reconcile_passes_total"] - m0["sluice_brain_reconcile_passes_total"]
		txns := m1[`sluice_brain_etcd_txn_seconds_count{result="ok"}`] - m0[`sluice_brain_etcd_txn_seconds_count{result="ok"}`]
		txnSec := m1[`sluice_brain_etcd_txn_seconds_sum{result="ok"}`] - m0[`sluice_brain_etcd_txn_seconds_sum{result="ok"}`]
		plans := m1["sluice_brain_reconcile_plan_seconds_count"] - m0["sluice_brain_reconcile_plan_seconds_count"]
		planSec := m1["sluice_brain_reconcile_plan_seconds_sum"] - m0["sluice_brain_reconcile_plan_seconds_sum"]
		fmt.Printf("flood passes: %.0f committed, %.0f placements each; plan %.1fms (%.0f plans), etcd txn %.1fms on average\n",
			passes, float64(o.jobs)/max(passes, 1), 1000*planSec/max(plans, 1), plans, 1000*txnSec/max(txns, 1))
	}
	if err := profiled(); err != nil {
		return err
	}
	reportFloodPropagation(fleet, commits, failed)
	if err := measureTrickle(ctx, o, op, fleet); err != nil {
		return err
	}
	m, err := scrape(b.hc, b.url)
	if err == nil {
		fmt.Printf("brain histogram commit -> ack: p50 <= %s, p99 <= %s (bucket bounds)\n", m.quantile(0.5), m.quantile(0.99))
	}
	rss, _ := procRSS(b.pid())
	fmt.Printf("brain RSS after submissions: %.1f MB\n", float64(rss)/(1<<20))
	return nil
}

// brain is the sluice-brain process under test and a client sized for
// the whole fleet.
type brain struct {
	cmd      *exec.Cmd
	url      string
	pprofURL string
	hc       *http.Client
}

// startBrain starts the brain on a free loopback port with its data in
// dir and waits until it is healthy.
func startBrain(o options, dir string) (*brain, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"--data-dir", dir, "--listen", addr, "--insecure-loopback", "--heartbeat-interval", o.heartbeat.String(), "--log-level", "warn"}
	var pprofAddr string
	if o.profile != "" {
		if pprofAddr, err = freePort(); err != nil {
			return nil, err
		}
		args = append(args, "--pprof-listen", pprofAddr)
	}
	cmd := exec.Command(o.brain, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start brain: %w", err)
	}
	tr := &http.Transport{MaxIdleConns: 4 * o.agents, MaxIdleConnsPerHost: 4 * o.agents, IdleConnTimeout: time.Minute}
	if o.h2c {
		// HTTP/2 as agents speak it once TLS is on (ALPN), here in clear
		// (the brain serves h2c): calls share connections.
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	b := &brain{cmd: cmd, url: "http://" + addr, pprofURL: "http://" + pprofAddr, hc: &http.Client{Transport: tr}}
	if err := waitHealthy(b.hc, b.url); err != nil {
		b.stop()
		return nil, err
	}
	return b, nil
}

func (b *brain) pid() int { return b.cmd.Process.Pid }

// profile starts a CPU profile of the brain long enough for the flood and
// returns a function that waits for it and writes it to file; with no
// file, nothing.
func (b *brain) profile(file string) func() error {
	if file == "" {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() {
		resp, err := b.hc.Get(b.pprofURL + "/debug/pprof/profile?seconds=4")
		if err != nil {
			done <- fmt.Errorf("cpu profile: %w", err)
			return
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err == nil {
			err = os.WriteFile(file, data, 0o644)
		}
		done <- err
	}()
	return func() error { return <-done }
}

func (b *brain) stop() {
	b.cmd.Process.Signal(os.Interrupt)
	b.cmd.Wait()
}

// measureIdle reports the brain's CPU and RSS with the fleet
// heartbeating and nothing else, after a few seconds to settle.
func measureIdle(o options, b *brain, fleet *fleet) error {
	time.Sleep(3 * time.Second)
	cpu0, err := procCPU(b.pid())
	if err != nil {
		return err
	}
	hb0 := fleet.heartbeats.Load()
	w0 := time.Now()
	time.Sleep(o.idle)
	cpu1, _ := procCPU(b.pid())
	wall := time.Since(w0)
	rss, _ := procRSS(b.pid())
	hbs := fleet.heartbeats.Load() - hb0
	fmt.Printf("idle fleet: %d agents, %.0f heartbeats/s: brain CPU %.3f cores, RSS %.1f MB (over %v); heartbeat errors %d\n",
		o.agents, float64(hbs)/wall.Seconds(), (cpu1-cpu0).Seconds()/wall.Seconds(), float64(rss)/(1<<20), wall.Round(time.Second), fleet.errors.Load())
	return nil
}

// submitFlood submits jobs 0..o.jobs-1 from o.clients concurrent clients
// and reports persisted placements per second. It returns when each job's
// submission returned (its commit; zero for a failed one) and how many
// failed.
func submitFlood(ctx context.Context, o options, op brainv1connect.OperatorServiceClient) ([]time.Time, int) {
	commits := make([]time.Time, o.jobs)
	jobs := make(chan int)
	var wg sync.WaitGroup
	var failed atomic.Int64
	s0 := time.Now()
	for range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := submitJob(ctx, op, i); err != nil {
					failed.Add(1)
					fmt.Fprintf(os.Stderr, "submit j%d: %v\n", i, err)
					continue
				}
				commits[i] = time.Now()
			}
		}()
	}
	for i := range o.jobs {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	el := time.Since(s0)
	fmt.Printf("submissions: %d jobs from %d concurrent clients in %v: %.0f persisted placements/s (%d failed)\n",
		o.jobs, o.clients, el.Round(time.Millisecond), float64(o.jobs-int(failed.Load()))/el.Seconds(), failed.Load())
	return commits, int(failed.Load())
}

// submitJob submits job jn: one replica, jn-0.
func submitJob(ctx context.Context, op brainv1connect.OperatorServiceClient, n int) error {
	file := fmt.Sprintf("version: 1\napps:\n  - {name: j%d, cpu: 100m, memory: 64Mi, image: busybox}\nrequests:\n  - {app: j%d, count: 1}\n", n, n)
	_, err := op.SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: []byte(file)}))
	return err
}

// reportFloodPropagation waits up to a minute for the fleet to
// acknowledge the flood's placements and reports, per replica, the time
// from its commit (submission return) to the agent's ack.
func reportFloodPropagation(fleet *fleet, commits []time.Time, failed int) {
	deadline := time.Now().Add(time.Minute)
	for fleet.acked() < len(commits)-failed && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	var lags []time.Duration
	for i, c := range commits {
		a, ok := fleet.ackAt(fmt.Sprintf("j%d-0", i))
		if ok && !c.IsZero() {
			lags = append(lags, max(0, a.Sub(c)))
		}
	}
	printLags("propagation under the submission flood", lags)
}

// measureTrickle submits o.trickle more jobs one at a time, each after
// the last was acknowledged, so the push path is not queued behind the
// flood, and reports their propagation.
func measureTrickle(ctx context.Context, o options, op brainv1connect.OperatorServiceClient, fleet *fleet) error {
	var lags []time.Duration
	for i := range o.trickle {
		n := o.jobs + i
		if err := submitJob(ctx, op, n); err != nil {
			return fmt.Errorf("trickle submit: %w", err)
		}
		c := time.Now()
		id := fmt.Sprintf("j%d-0", n)
		for {
			if a, ok := fleet.ackAt(id); ok {
				lags = append(lags, max(0, a.Sub(c)))
				break
			}
			if time.Since(c) > 10*time.Second {
				return fmt.Errorf("trickle: %s not acknowledged after 10s", id)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
	printLags("propagation one at a time", lags)
	return nil
}

// printLags sorts lags and prints their p50, p99 and max; nothing when
// there are none.
func printLags(what string, lags []time.Duration) {
	if len(lags) == 0 {
		return
	}
	slices.Sort(lags)
	fmt.Printf("%s (submission return -> agent ack), %d replicas: p50 %v p99 %v max %v\n",
		what, len(lags), q(lags, 0.5), q(lags, 0.99), lags[len(lags)-1])
}

func q(s []time.Duration, p float64) time.Duration {
	return s[min(len(s)-1, int(p*float64(len(s))))].Round(100 * time.Microsecond)
}

func waitHealthy(hc *http.Client, url string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := hc.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("brain not healthy after 2 minutes")
}

// procCPU is the process's user+system CPU time.
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) start after ')'.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticksPerSec = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSec, nil
}

func procRSS(pid int) (int64, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}

type histogram struct {
	bounds []float64
	counts []float64
}

func (h histogram) quantile(p float64) string {
	if len(h.counts) == 0 || h.counts[len(h.counts)-1] == 0 {
		return "n/a"
	}
	total := h.counts[len(h.counts)-1]
	for i, c := range h.counts {
		if c >= p*total {
			if i < len(h.bounds) {
				return (time.Duration(h.bounds[i] * float64(time.Second))).String()
			}
			return "+Inf"
		}
	}
	return "+Inf"
}

// scrapeSums reads every unlabelled or labelled sample of /metrics by its
// series name.
func scrapeSums(hc *http.Client, url string) (map[string]float64, error) {
	resp, err := hc.Get(url + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		series, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			out[series] = v
		}
	}
	return out, nil
}

// scrape reads the brain's push-lag histogram from /metrics.
func scrape(hc *http.Client, url string) (histogram, error) {
	resp, err := hc.Get(url + "/metrics")
	if err != nil {
		return histogram{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return histogram{}, err
	}
	var h histogram
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, `sluice_brain_target_push_lag_seconds_bucket{le="`)
		if !ok {
			continue
		}
		le, val, _ := strings.Cut(rest, `"} `)
		c, _ := strconv.ParseFloat(val, 64)
		if le != "+Inf" {
			b, _ := strconv.ParseFloat(le, 64)
			h.bounds = append(h.bounds, b)
		}
		h.counts = append(h.counts, c)
	}
	return h, nil
}
