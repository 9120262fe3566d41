package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	agentBin     string
	cgroupRoot   string
	outDir       string
	rounds       int
	httpRounds   int
	duration     time.Duration
	warmup       time.Duration
	levelWarmup  time.Duration
	calibrate    time.Duration
	levels       []int
	httpLevels   []int
	redisConns   int
	httpConns    int
	httpItems    int
	httpWorkRnds int
	maxLag       time.Duration
	policyExtra  string
	// pinned capacities (req/s), 0 = use the measured one
	redisCapacity, httpCapacity float64
	// only, when set, lists the conditions to run; nil runs all.
	only  map[condition]bool
	keep  bool
	quick bool
}

func main() {
	// Subcommands the driver runs in the benchmark's cgroups.
	if len(os.Args) > 1 {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := subcommand(ctx, os.Args[1], os.Args[2:]); err != nil {
			if !errors.Is(err, errNotSubcommand) {
				fmt.Fprintf(os.Stderr, "colo %s: %v\n", os.Args[1], err)
				os.Exit(1)
			}
		} else {
			return
		}
	}
	o, err := parseOptions(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "colo: %v\n", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		fmt.Fprintf(os.Stderr, "colo: %v\n", err)
		os.Exit(1)
	}
}

var errNotSubcommand = errors.New("not a subcommand")

func subcommand(ctx context.Context, name string, args []string) error {
	switch name {
	case "loadgen":
		o, err := parseLoadgenFlags(args)
		if err != nil {
			return err
		}
		return runLoadgen(ctx, o, os.Stdout)
	case "serve-cpu":
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		addr := fs.String("addr", "127.0.0.1:0", "listen address")
		items := fs.Int("items", 40, "records per JSON document")
		rounds := fs.Int("rounds", 4, "encode+decode+hash rounds per request")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return serveCPU(ctx, *addr, *items, *rounds)
	case "stalls":
		o, err := parseStallsFlags(args)
		if err != nil {
			return err
		}
		return runStalls(ctx, o, os.Stdout)
	case "spin":
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		n := fs.Int("n", runtime.NumCPU(), "busy threads")
		if err := fs.Parse(args); err != nil {
			return err
		}
		// A bare load of one flag per turn: the loop must cost nothing
		// but CPU time, and is stopped by SIGKILL or SIGTERM.
		var stop atomic.Bool
		for range *n {
			go func() {
				for !stop.Load() {
				}
			}()
		}
		<-ctx.Done()
		stop.Store(true)
		return nil
	}
	return errNotSubcommand
}

func parseLevels(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 1 || v > 100 {
			return nil, fmt.Errorf("load level %q: want a percent of capacity, 1-100", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func parseOptions(args []string) (options, error) {
	var o options
	var levels, httpLevels, conds string
	fs := flag.NewFlagSet("colo", flag.ContinueOnError)
	fs.StringVar(&o.agentBin, "agent", "bin/sluice-agent", "sluice-agent binary (make build)")
	fs.StringVar(&o.cgroupRoot, "cgroup-root", "/sys/fs/cgroup", "cgroup mount root (v1 cpu, cpuacct, memory below it)")
	fs.StringVar(&o.outDir, "out", "bin/bench-colo", "directory for the SVG plots")
	fs.IntVar(&o.rounds, "rounds", 5, "rounds for redis; every condition at every level once per round, interleaved")
	fs.IntVar(&o.httpRounds, "http-rounds", 3, "rounds for the cpu service (at most -rounds)")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "measured window per cell")
	fs.DurationVar(&o.warmup, "warmup", 15*time.Second, "warm-up before each service's first window in a condition: longer than the agent's ramp from its floor (default policy: 1 s hold, then 25% of capacity a second: under 5 s)")
	fs.DurationVar(&o.levelWarmup, "level-warmup", 5*time.Second, "warm-up after a load level change within a condition")
	fs.DurationVar(&o.calibrate, "calibrate", 5*time.Second, "closed-loop capacity measurement per service")
	fs.StringVar(&levels, "levels", "20,40,60", "redis load levels, percent of measured capacity")
	fs.StringVar(&httpLevels, "http-levels", "20,60", "cpu service load levels, percent of measured capacity")
	fs.IntVar(&o.redisConns, "redis-conns", 32, "redis connections (one worker each)")
	fs.IntVar(&o.httpConns, "http-conns", 16, "cpu service connections (one worker each)")
	fs.IntVar(&o.httpItems, "http-items", 40, "cpu service: records per JSON document")
	fs.IntVar(&o.httpWorkRnds, "http-work-rounds", 4, "cpu service: encode+decode+hash rounds per request")
	fs.DurationVar(&o.maxLag, "max-lag", 5*time.Millisecond, "discard a window whose dispatcher lag p99 exceeds this (the load generator was starved)")
	fs.StringVar(&o.policyExtra, "policy-extra", "", "YAML lines appended to the agent's policy (default: none, the default policy)")
	fs.StringVar(&conds, "conditions", "", "comma-separated conditions to run (default: all six; a subset is for exploring, not for the report's goal verdicts)")
	fs.Float64Var(&o.redisCapacity, "redis-capacity", 0, "redis capacity in req/s that load levels are shares of, instead of the one calibration measures (which still runs and fills the keyspace): for comparing runs, whose calibrations differ")
	fs.Float64Var(&o.httpCapacity, "http-capacity", 0, "the cpu service's capacity in req/s, as -redis-capacity")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (agent logs, policies, stress-ng output)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	// A short window is the quick look (ROUNDS=1 DURATION=10s): it must
	// finish in under 5 minutes, so unless told otherwise it runs fewer
	// levels and shorter warm-ups. Its figures are a smoke test, not data.
	if o.duration < 30*time.Second {
		o.quick = true
		defaults := map[string]func(){
			"levels":       func() { levels = "20,60" },
			"http-levels":  func() { httpLevels = "60" },
			"warmup":       func() { o.warmup = 4 * time.Second },
			"level-warmup": func() { o.levelWarmup = 2 * time.Second },
			"calibrate":    func() { o.calibrate = 2 * time.Second },
		}
		for name, f := range defaults {
			if !set[name] {
				f()
			}
		}
	}
	var err error
	if o.levels, err = parseLevels(levels); err != nil {
		return o, fmt.Errorf("-levels: %w", err)
	}
	if o.httpLevels, err = parseLevels(httpLevels); err != nil {
		return o, fmt.Errorf("-http-levels: %w", err)
	}
	if o.only, err = parseConditions(conds); err != nil {
		return o, fmt.Errorf("-conditions: %w", err)
	}
	o.httpRounds = min(o.httpRounds, o.rounds)
	if o.redisCapacity < 0 || o.httpCapacity < 0 {
		return o, fmt.Errorf("-redis-capacity %v, -http-capacity %v: a capacity is positive (or 0: measured)", o.redisCapacity, o.httpCapacity)
	}
	if o.rounds < 1 || o.httpRounds < 0 || o.duration < time.Second || o.warmup < 0 || o.levelWarmup < 0 || o.redisConns < 1 || o.httpConns < 1 {
		return o, fmt.Errorf("-rounds %d, -http-rounds %d, -duration %v, -warmup %v, -level-warmup %v, -redis-conns %d, -http-conns %d: out of range",
			o.rounds, o.httpRounds, o.duration, o.warmup, o.levelWarmup, o.redisConns, o.httpConns)
	}
	return o, nil
}

// services are the online services the run measures: redis always, the
// cpu service unless -http-rounds is 0 (then it is neither started,
// calibrated nor reported).
func (o options) services() []*service {
	out := []*service{{name: "redis", conns: o.redisConns, levels: o.levels, rounds: o.rounds, pinnedRPS: o.redisCapacity}}
	if o.httpRounds > 0 {
		out = append(out, &service{name: "http", conns: o.httpConns, levels: o.httpLevels, rounds: o.httpRounds, pinnedRPS: o.httpCapacity})
	}
	return out
}

// conditionsRun counts the conditions -conditions leaves in.
func (o options) conditionsRun() int {
	n := 0
	for k := range numConditions {
		if o.runs(k) {
			n++
		}
	}
	return n
}

// estimate is how long the run will take, roughly: every window with its
// warm-up, plus calibration.
func (o options) estimate() time.Duration {
	perService := func(levels int) time.Duration {
		return o.warmup - o.levelWarmup + time.Duration(levels)*(o.duration+o.levelWarmup)
	}
	d := time.Duration(len(o.services())) * (o.calibrate + time.Second)
	for r := range o.rounds {
		perCond := perService(len(o.levels)) + 2*time.Second // agent start, burners' stop
		if r < o.httpRounds {
			perCond += perService(len(o.httpLevels))
		}
		d += time.Duration(o.conditionsRun()) * perCond
	}
	return d
}

func run(ctx context.Context, o options, log *slog.Logger) (err error) {
	if os.Geteuid() != 0 {
		return fmt.Errorf("must run as root: it makes v1 cgroups and runs sluice-agent (euid %d)", os.Geteuid())
	}
	for _, b := range []string{"redis-server", "stress-ng"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%s not found (Debian packages redis-server, stress-ng): %w", b, err)
		}
	}
	if _, err := os.Stat(o.agentBin); err != nil {
		return fmt.Errorf("sluice-agent binary (run make build, or pass -agent): %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	t := tree{root: o.cgroupRoot, base: "/sluice-colo-" + hex.EncodeToString(rnd[:])}
	dir, err := os.MkdirTemp("", "sluice-colo-")
	if err != nil {
		return err
	}
	defer func() {
		if o.keep || err != nil {
			log.Info("raw outputs kept", "dir", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()
	// Cleanup runs on every exit path, Ctrl-C included.
	defer func() {
		if kerr := t.killAll(10 * time.Second); kerr != nil {
			err = errors.Join(err, kerr)
		}
		if rerr := t.remove(); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	if err := t.create(); err != nil {
		return err
	}
	b := &bench{o: o, t: t, dir: dir, self: self, cpus: runtime.NumCPU(), log: log,
		services: o.services()}
	log.Info("starting", "cgroups", t.base, "estimate", o.estimate().Round(time.Second), "quick", o.quick)
	defer b.stopServices()
	if err := b.startServices(ctx); err != nil {
		return err
	}
	if err := b.calibrate(ctx); err != nil {
		return err
	}
	started := time.Now()
	var cells []cell
	for round := range o.rounds {
		for _, k := range conditionOrder(round) {
			if !o.runs(k) {
				continue
			}
			cs, err := b.runCondition(ctx, k, round)
			cells = append(cells, cs...)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round+1, k, err)
			}
		}
	}
	rep := report{o: o, cpus: b.cpus, services: b.services, cells: cells, took: time.Since(started)}
	rep.write(os.Stdout)
	files, err := rep.writePlots(o.outDir)
	if err != nil {
		return err
	}
	fmt.Printf("\nplots: %s\n", strings.Join(files, " "))
	return nil
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// pingRedis sends one PING and expects +PONG.
func pingRedis(addr string) error {
	c, err := dialRESP(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	rep, err := c.command(ctx, []byte("PING"))
	if err != nil {
		return err
	}
	if rep.Kind != '+' || string(rep.Str) != "PONG" {
		return fmt.Errorf("redis at %s answered %c%q to PING", addr, rep.Kind, rep.Str)
	}
	return nil
}
