// Command fleet runs thousands of protocol-level agents in one process
// against one sluice-brain process (its own CPU and RSS) with mutual TLS
// on, and measures the brain under a stated churn:
//
//   - every agent has its own host certificate and its own TLS
//     connection (HTTP/2: heartbeats, acknowledgements and its target
//     stream share it); the brain refuses any request not naming the
//     certificate's host, so agents cannot share connections;
//   - agents heartbeat at the interval the brain hands out (it grows with
//     the fleet: 10,000 hosts get ~67 s);
//   - -storm-at, when set, makes every agent heartbeat at once that far
//     into the window (a partition healing): the brain must shed in its
//     order and mark no host down, and job changes go on;
//   - churn: -restarts per minute an agent is killed (connection closed)
//     and comes back after -restart-pause with a new TLS handshake, the
//     same node ID and a target resync; -job-changes per minute a job is
//     submitted or deleted (a fixed pool of -jobs-kept one-replica jobs).
//
// It reports, over the -duration window after the ramp: the brain's CPU
// (cores) and RSS, target propagation (the submission's commit, i.e. its
// return to the client, to the acknowledgement by the placed host's
// agent; and the brain's own commit-to-ack histogram), hosts ever marked
// down (none is unhealthy) and evictions, what the brain shed under
// overload, and etcd's own write counters against the changes made.
//
//	make build && go run ./test/fleet -brain bin/sluice-brain -agents 10000 -duration 2m
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
	"github.com/sluicehq/sluice/brain/auth"
)

type options struct {
	brain        string
	agents       int
	duration     time.Duration
	restarts     float64
	restartPause time.Duration
	jobChanges   float64
	jobsKept     int
	ramp         int
	brainArgs    string
	stormAt      time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.brain, "brain", "bin/sluice-brain", "sluice-brain binary")
	flag.IntVar(&o.agents, "agents", 10000, "simulated agents")
	flag.DurationVar(&o.duration, "duration", 2*time.Minute, "measured window after the ramp")
	flag.Float64Var(&o.restarts, "restarts", 100, "agent restarts per minute (1% of 10,000)")
	flag.DurationVar(&o.restartPause, "restart-pause", 2*time.Second, "how long a restarted agent stays away")
	flag.Float64Var(&o.jobChanges, "job-changes", 100, "job submissions plus deletions per minute")
	flag.IntVar(&o.jobsKept, "jobs-kept", 50, "live jobs; beyond it each change deletes the oldest")
	flag.IntVar(&o.ramp, "ramp", 32, "agents registering at once during the ramp")
	flag.DurationVar(&o.stormAt, "storm-at", 0, "make every agent heartbeat at once this far into the window (0: never)")
	flag.StringVar(&o.brainArgs, "brain-args", "", "extra sluice-brain flags, space-separated")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "fleet: %v\n", err)
		os.Exit(1)
	}
}

func hostName(i int) string { return fmt.Sprintf("h-%05d", i) }

// pki writes the CA, the brain's and an admin's certificates to dir and
// issues every agent's host certificate in memory.
func pki(dir string, n int) (func(i int) *tls.Config, error) {
	now := time.Now()
	ca, err := auth.InitDir(dir, now)
	if err != nil {
		return nil, err
	}
	if err := ca.IssueFiles(dir, now, map[string]auth.Request{
		"brain": {Kind: auth.KindBrain, Name: "brain"},
		"admin": {Kind: auth.KindOperator, Name: "fleet", Scope: auth.ScopeAdmin},
	}); err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	certs := make([]*tls.Certificate, n)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 2 {
				is, err := ca.Issue(auth.Request{Kind: auth.KindHost, Name: hostName(i)}, now)
				if err != nil {
					errs <- err
					return
				}
				c, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
				if err != nil {
					errs <- err
					return
				}
				certs[i] = &c
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return func(i int) *tls.Config {
		c := auth.StaticClientConfig(certs[i], roots)
		c.ClientSessionCache = tls.NewLRUClientSessionCache(1)
		return c
	}, nil
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "fleet-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	t0 := time.Now()
	tlsFor, err := pki(dir, o.agents)
	if err != nil {
		return err
	}
	fmt.Printf("issued %d host certificates in %v\n", o.agents, time.Since(t0).Round(time.Millisecond))
	b, err := startBrain(o.brain, dir, strings.Fields(o.brainArgs))
	if err != nil {
		return err
	}
	defer b.stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	f := &fleet{url: b.url, tlsFor: tlsFor, seen: map[string]time.Time{}, storm: make(chan struct{})}
	for i := range o.agents {
		f.agents = append(f.agents, f.agentFor(i, hostName(i)))
	}
	mon := startMonitor(ctx, b)
	t0 = time.Now()
	sem := make(chan struct{}, o.ramp)
	var wg sync.WaitGroup
	for _, a := range f.agents {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := a.start(ctx); err != nil {
				fmt.Fprintf(os.Stderr, "start %s: %v\n", a.name, err)
			}
		}()
	}
	wg.Wait()
	ramp := time.Since(t0)
	fmt.Printf("ramp: %d agents registered over mutual TLS (one connection each) in %v (%.0f/s), %d register retries\n",
		o.agents, ramp.Round(time.Millisecond), float64(o.agents)/ramp.Seconds(), f.registerRetries.Load())
	time.Sleep(5 * time.Second)

	m0, err := b.scrape(ctx)
	if err != nil {
		return err
	}
	u0, err := procUsage(b.cmd.Process.Pid)
	if err != nil {
		return err
	}
	hb0, w0 := f.heartbeats.Load(), time.Now()
	mon.reset()
	ch := churn(ctx, o, f, b)
	if o.stormAt > 0 && o.stormAt < o.duration {
		time.Sleep(o.stormAt)
		hb := f.heartbeats.Load()
		close(f.storm)
		fmt.Printf("storm: every agent heartbeats now (%d heartbeats so far)\n", hb)
		time.Sleep(o.duration - o.stormAt)
	} else {
		time.Sleep(o.duration)
	}
	ch.stop()
	wall := time.Since(w0)
	u1, _ := procUsage(b.cmd.Process.Pid)
	// Give the last submissions' acknowledgements a moment before
	// counting what never arrived.
	time.Sleep(3 * time.Second)
	m1, err := b.scrape(ctx)
	if err != nil {
		return err
	}
	report(o, f, ch, mon, m0, m1, u0, u1, wall, f.heartbeats.Load()-hb0)
	return nil
}

// churner restarts agents and changes jobs at the stated rates.
type churner struct {
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	restarts atomic.Int64
	changes  atomic.Int64
	failed   atomic.Int64
	mu       sync.Mutex
	commits  map[string]time.Time // job -> submission returned (committed)
}

func churn(ctx context.Context, o options, f *fleet, b *brainProc) *churner {
	ctx, cancel := context.WithCancel(ctx)
	c := &churner{cancel: cancel, commits: map[string]time.Time{}}
	if o.restarts > 0 {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			every(ctx, time.Duration(float64(time.Minute)/o.restarts), func() {
				a := f.agents[rand.IntN(len(f.agents))]
				c.wg.Add(1)
				go func() {
					defer c.wg.Done()
					a.stop()
					select {
					case <-ctx.Done():
					case <-time.After(o.restartPause):
					}
					if err := a.start(ctx); err == nil {
						c.restarts.Add(1)
					}
				}()
			})
		}()
	}
	if o.jobChanges > 0 {
		op := brainv1connect.NewOperatorServiceClient(b.hc, b.url)
		var live []string
		n := 0
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			every(ctx, time.Duration(float64(time.Minute)/o.jobChanges), func() {
				var err error
				if len(live) >= o.jobsKept && n%2 == 1 {
					_, err = op.DeleteJob(ctx, connect.NewRequest(&brainv1.DeleteJobRequest{Name: live[0]}))
					live = live[1:]
				} else {
					name := fmt.Sprintf("churn-%d", n)
					file := fmt.Sprintf("version: 1\napps:\n  - {name: %s, cpu: 100m, memory: 64Mi, image: busybox, command: [sleep, inf]}\nrequests:\n  - {app: %s, count: 1}\n", name, name)
					_, err = op.SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: []byte(file), FileName: name + ".yaml"}))
					if err == nil {
						c.mu.Lock()
						c.commits[name] = time.Now()
						c.mu.Unlock()
						live = append(live, name)
					}
				}
				n++
				if err != nil && ctx.Err() == nil {
					c.failed.Add(1)
					fmt.Fprintf(os.Stderr, "job change: %v\n", err)
					return
				}
				c.changes.Add(1)
			})
		}()
	}
	return c
}

func (c *churner) stop() {
	c.cancel()
	c.wg.Wait()
}

// every calls fn every period (in its own goroutine's order) until ctx ends.
func every(ctx context.Context, period time.Duration, fn func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// monitor samples the brain's hosts-down gauge and RSS every 2 s.
type monitor struct {
	b          *brainProc
	mu         sync.Mutex
	maxDown    float64
	maxRSS     int64
	maxLevel   float64
	scrapeErrs int
}

func startMonitor(ctx context.Context, b *brainProc) *monitor {
	m := &monitor{b: b}
	go every(ctx, 2*time.Second, func() {
		s, err := b.scrape(ctx)
		u, uerr := procUsage(b.cmd.Process.Pid)
		m.mu.Lock()
		defer m.mu.Unlock()
		if err != nil {
			m.scrapeErrs++
			return
		}
		m.maxDown = max(m.maxDown, s.value("sluice_brain_hosts", "state", "down"))
		m.maxLevel = max(m.maxLevel, s.value("sluice_brain_overload_level"))
		if uerr == nil {
			m.maxRSS = max(m.maxRSS, u.rss)
		}
	})
	return m
}

func (m *monitor) reset() {
	m.mu.Lock()
	m.maxDown, m.maxRSS, m.maxLevel = 0, 0, 0
	m.mu.Unlock()
}

func report(o options, f *fleet, ch *churner, mon *monitor, m0, m1 metrics, u0, u1 usage, wall time.Duration, heartbeats int64) {
	d := func(name string, labels ...string) float64 {
		return m1.value(name, labels...) - m0.value(name, labels...)
	}
	fmt.Printf("settings: %d agents, mutual TLS, heartbeat interval as handed out (now %v), %.0f restarts/min (pause %v), %.0f job changes/min (%d jobs kept), window %v\n",
		o.agents, time.Duration(f.intervalMs.Load())*time.Millisecond, o.restarts, o.restartPause, o.jobChanges, o.jobsKept, wall.Round(time.Second))
	fmt.Printf("churn done: %d restarts, %d job changes (%d failed); %d heartbeats (%.0f/s), %d heartbeat errors, %d stream reconnects\n",
		ch.restarts.Load(), ch.changes.Load(), ch.failed.Load(), heartbeats, float64(heartbeats)/wall.Seconds(), f.heartbeatErrors.Load(), f.streamErrors.Load())
	fmt.Printf("brain CPU %.3f cores over the window; RSS %.0f MB now, %.0f MB peak sampled, %.0f MB high-water (ramp included)\n",
		(u1.cpu-u0.cpu).Seconds()/wall.Seconds(), float64(u1.rss)/(1<<20), float64(mon.maxRSS)/(1<<20), float64(u1.hwm)/(1<<20))

	ch.mu.Lock()
	var lat []time.Duration
	missing := 0
	for job, at := range ch.commits {
		seen, ok := f.seenAt(job + "-0")
		if !ok {
			missing++
			continue
		}
		lat = append(lat, seen.Sub(at))
	}
	ch.mu.Unlock()
	slices.Sort(lat)
	q := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(math.Ceil(p*float64(len(lat))))-1)]
	}
	fmt.Printf("target propagation (submission returned -> placed host's agent acknowledged), %d jobs: p50 %v, p99 %v, max %v; %d never acknowledged (host restarting or job deleted first)\n",
		len(lat), q(0.5).Round(time.Millisecond), q(0.99).Round(time.Millisecond), q(1).Round(time.Millisecond), missing)
	p50, n := histogramQuantile(m0, m1, "sluice_brain_target_push_lag_seconds", 0.5)
	p99, _ := histogramQuantile(m0, m1, "sluice_brain_target_push_lag_seconds", 0.99)
	fmt.Printf("brain's commit -> ack histogram over the window (%d acks, restarts' resyncs included): p50 <= %gs, p99 <= %gs (bucket bounds)\n", n, p50, p99)
	mon.mu.Lock()
	fmt.Printf("hosts down: at most %.0f during the window (every agent is healthy; restarted ones are away %v); evicted placements %.0f\n",
		mon.maxDown, o.restartPause, d("sluice_brain_placements_total", "result", "evicted"))
	fmt.Printf("overload: level at most %.0f; shed heartbeat detail %.0f, shed liveness %.0f\n",
		mon.maxLevel, d("sluice_brain_shed_total", "work", "heartbeat_detail"), d("sluice_brain_shed_total", "work", "liveness"))
	mon.mu.Unlock()
	puts, props := d("etcd_mvcc_put_total"), d("etcd_server_proposals_committed_total")
	changes := float64(ch.changes.Load() + ch.restarts.Load())
	fmt.Printf("etcd writes (etcd's own counters): %.0f puts, %.0f raft proposals committed, against %.0f job changes + restarts and %d heartbeats: %.2f proposals per change, %.4f per heartbeat\n",
		puts, props, changes, heartbeats, props/math.Max(changes, 1), props/math.Max(float64(heartbeats), 1))
}
