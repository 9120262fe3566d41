package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/sluicehq/sluice/brain/place"
)

// Report is the outcome of a simulation, in any mode.
type Report struct {
	Mode     string `json:"mode"`
	Workload string `json:"workload"`
	Hosts    int    `json:"hosts"`
	Requests int    `json:"requests"`
	// PrePlaced counts the placements the workload starts from (existing
	// placements), which the runs did not place.
	PrePlaced int    `json:"pre_placed,omitempty"`
	Runs      []*Run `json:"runs"`
	// PreAllocation is set by PreAllocate.
	PreAllocation *PreAllocation `json:"pre_allocation,omitempty"`
	RunTimeMS     float64        `json:"run_time_ms,omitempty"`
}

// Evaluate replays w once per strategy and seed; the report lists the runs
// in that order whatever Options.Parallel is.
func Evaluate(ctx context.Context, w *Workload, strategies []place.Strategy, seeds []uint64, opts Options) (*Report, error) {
	elapsed := opts.stopwatch()
	if len(strategies) == 0 {
		return nil, fmt.Errorf("evaluate: no strategies")
	}
	if len(seeds) == 0 {
		seeds = []uint64{1}
	}
	rep := &Report{Mode: "evaluate", Workload: w.Name, Hosts: len(w.Snapshot.Hosts), Requests: len(w.Requests) + w.unplaceable(), PrePlaced: len(w.Snapshot.Placements)}
	type job struct {
		i        int
		strategy place.Strategy
		seed     uint64
	}
	var jobs []job
	for _, s := range strategies {
		for _, seed := range seeds {
			jobs = append(jobs, job{len(jobs), s, seed})
		}
	}
	rep.Runs = make([]*Run, len(jobs))
	errs := make([]error, len(jobs))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan job)
	var wg sync.WaitGroup
	for range max(1, min(opts.Parallel, len(jobs))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queue {
				run, err := Replay(ctx, w, j.strategy, j.seed, opts)
				rep.Runs[j.i], errs[j.i] = run, err
				if err != nil {
					cancel()
				}
			}
		}()
	}
	for _, j := range jobs {
		queue <- j
	}
	close(queue)
	wg.Wait()
	// The first failure in job order, not a cancellation it caused.
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
	}
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
	}
	rep.RunTimeMS = elapsed()
	return rep, nil
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write report json: %w", err)
	}
	return nil
}

// Violations counts every run's violations.
func (r *Report) Violations() int {
	n := 0
	for _, run := range r.Runs {
		n += len(run.Violations)
	}
	return n
}

// WriteText writes the report for people: one table row per run, then
// each run's failure reasons and violations.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "mode %s, workload %s: %d hosts, %d requests", r.Mode, r.Workload, r.Hosts, r.Requests)
	if r.PrePlaced > 0 {
		fmt.Fprintf(&b, " after %d pre-placed", r.PrePlaced)
	}
	b.WriteString("\n")
	if r.RunTimeMS > 0 {
		fmt.Fprintf(&b, "run time %.1f s\n", r.RunTimeMS/1000)
	}
	dims := reportDims(r.Runs)
	curves := false
	for _, run := range r.Runs {
		curves = curves || run.Profile.CurvePoints > 0
	}
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	hdr := []string{"strategy", "seed", "placed", "failed", "evicted", "hosts used"}
	for _, d := range dims {
		if curves {
			hdr = append(hdr, "requested "+d, "used "+d, "mean "+d)
		} else {
			hdr = append(hdr, "alloc "+d)
		}
	}
	for _, d := range dims {
		hdr = append(hdr, "frag "+d)
	}
	hdr = append(hdr, "violations", "time")
	fmt.Fprintln(tw, strings.Join(hdr, "\t"))
	for _, run := range r.Runs {
		row := []string{string(run.Strategy), fmt.Sprint(run.Seed), fmt.Sprint(run.Placed), fmt.Sprint(run.Failed), fmt.Sprint(run.Evicted), fmt.Sprintf("%d/%d", run.HostsUsed, run.Hosts)}
		for _, d := range dims {
			if curves {
				row = append(row, pct(run.Requested, d))
			}
			row = append(row, pct(run.Allocation, d))
			if curves {
				row = append(row, pct(run.MeanUsed, d))
			}
		}
		for _, d := range dims {
			row = append(row, pct(run.Fragmentation, d))
		}
		t := "-"
		if run.RunTimeMS > 0 {
			t = fmt.Sprintf("%.2fs", run.RunTimeMS/1000)
		}
		row = append(row, fmt.Sprint(len(run.Violations)), t)
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report text: %w", err)
	}
	if curves {
		b.WriteString("requested: sum of peaks; used: peak of the summed curve, per host; mean: mean over the day (shares of capacity)\n")
	}
	writeShapes(&b, r.Runs)
	for _, run := range r.Runs {
		if len(run.FailureKinds) == 0 && len(run.Violations) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s seed %d:\n", run.Strategy, run.Seed)
		if len(run.FailureKinds) > 0 {
			fmt.Fprintf(&b, "  %d failed; top reason (failed requests):\n", run.Failed)
		}
		for _, k := range run.FailureKinds {
			fmt.Fprintf(&b, "    %7d  %s\n", k.Requests, k.Reason)
		}
		shown := 0
		for _, k := range run.FailureReasons {
			if reasonKind(k.Reason) == k.Reason {
				continue // already a line of its own above
			}
			if shown == 5 {
				fmt.Fprintf(&b, "      ... more reasons in report.json\n")
				break
			}
			shown++
			fmt.Fprintf(&b, "      %7d  %s\n", k.Requests, k.Reason)
		}
		if len(run.FailureRules) > 0 {
			fmt.Fprintf(&b, "  rules that rejected hosts (failed requests, hosts rejected):\n")
		}
		for _, k := range run.FailureRules {
			fmt.Fprintf(&b, "    %7d %9d  %s\n", k.Requests, k.Hosts, k.Reason)
		}
		for _, v := range run.Violations {
			fmt.Fprintf(&b, "  VIOLATION %s\n", v)
		}
	}
	if pa := r.PreAllocation; pa != nil {
		pa.writeText(&b)
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write report text: %w", err)
	}
	return nil
}

func pct(m map[string]float64, d string) string {
	v, ok := m[d]
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", v*100)
}

// reportDims lists the dimensions the runs have capacity in, well-known
// ones first.
func reportDims(runs []*Run) []string {
	seen := map[string]bool{}
	for _, r := range runs {
		for d := range r.Allocation {
			seen[d] = true
		}
	}
	var out []string
	for _, d := range []string{place.DimCPU, place.DimMemory, DimGPU, place.DimDisk} {
		if seen[d] {
			out = append(out, d)
			delete(seen, d)
		}
	}
	var rest []string
	for d := range seen {
		rest = append(rest, d)
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// writeShapes lists hosts used per shape, before and after, when the
// cluster has more than one shape.
func writeShapes(b *strings.Builder, runs []*Run) {
	if len(runs) == 0 || len(runs[0].Shapes) < 2 {
		return
	}
	b.WriteString("hosts used by shape (start -> end per run):\n")
	for k, sh := range runs[0].Shapes {
		fmt.Fprintf(b, "  %s: %d hosts, %d at start ->", sh.Shape, sh.Hosts, sh.UsedBefore)
		for _, run := range runs {
			fmt.Fprintf(b, " %s/%d %d", run.Strategy, run.Seed, run.Shapes[k].UsedAfter)
		}
		b.WriteString("\n")
	}
}
