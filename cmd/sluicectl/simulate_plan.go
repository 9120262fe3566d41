package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/brain/plan"
	"github.com/sluicehq/sluice/brain/trace"
)

const simulatePlanUsage = `
planning modes (cost objective: brain/plan; go doc ./brain/plan):
  plan            place every container from scratch with the curve-aware cost strategy; cost against the bound
  bound           a lower bound on the cost objective (and the existing placement's cost against it)
  reschedule      a capped move list from the existing placements to a cheaper state; every step feasible
  replay-moves    apply a move list to the existing placements and check every intermediate state

  sluicectl simulate plan -in cluster.yaml -iterations 500000 -out /tmp/plan
  sluicectl simulate reschedule -in cluster.yaml -max-moves 3400 -in-flight 1 -out /tmp/resched
  sluicectl simulate replay-moves -in cluster.yaml -moves /tmp/resched/moves.json

The objective's penalty comes from the trace's profile (profile.penalty) and -penalty
(cpu=TARGET[:STEEPNESS[:WEIGHT]],memory=...), the flag overriding the file field by field.
`

// planFlags are the planning modes' flags.
type planFlags struct {
	format, in, openbTrace, penalty, out, moves string
	memoryBudget                                int64
	seed                                        uint64
	iterations, maxMoves, inFlight, sample      int
	timeLimit                                   time.Duration
}

// simulatePlanMode runs plan, bound, reschedule or replay-moves.
func simulatePlanMode(ctx context.Context, mode string, args []string, stdout, stderr io.Writer) error {
	f, err := parsePlanFlags(mode, args, stderr)
	if err != nil {
		return err
	}
	in, err := loadPlanInput(f)
	if err != nil {
		return err
	}
	notRunning := 0
	if mode == "reschedule" || mode == "replay-moves" {
		// Moves concern what runs; the bound and costs then compare like
		// with like.
		in, notRunning = runningOnly(in)
	}
	m, err := plan.Compile(in)
	if err != nil {
		return err
	}
	stop := stopper(ctx, f.timeLimit)
	var rep planReport
	rep.Mode, rep.Hosts, rep.Containers, rep.Shapes, rep.Penalties = mode, m.Hosts(), m.Containers(), m.Shapes(), in.Penalties
	start := time.Now()
	if b, err := plan.LowerBound(m); err == nil {
		rep.Bound = &b
	} else if mode == "bound" {
		return err
	} else {
		rep.BoundError = err.Error()
	}
	if existing := plan.FromExisting(m); existing.Breakdown().HostsUsed > 0 {
		bd := existing.Breakdown()
		rep.Existing = &bd
	}
	switch mode {
	case "plan":
		res := plan.Solve(m, plan.Options{Seed: f.seed, Iterations: f.iterations, Sample: f.sample, Stop: stop, Bound: rep.Bound})
		if v := plan.Check(m, res.State.Placement()); len(v) > 0 {
			return fmt.Errorf("%w: %d, the first: %s", errViolations, len(v), v[0])
		}
		rep.Greedy, rep.Final = &res.Greedy, &res.Final
		rep.Iterations, rep.Improvements, rep.Stopped = res.Iterations, res.Improvements, res.Stopped
		if f.out != "" {
			if err := writePlacement(f.out, m, res.State); err != nil {
				return err
			}
		}
	case "reschedule":
		res, err := plan.Reschedule(m, plan.RescheduleOptions{Seed: f.seed, MaxMoves: f.maxMoves, InFlight: f.inFlight, Iterations: f.iterations, Sample: f.sample, Stop: stop})
		if err != nil {
			return err
		}
		rep.Existing, rep.Final = &res.Before, &res.After
		rep.Iterations, rep.Stopped = res.Iterations, res.Stopped
		rep.Moves, rep.Batches, rep.InFlight = len(res.Plan.Moves), batches(res.Plan), res.Plan.InFlight
		if f.out != "" {
			if err := writeJSON(f.out, "moves.json", res.Plan); err != nil {
				return err
			}
		}
	case "replay-moves":
		mp, err := readMovePlan(f.moves)
		if err != nil {
			return err
		}
		res, err := plan.ReplayMoves(m, mp)
		if err != nil {
			return err
		}
		rep.Existing, rep.Final = &res.Before, &res.After
		rep.Moves, rep.Batches, rep.States, rep.InFlight = res.Moves, res.Batches, res.States, mp.InFlight
	}
	rep.NotRunning += notRunning
	rep.RunTimeMS = float64(time.Since(start).Microseconds()) / 1000
	if err := rep.writeText(stdout); err != nil {
		return err
	}
	if f.out != "" {
		if err := writeJSON(f.out, "report.json", rep); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", f.out)
	}
	return nil
}

func parsePlanFlags(mode string, args []string, stderr io.Writer) (planFlags, error) {
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f planFlags
	fs.StringVar(&f.format, "format", "generic", "input format: generic (YAML file), v2018 or openb (directories); only generic files carry host costs and existing placements")
	fs.StringVar(&f.in, "in", "", "input file or directory (required)")
	fs.StringVar(&f.openbTrace, "openb-trace", "default", "openb pod list name")
	fs.Int64Var(&f.memoryBudget, "memory-budget", trace.DefaultMemoryBudgetBytes, "refuse v2018 traces estimated to need more memory than this, in bytes")
	fs.StringVar(&f.penalty, "penalty", "", "penalty per dimension, DIM=TARGET[:STEEPNESS[:WEIGHT]], comma-separated; overrides the trace's profile")
	fs.StringVar(&f.out, "out", "", "directory for report.json (and placement.json or moves.json)")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of every random choice")
	switch mode {
	case "plan", "reschedule":
		fs.IntVar(&f.iterations, "iterations", 0, "search budget in iterations (0: 20 per container); the same seed and budget give the same result anywhere")
		fs.IntVar(&f.sample, "sample", 0, "candidate hosts scored per container (0: 48)")
		fs.DurationVar(&f.timeLimit, "time-limit", 0, "stop the search after this wall-clock time (0: none); the report says when it stopped early, and the result then depends on the machine")
	}
	if mode == "reschedule" {
		fs.IntVar(&f.maxMoves, "max-moves", 0, "most moves (0: 5% of the running containers)")
		fs.IntVar(&f.inFlight, "in-flight", 1, "most containers stopped at once (moves per batch)")
	}
	if mode == "replay-moves" {
		fs.StringVar(&f.moves, "moves", "", "move list (moves.json from reschedule) (required)")
	}
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	switch {
	case fs.NArg() > 0:
		return f, usagef("unexpected arguments %q", fs.Args())
	case f.in == "":
		return f, usagef("need -in")
	case mode == "replay-moves" && f.moves == "":
		return f, usagef("need -moves")
	case f.maxMoves < 0 || f.inFlight < 1 && mode == "reschedule" || f.iterations < 0 || f.sample < 0 || f.timeLimit < 0:
		return f, usagef("-max-moves, -iterations, -sample and -time-limit must not be negative, -in-flight at least 1")
	}
	return f, nil
}

// stopper is the wall-clock cap as a plan.Options.Stop: it also stops on
// a cancelled context.
func stopper(ctx context.Context, limit time.Duration) func() bool {
	start := time.Now()
	return func() bool {
		return ctx.Err() != nil || limit > 0 && time.Since(start) > limit
	}
}

// loadPlanInput reads the trace and turns it into a plan input: hosts,
// their costs and the existing placements from a generic file (host
// cost, requests' on), the penalty from its profile and -penalty.
func loadPlanInput(f planFlags) (plan.Input, error) {
	w, g, err := loadWorkload(simFlags{format: f.format, in: f.in, openbTrace: f.openbTrace, memoryBudget: f.memoryBudget}, f.seed)
	if err != nil {
		return plan.Input{}, err
	}
	in := plan.Input{Hosts: w.Snapshot.Hosts, Profile: w.Profile, Cost: map[string]float64{}}
	on := map[string]string{}
	pens := plan.DefaultPenalties()
	if g != nil {
		for _, h := range g.Hosts {
			for _, name := range h.Names() {
				in.Cost[name] = h.UnitCost()
			}
		}
		on = existingHosts(g)
		if g.Profile != nil {
			pens = plan.MergePenalties(pens, profilePenalties(g.Profile))
		}
	}
	over, err := plan.ParsePenalties(f.penalty)
	if err != nil {
		return in, usagef("-penalty: %v", err)
	}
	in.Penalties = plan.MergePenalties(pens, over)
	for _, p := range w.Snapshot.Placements {
		in.Containers = append(in.Containers, p.Request)
		in.Existing = append(in.Existing, p.Host)
	}
	for _, r := range w.Requests {
		in.Containers = append(in.Containers, r)
		in.Existing = append(in.Existing, on[r.ID])
	}
	return in, nil
}

// runningOnly keeps the containers that run somewhere now and counts the
// others.
func runningOnly(in plan.Input) (plan.Input, int) {
	out := in
	out.Containers, out.Existing = nil, nil
	for i, h := range in.Existing {
		if h != "" {
			out.Containers = append(out.Containers, in.Containers[i])
			out.Existing = append(out.Existing, h)
		}
	}
	return out, len(in.Containers) - len(out.Containers)
}

// existingHosts maps instance IDs ("app-i", numbered per app in file
// order, as the simulator names them) to the host a request's on list
// gives them.
func existingHosts(g *trace.Generic) map[string]string {
	out := map[string]string{}
	next := map[string]int{}
	for _, r := range g.Requests {
		for i := range r.Count {
			id := r.App + "-" + strconv.Itoa(next[r.App])
			next[r.App]++
			if i < len(r.On) {
				out[id] = r.On[i]
			}
		}
	}
	return out
}

func profilePenalties(p *trace.GenericProfile) []plan.Penalty {
	var out []plan.Penalty
	for dim, gp := range p.Penalty {
		out = append(out, plan.Penalty{Dim: dim, Target: gp.Target, Steepness: gp.Steepness, Weight: gp.Weight})
	}
	return out
}

// planReport is what a planning mode prints and writes.
type planReport struct {
	Mode       string          `json:"mode"`
	Hosts      int             `json:"hosts"`
	Containers int             `json:"containers"`
	Shapes     []string        `json:"shapes"`
	Penalties  []plan.Penalty  `json:"penalties"`
	Bound      *plan.Bound     `json:"bound,omitempty"`
	BoundError string          `json:"bound_error,omitempty"`
	Existing   *plan.Breakdown `json:"existing,omitempty"`
	Greedy     *plan.Breakdown `json:"greedy,omitempty"`
	Final      *plan.Breakdown `json:"final,omitempty"`
	// GapPercent is how far Final lies above the bound.
	GapPercent   *float64 `json:"gap_percent,omitempty"`
	Iterations   int      `json:"iterations,omitempty"`
	Improvements int      `json:"improvements,omitempty"`
	Stopped      bool     `json:"stopped_by_time_limit,omitempty"`
	NotRunning   int      `json:"not_running,omitempty"`
	Moves        int      `json:"moves,omitempty"`
	Batches      int      `json:"batches,omitempty"`
	InFlight     int      `json:"in_flight,omitempty"`
	States       int      `json:"states_checked,omitempty"`
	RunTimeMS    float64  `json:"run_time_ms"`
}

func (r *planReport) gap(b *plan.Breakdown) string {
	if r.Bound == nil || r.Bound.Value <= 0 || b == nil {
		return ""
	}
	if b.Unplaced > 0 {
		return " (not every container placed: not comparable with the bound)"
	}
	g := 100 * (b.Objective/r.Bound.Value - 1)
	if b == r.Final {
		r.GapPercent = &g
	}
	return fmt.Sprintf(", within %.2f%% of the bound", g)
}

func (r *planReport) writeText(w io.Writer) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s: %d hosts, %d containers\n", r.Mode, r.Hosts, r.Containers)
	for i, s := range r.Shapes {
		fmt.Fprintf(&sb, "  shape %d: %s\n", i, s)
	}
	for _, p := range r.Penalties {
		fmt.Fprintf(&sb, "  penalty %s: above %.0f%%, steepness %g, weight %g\n", p.Dim, 100*p.Target, p.Steepness, p.Weight)
	}
	if b := r.Bound; b != nil {
		fmt.Fprintf(&sb, "bound     %.3f (%s: host cost %.3f + penalty %.3f; hosts by shape %s)\n", b.Value, b.Method, b.HostCost, b.Penalty, fmtFloats(b.Hosts))
	} else if r.BoundError != "" {
		fmt.Fprintf(&sb, "bound     none: %s\n", r.BoundError)
	}
	line := func(name string, b *plan.Breakdown) {
		if b == nil {
			return
		}
		fmt.Fprintf(&sb, "%-9s %.3f = host cost %.3f + penalty %.3f; hosts used %d %v", name, b.Objective, b.HostCost, b.Penalty, b.HostsUsed, b.UsedByShape)
		if b.Unplaced > 0 {
			fmt.Fprintf(&sb, ", %d not placed", b.Unplaced)
		}
		sb.WriteString(r.gap(b) + "\n")
	}
	before := "existing"
	if r.Mode == "reschedule" || r.Mode == "replay-moves" {
		before = "before"
	}
	line(before, r.Existing)
	line("greedy", r.Greedy)
	after := "final"
	if r.Mode != "plan" {
		after = "after"
	}
	line(after, r.Final)
	if r.Iterations > 0 {
		fmt.Fprintf(&sb, "search: %d iterations", r.Iterations)
		if r.Improvements > 0 {
			fmt.Fprintf(&sb, ", %d improvements", r.Improvements)
		}
		sb.WriteString("\n")
	}
	if r.Stopped {
		sb.WriteString("stopped early by -time-limit: the result depends on this machine's speed\n")
	}
	if r.Mode == "reschedule" || r.Mode == "replay-moves" {
		fmt.Fprintf(&sb, "moves: %d in %d batches (at most %d in flight)", r.Moves, r.Batches, r.InFlight)
		if r.States > 0 {
			fmt.Fprintf(&sb, "; %d intermediate states checked, all keep every rule", r.States)
		}
		sb.WriteString("\n")
	}
	if r.NotRunning > 0 {
		fmt.Fprintf(&sb, "%d containers run nowhere now and are left out\n", r.NotRunning)
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

func fmtFloats(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatFloat(x, 'f', 2, 64)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func batches(mp plan.MovePlan) int {
	n, last := 0, -1
	for _, mv := range mp.Moves {
		if mv.Batch != last {
			n++
			last = mv.Batch
		}
	}
	return n
}

func writeJSON(dir, name string, v any) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	return os.WriteFile(filepath.Join(dir, name), append(data, '\n'), 0o644)
}

// placementEntry is one line of placement.json.
type placementEntry struct {
	Container string `json:"container"`
	Host      string `json:"host,omitempty"`
}

func writePlacement(dir string, m *plan.Model, s *plan.State) error {
	out := make([]placementEntry, m.Containers())
	for c := range out {
		out[c].Container = m.ContainerID(c)
		if h := s.HostOf(c); h >= 0 {
			out[c].Host = m.HostName(h)
		}
	}
	return writeJSON(dir, "placement.json", out)
}

// maxMoveFileBytes bounds a move list (a million moves fit).
const maxMoveFileBytes = 256 << 20

func readMovePlan(path string) (plan.MovePlan, error) {
	var mp plan.MovePlan
	data, err := readBounded(path, maxMoveFileBytes)
	if errors.Is(err, trace.ErrLimit) {
		return mp, fmt.Errorf("%w: %w", plan.ErrBadMoves, err)
	}
	if err != nil {
		return mp, err
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&mp); err != nil {
		return mp, fmt.Errorf("%s: %w: %w", path, plan.ErrBadMoves, err)
	}
	if dec.More() {
		return mp, fmt.Errorf("%s: %w: trailing data after the JSON value", path, plan.ErrBadMoves)
	}
	return mp, nil
}
