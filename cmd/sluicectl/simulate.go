package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/brain/openb"
	"github.com/sluicehq/sluice/brain/place"
	"github.com/sluicehq/sluice/brain/plan"
	"github.com/sluicehq/sluice/brain/sim"
	"github.com/sluicehq/sluice/brain/trace"
	"golang.org/x/term"
)

const simulateUsage = `usage: sluicectl simulate MODE [FLAGS]

modes:
  evaluate        replay a trace against strategies and score them
  pre-allocate    place a batch on an inventory; count the extra hosts the rest needs
  reproduce       replay requests against a saved brain snapshot (deterministic)
  generate-v2018  write a synthetic cluster-trace-v2018 (machine_meta.csv, container_meta.csv)
  generate        write a synthetic generic file of a large online cluster (curves, rules, existing placements)

Run "sluicectl simulate MODE -h" for a mode's flags. Examples:

  sluicectl simulate generate-v2018 -out /tmp/v2018 -seed 1
  sluicectl simulate generate -out /tmp/cluster.yaml -seed 1
  sluicectl simulate evaluate -format v2018 -in /tmp/v2018 -strategies spread,best-fit,fgd-pack -out /tmp/report
  sluicectl simulate evaluate -format openb -in DIR -openb-trace default -strategies best-fit,fgd -seeds 1,2,3 -out /tmp/openb
  sluicectl simulate pre-allocate -in cluster.yaml -host-type big -out /tmp/plan
  sluicectl simulate evaluate -in cluster.yaml -strategies random -seeds 3 -save-snapshot -out /tmp/s
  sluicectl simulate reproduce -snapshot /tmp/s/snapshot-random-3.json -requests more.json -out /tmp/r

The generic format is documented in brain/trace (go doc ./brain/trace).
Exit status: 0 done, 1 failed or constraint violations found, 2 bad usage.
`

// errViolations marks a run whose result breaks a constraint: the
// placement core has a bug, and the exit status says so.
var errViolations = errors.New("constraint violations found")

// runSimulate is "sluicectl simulate". Exit status: 0 done, 1 failed (or
// the validator found violations), 2 bad usage.
func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, simulateUsage)
		return 2
	}
	mode, rest := args[0], args[1:]
	var err error
	switch mode {
	case "evaluate", "pre-allocate", "reproduce":
		err = simulateMode(ctx, mode, rest, stdout, stderr)
	case "generate-v2018":
		err = simulateGenerate(rest, stdout, stderr)
	case "generate":
		err = simulateGenerateCluster(rest, stdout, stderr)
	case "plan", "bound", "reschedule", "replay-moves":
		err = simulatePlanMode(ctx, mode, rest, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, simulateUsage+simulatePlanUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "sluicectl simulate: unknown mode %q\n%s", mode, simulateUsage)
		return 2
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "sluicectl simulate %s: %v\n", mode, err)
		return 2
	default:
		fmt.Fprintf(stderr, "sluicectl simulate %s: %v\n", mode, err)
		return 1
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func simulateGenerate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("generate-v2018", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory to write machine_meta.csv and container_meta.csv into (required)")
	seed := fs.Uint64("seed", 1, "generator seed; the same seed writes the same files")
	cfg := trace.V2018Scale(0)
	fs.IntVar(&cfg.Hosts, "hosts", cfg.Hosts, "hosts")
	fs.IntVar(&cfg.Containers, "containers", cfg.Containers, "containers")
	fs.IntVar(&cfg.DeployUnits, "deploy-units", cfg.DeployUnits, "deploy units")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return usagef("need -out DIR and no arguments")
	}
	cfg.Seed = *seed
	if err := trace.WriteV2018Dir(*out, cfg); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d hosts and %d containers in %d deploy units to %s\n", cfg.Hosts, cfg.Containers, cfg.DeployUnits, *out)
	return nil
}

func simulateGenerateCluster(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "generic file to write (required)")
	seed := fs.Uint64("seed", 1, "generator seed; the same seed writes the same file")
	cfg := sim.ClusterScale(0)
	fs.IntVar(&cfg.Hosts, "hosts", cfg.Hosts, "hosts (two thirds 64-core, one third 96-core)")
	fs.IntVar(&cfg.Apps, "apps", cfg.Apps, "apps")
	fs.IntVar(&cfg.Containers, "containers", cfg.Containers, "containers")
	fs.IntVar(&cfg.Rules, "rules", cfg.Rules, "anti-affinity rules")
	fs.IntVar(&cfg.CurvePoints, "curve-points", cfg.CurvePoints, "points per daily curve")
	fs.Float64Var(&cfg.Existing, "existing", cfg.Existing, "share of containers with existing placements")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return usagef("need -out FILE and no arguments")
	}
	cfg.Seed = *seed
	setGCLimit(defaultGCLimitBytes)
	g, err := sim.GenerateCluster(cfg)
	if err != nil {
		return err
	}
	file, err := os.Create(*out)
	if err != nil {
		return err
	}
	if err := trace.EncodeGeneric(file, g); err != nil {
		file.Close()
		return err
	}
	if err := file.Close(); err != nil {
		return err
	}
	existing := 0
	for _, r := range g.Requests {
		existing += len(r.On)
	}
	fmt.Fprintf(stdout, "wrote %d hosts, %d apps, %d containers (%d placed) to %s\n", cfg.Hosts, cfg.Apps, cfg.Containers, existing, *out)
	return nil
}

type simFlags struct {
	format, in, openbTrace, strategies, seeds, out, hostType, snapshot, requests string
	cpuProfile, memProfile                                                       string
	sample, curveSamples, parallel                                               int
	memoryBudget, gcLimit                                                        int64
	progress, saveSnapshot                                                       bool
}

func simulateMode(ctx context.Context, mode string, args []string, stdout, stderr io.Writer) error {
	f, err := parseSimFlags(mode, args, stderr)
	if err != nil {
		return err
	}
	seeds, err := parseSeeds(f.seeds)
	if err != nil {
		return err
	}
	setGCLimit(f.gcLimit)
	if f.cpuProfile != "" {
		stop, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	opts := sim.Options{SampleFeasible: f.sample, CurveSamples: f.curveSamples, Parallel: f.parallel, Now: time.Now, Planner: plan.Planner{}}
	bar := newProgressBar(stderr, f.progress)
	defer bar.finish()

	var rep *sim.Report
	switch mode {
	case "evaluate":
		strategies, err := parseStrategies(f.strategies)
		if err != nil {
			return err
		}
		rep, err = evaluate(ctx, f, strategies, seeds, opts, bar)
		if err != nil {
			return err
		}
	case "pre-allocate":
		if rep, err = preAllocate(ctx, f, seeds[0], opts, bar); err != nil {
			return err
		}
	case "reproduce":
		if rep, err = reproduce(ctx, f, seeds[0], opts, bar); err != nil {
			return err
		}
	}
	bar.finish()
	if f.memProfile != "" {
		if err := writeHeapProfile(f.memProfile); err != nil {
			return err
		}
	}
	return report(f, rep, stdout)
}

// defaultGCLimitBytes is the collector's soft limit for simulations: the
// large planning trace keeps about 250 MB live, and with the default
// GOGC the heap would grow to twice that before a collection; the limit
// makes the collector run earlier instead. It is soft: a simulation
// that needs more memory gets it.
const defaultGCLimitBytes = 400 << 20

// setGCLimit applies a soft memory limit unless GOMEMLIMIT sets one.
func setGCLimit(bytes int64) {
	if bytes > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(bytes)
	}
}

func startCPUProfile(path string) (func(), error) {
	file, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(file); err != nil {
		file.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		file.Close()
	}, nil
}

func writeHeapProfile(path string) error {
	file, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(file); err != nil {
		file.Close()
		return fmt.Errorf("heap profile: %w", err)
	}
	return file.Close()
}

// parseSimFlags reads mode's flags: the input ones (a trace, or for
// reproduce a snapshot), the mode's own, then the common ones.
func parseSimFlags(mode string, args []string, stderr io.Writer) (simFlags, error) {
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f simFlags
	if mode != "reproduce" {
		fs.StringVar(&f.format, "format", "generic", "input format: generic (YAML file), v2018 (directory with machine_meta.csv, container_meta.csv) or openb (directory with openb CSVs)")
		fs.StringVar(&f.in, "in", "", "input file or directory (required)")
		fs.StringVar(&f.openbTrace, "openb-trace", "default", "openb pod list name (openb_pod_list_NAME.csv)")
		fs.Int64Var(&f.memoryBudget, "memory-budget", trace.DefaultMemoryBudgetBytes, "refuse v2018 traces estimated to need more memory than this, in bytes")
	} else {
		fs.StringVar(&f.snapshot, "snapshot", "", "saved brain snapshot, JSON (required)")
		fs.StringVar(&f.requests, "requests", "", "JSON array of requests to replay after the snapshot's own")
	}
	switch mode {
	case "evaluate":
		fs.StringVar(&f.strategies, "strategies", strings.Join(strategyNames(), ","), "comma-separated strategies")
		fs.BoolVar(&f.saveSnapshot, "save-snapshot", false, "also write each run's end state as snapshot-STRATEGY-SEED.json under -out (input for reproduce)")
	case "pre-allocate":
		fs.StringVar(&f.strategies, "strategies", string(place.StrategyDefault), "strategy (one)")
		fs.StringVar(&f.hostType, "host-type", "", "the extra host: a host entry's name in the generic file, or cpu=CORES,memory=SIZE[,disk=SIZE][,gpus=N,gpu_model=M][,label.K=V] (required)")
	}
	fs.StringVar(&f.seeds, "seeds", "1", "comma-separated seeds (pre-allocate and reproduce use the first)")
	fs.StringVar(&f.out, "out", "", "directory for report.json, report.txt and SVG pictures")
	fs.IntVar(&f.sample, "sample", 0, "score at most this many feasible hosts per decision (0 = all)")
	fs.IntVar(&f.curveSamples, "curve-points", 100, "points on the allocation curves")
	fs.IntVar(&f.parallel, "parallel", runtime.GOMAXPROCS(0), "runs replayed at once (evaluate)")
	fs.BoolVar(&f.progress, "progress", false, "show a progress bar on stderr even when it is not a terminal")
	fs.Int64Var(&f.gcLimit, "gc-limit", defaultGCLimitBytes, "soft memory limit for the Go collector, in bytes (0 = none; GOMEMLIMIT, when set, wins)")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a pprof CPU profile of the whole run to this file")
	fs.StringVar(&f.memProfile, "memprofile", "", "write a pprof heap profile (after the runs, before the report) to this file")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, usagef("unexpected arguments %q", fs.Args())
	}
	return f, nil
}

// preAllocate runs the pre-allocate mode: one strategy, the first seed.
func preAllocate(ctx context.Context, f simFlags, seed uint64, opts sim.Options, bar *progressBar) (*sim.Report, error) {
	strategies, err := parseStrategies(f.strategies)
	if err != nil {
		return nil, err
	}
	if len(strategies) != 1 {
		return nil, usagef("pre-allocate takes one strategy, got %d", len(strategies))
	}
	if f.hostType == "" {
		return nil, usagef("need -host-type")
	}
	w, g, err := loadWorkload(f, seed)
	if err != nil {
		return nil, err
	}
	ht, err := hostType(f.hostType, g)
	if err != nil {
		return nil, err
	}
	bar.expectRuns(1)
	opts.Progress = bar.step
	return sim.PreAllocate(ctx, w, strategies[0], seed, ht, opts)
}

// reproduce runs the reproduce mode: a saved snapshot, then -requests.
func reproduce(ctx context.Context, f simFlags, seed uint64, opts sim.Options, bar *progressBar) (*sim.Report, error) {
	if f.snapshot == "" {
		return nil, usagef("need -snapshot")
	}
	sf, err := readSnapshotFile(f.snapshot)
	if err != nil {
		return nil, err
	}
	var reqs []place.Request
	if f.requests != "" {
		if reqs, err = readRequestsFile(f.requests); err != nil {
			return nil, err
		}
	}
	bar.expectRuns(1)
	opts.Progress = bar.step
	return sim.Reproduce(ctx, sf, reqs, seed, opts)
}

// report prints rep, writes the -out directory, and fails when the runs
// broke constraints.
func report(f simFlags, rep *sim.Report, stdout io.Writer) error {
	if err := rep.WriteText(stdout); err != nil {
		return err
	}
	if f.out != "" {
		if err := writeOutputs(f, rep); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", f.out)
	}
	if n := rep.Violations(); n > 0 {
		return fmt.Errorf("%w: %d (see the report)", errViolations, n)
	}
	return nil
}

func evaluate(ctx context.Context, f simFlags, strategies []place.Strategy, seeds []uint64, opts sim.Options, bar *progressBar) (*sim.Report, error) {
	start := time.Now()
	var rep *sim.Report
	// openb's arrival sequence depends on the seed, so each seed is its own
	// workload; the other formats replay one workload with every seed.
	workloadSeeds := [][]uint64{seeds}
	if f.format == "openb" {
		workloadSeeds = nil
		for _, s := range seeds {
			workloadSeeds = append(workloadSeeds, []uint64{s})
		}
	}
	bar.expectRuns(len(strategies) * len(seeds))
	opts.Progress = bar.step
	for _, ws := range workloadSeeds {
		w, _, err := loadWorkload(f, ws[0])
		if err != nil {
			return nil, err
		}
		r, err := sim.Evaluate(ctx, w, strategies, ws, opts)
		if err != nil {
			return nil, err
		}
		if rep == nil {
			rep = r
		} else {
			rep.Runs = append(rep.Runs, r.Runs...)
		}
	}
	rep.RunTimeMS = float64(time.Since(start).Microseconds()) / 1000
	return rep, nil
}

// loadWorkload reads the input; g is the generic file when the format is
// generic (pre-allocate looks host types up in it).
func loadWorkload(f simFlags, seed uint64) (*sim.Workload, *trace.Generic, error) {
	if f.in == "" {
		return nil, nil, usagef("need -in")
	}
	switch f.format {
	case "generic":
		file, err := os.Open(f.in)
		if err != nil {
			return nil, nil, err
		}
		defer file.Close()
		g, err := trace.DecodeGeneric(file, f.in)
		if err != nil {
			return nil, nil, err
		}
		w, err := sim.FromGeneric(g)
		return w, g, err
	case "v2018":
		t, err := trace.LoadV2018(f.in, trace.LoadOptions{MemoryBudgetBytes: f.memoryBudget})
		if err != nil {
			return nil, nil, err
		}
		w, err := sim.FromV2018(t)
		return w, nil, err
	case "openb":
		tr, err := openb.LoadTrace(f.in, f.openbTrace)
		if err != nil {
			return nil, nil, err
		}
		return sim.FromOpenb(tr, seed), nil, nil
	}
	return nil, nil, usagef("unknown -format %q (want generic, v2018 or openb)", f.format)
}

// hostType resolves -host-type: a generic host entry by name, or a spec.
func hostType(spec string, g *trace.Generic) (place.Host, error) {
	if !strings.Contains(spec, "=") {
		if g == nil {
			return place.Host{}, usagef("-host-type %q: a host name needs -format generic; otherwise write cpu=CORES,memory=SIZE", spec)
		}
		for _, h := range g.Hosts {
			if h.Name == spec {
				one := *g
				h.Count = 0
				one.Hosts = []trace.GenericHost{h}
				one.Requests = nil
				w, err := sim.FromGeneric(&one)
				if err != nil {
					return place.Host{}, err
				}
				return w.Snapshot.Hosts[0], nil
			}
		}
		return place.Host{}, usagef("-host-type %q: no host entry of that name in %s", spec, "the input")
	}
	h := place.Host{Name: "extra", Labels: map[string]string{}, Capacity: place.Resources{}}
	for _, kv := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return h, usagef("-host-type: %q is not key=value", kv)
		}
		var err error
		switch {
		case k == "name":
			h.Name = v
		case k == "cpu":
			var m trace.MilliCPU
			m, err = trace.ParseMilliCPU(v)
			h.Capacity[place.DimCPU] = int64(m)
		case k == "memory" || k == "disk":
			var b trace.Bytes
			b, err = trace.ParseBytes(v)
			h.Capacity[k] = int64(b)
		case k == "gpus":
			h.GPUs, err = strconv.Atoi(v)
		case k == "gpu_model":
			h.GPUModel = v
		case strings.HasPrefix(k, "label."):
			h.Labels[strings.TrimPrefix(k, "label.")] = v
		default:
			var n int64
			n, err = strconv.ParseInt(v, 10, 64)
			h.Capacity[k] = n
		}
		if err != nil {
			return h, usagef("-host-type: %s: %v", k, err)
		}
	}
	if h.Capacity[place.DimCPU] <= 0 {
		return h, usagef("-host-type: needs cpu=CORES")
	}
	return h, nil
}

func readSnapshotFile(path string) (*sim.SnapshotFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return sim.ReadSnapshot(f, path)
}

func readRequestsFile(path string) ([]place.Request, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return sim.ReadRequests(f, path)
}

func parseSeeds(s string) ([]uint64, error) {
	var out []uint64
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.ParseUint(strings.TrimSpace(p), 10, 64)
		if err != nil {
			return nil, usagef("-seeds: %q is not a non-negative integer", p)
		}
		out = append(out, v)
	}
	return out, nil
}

func parseStrategies(s string) ([]place.Strategy, error) {
	var out []place.Strategy
	for _, p := range strings.Split(s, ",") {
		st, err := place.ParseStrategy(strings.TrimSpace(p))
		if err != nil {
			return nil, usagef("-strategies: %v (known: %s)", err, strings.Join(strategyNames(), ", "))
		}
		out = append(out, st)
	}
	return out, nil
}

func strategyNames() []string {
	var out []string
	for _, s := range place.Strategies() {
		out = append(out, string(s))
	}
	return out
}

func writeOutputs(f simFlags, rep *sim.Report) error {
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return err
	}
	write := func(name string, fn func(io.Writer) error) error {
		file, err := os.Create(filepath.Join(f.out, name))
		if err != nil {
			return err
		}
		if err := fn(file); err != nil {
			file.Close()
			return err
		}
		return file.Close()
	}
	if err := write("report.json", rep.WriteJSON); err != nil {
		return err
	}
	if err := write("report.txt", rep.WriteText); err != nil {
		return err
	}
	dims := map[string]bool{}
	for _, r := range rep.Runs {
		for d := range r.Allocation {
			dims[d] = true
		}
	}
	for _, d := range sortedKeys(dims) {
		err := write("curves-"+fileSafe(d)+".svg", func(w io.Writer) error {
			return sim.WriteCurvesSVG(w, rep.Runs, d, fmt.Sprintf("%s: %s allocation against arrived demand", rep.Workload, d))
		})
		if err != nil {
			return err
		}
	}
	if len(rep.Runs) > 0 && len(rep.Runs[0].Shapes) > 0 {
		err := write("hosts-by-shape.svg", func(w io.Writer) error {
			return sim.WriteShapesSVG(w, rep.Runs, fmt.Sprintf("%s: hosts used by shape, start and end", rep.Workload))
		})
		if err != nil {
			return err
		}
	}
	for _, r := range rep.Runs {
		for _, d := range sortedKeys(bandDims(r)) {
			name := fmt.Sprintf("band-%s-%s-%d.svg", d, r.Strategy, r.Seed)
			err := write(fileSafe(name), func(w io.Writer) error {
				return sim.WriteBandSVG(w, r, d, fmt.Sprintf("%s utilisation over the day, used hosts: %s seed %d", d, r.Strategy, r.Seed))
			})
			if err != nil {
				return err
			}
		}
	}
	heatDim := place.DimCPU
	if dims[sim.DimGPU] {
		heatDim = sim.DimGPU
	}
	for _, r := range rep.Runs {
		name := fmt.Sprintf("%s-%s-%d", heatDim, r.Strategy, r.Seed)
		err := write("heatmap-"+fileSafe(name)+".svg", func(w io.Writer) error {
			return sim.WriteHeatmapSVG(w, r, heatDim, fmt.Sprintf("%s utilisation per host: %s seed %d", heatDim, r.Strategy, r.Seed))
		})
		if err != nil {
			return err
		}
		if f.saveSnapshot {
			sf := &sim.SnapshotFile{Version: sim.SnapshotVersion, Profile: r.Profile, Snapshot: r.Final}
			err := write(fmt.Sprintf("snapshot-%s-%d.json", fileSafe(string(r.Strategy)), r.Seed), func(w io.Writer) error { return sim.WriteSnapshot(w, sf) })
			if err != nil {
				return err
			}
		}
	}
	if rep.Mode == "reproduce" || rep.Mode == "pre-allocate" {
		err := write("decisions.jsonl", func(w io.Writer) error {
			if err := sim.WriteDecisions(w, rep.Runs[0].Decisions); err != nil {
				return err
			}
			if pa := rep.PreAllocation; pa != nil {
				return sim.WriteDecisions(w, pa.ExtraPlan)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// bandDims are the dimensions a run has a utilisation band for.
func bandDims(r *sim.Run) map[string]bool {
	out := map[string]bool{}
	for d := range r.UtilBand {
		out[d] = true
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range maps.Keys(m) {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' || r == '\\' {
			return '_'
		}
		return r
	}, s)
}

// progressBar draws one line on stderr for long runs: when stderr is a
// terminal and the work has taken a couple of seconds, or always when
// forced. Runs may report from several goroutines.
type progressBar struct {
	w      io.Writer
	on     bool
	forced bool
	start  time.Time

	mu      sync.Mutex
	runs    int               // runs expected in all
	active  map[string][2]int // run -> done, total
	done    int               // runs finished
	last    time.Time
	visible bool
}

func newProgressBar(stderr io.Writer, forced bool) *progressBar {
	on := forced
	if f, ok := stderr.(*os.File); ok && !forced {
		on = term.IsTerminal(int(f.Fd()))
	}
	return &progressBar{w: stderr, on: on, forced: forced, start: time.Now(), active: map[string][2]int{}}
}

func (b *progressBar) expectRuns(n int) {
	b.mu.Lock()
	b.runs = n
	b.mu.Unlock()
}

// step is a sim.Options.Progress.
func (b *progressBar) step(run string, done, total int) {
	if !b.on {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if done >= total {
		delete(b.active, run)
		b.done++
	} else {
		b.active[run] = [2]int{done, total}
	}
	now := time.Now()
	if !b.forced && now.Sub(b.start) < 2*time.Second {
		return
	}
	if done < total && now.Sub(b.last) < 200*time.Millisecond {
		return
	}
	b.last = now
	// Finished runs count whole, running ones by their share done.
	frac := float64(b.done)
	names := make([]string, 0, len(b.active))
	for name, dt := range b.active {
		frac += float64(dt[0]) / float64(max(dt[1], 1))
		names = append(names, name)
	}
	slices.Sort(names)
	frac /= float64(max(b.runs, b.done+len(b.active), 1))
	const width = 30
	filled := min(width, int(frac*width))
	fmt.Fprintf(b.w, "\r[%s%s] %3d%% runs %d/%d %s\x1b[K", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), int(frac*100), b.done, max(b.runs, b.done+len(b.active)), strings.Join(names, ", "))
	b.visible = true
}

func (b *progressBar) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.visible {
		fmt.Fprintln(b.w)
		b.visible = false
	}
}
