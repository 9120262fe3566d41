package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// report turns the measured cells into the table, the goal checks and
// the plots.
type report struct {
	o        options
	cpus     int
	services []*service
	cells    []cell
	took     time.Duration
}

// group is the kept and discarded windows of one service, level and
// condition over rounds.
type group struct {
	kept, discarded []cell
}

func (r report) group(svc string, level int, k condition) group {
	var g group
	for _, c := range r.cells {
		if c.service != svc || c.level != level || c.cond != k {
			continue
		}
		if c.starved {
			g.discarded = append(g.discarded, c)
		} else {
			g.kept = append(g.kept, c)
		}
	}
	return g
}

// shown is what a table row or plot shows: the kept windows, or, when
// every round was discarded, the discarded ones, marked (goal checks never
// use them).
func (g group) shown() (group, bool) {
	if len(g.kept) == 0 && len(g.discarded) > 0 {
		return group{kept: g.discarded}, true
	}
	return g, false
}

// figure collects f over the kept windows, skipping NaN.
func (g group) figure(f func(cell) float64) []float64 {
	var out []float64
	for _, c := range g.kept {
		if v := f(c); !math.IsNaN(v) {
			out = append(out, v)
		}
	}
	return out
}

// iqr prints "median [q1-q3]" (just the value for one round, "-" for none).
func iqr(xs []float64, format string) string {
	switch len(xs) {
	case 0:
		return "-"
	case 1:
		return fmt.Sprintf(format, xs[0])
	}
	q1, m, q3 := quartiles(xs)
	return fmt.Sprintf(format+" ["+format+"-"+format+"]", m, q1, q3)
}

func med(xs []float64) float64 {
	_, m, _ := quartiles(xs)
	return m
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Figures of one window, as the table shows them.

func figP50(c cell) float64      { return ms(c.load.P50) }
func figP99(c cell) float64      { return ms(c.load.P99) }
func figP999(c cell) float64     { return ms(c.load.P999) }
func figAchieved(c cell) float64 { return 100 * c.load.AchievedPerSec / c.load.OfferedPerSec }
func figHostBusy(c cell) float64 { return 100 * c.cpu.host / c.cpu.capacity }
func figLoadgen(c cell) float64  { return c.cpu.loadgen / c.load.WindowSeconds }

func figOfflineCores(c cell) float64 { return c.cpu.offline / c.load.WindowSeconds }
func figSystem(c cell) float64       { return c.cpu.system() / c.load.WindowSeconds }

func figShare(c cell) float64 {
	if !c.cond.hasBurners() {
		return math.NaN()
	}
	return 100 * c.cpu.offlineShare()
}

func figAgent(c cell) float64 {
	if !c.agent {
		return math.NaN()
	}
	return 100 * c.agentCPU / c.load.WindowSeconds
}

// figBogo is a stressor's bogo-ops per second of its run in the cell's
// condition and round.
func figBogo(stressor string) func(cell) float64 {
	return func(c cell) float64 {
		if c.run == nil || c.run.stressRunSec <= 0 {
			return math.NaN()
		}
		for _, s := range c.run.stress {
			if s.Stressor == stressor {
				return float64(s.BogoOps) / c.run.stressRunSec
			}
		}
		return math.NaN()
	}
}

func (r report) write(w io.Writer) {
	fmt.Fprintf(w, "\nColocation benchmark: open-loop load, latency from each request's scheduled send time; %d CPUs; windows %v after warm-up %v (a service's first level in a condition) / %v (later levels); conditions interleaved over rounds\n",
		r.cpus, r.o.duration, r.o.warmup, r.o.levelWarmup)
	fmt.Fprintln(w, "Figures: median [interquartile range] over kept rounds; a window whose load generator lagged its schedule (dispatcher lag p99 > "+r.o.maxLag.String()+") is discarded")
	if r.o.quick {
		fmt.Fprintln(w, "QUICK RUN (window under 30 s): fewer levels and short warm-ups; a smoke test, not data")
	}
	for _, s := range r.services {
		fmt.Fprintf(w, "\n%s: %s; %d rounds\n\n", s.name, s.capacityLine(), min(s.rounds, r.o.rounds))
		r.table(w, s)
	}
	r.writeDiscarded(w)
	r.writeBusyHost(w)
	fmt.Fprintln(w, "\nColumns: share = offline CPU / (capacity - online - system - load generator), from cpuacct over the window (system = root cgroup busy - ours: daemons, the agent, other users);")
	fmt.Fprintln(w, "offline work = stress-ng bogo-ops per second of its run in that condition and round (cpu and stream stressors); agent = sluice-agent's cpuacct (its own cgroup; its BPF programs' run time is charged to the tasks they run beside), % of one core.")
	r.goals(w)
	fmt.Fprintf(w, "\nmeasured in %s\n", r.took.Round(time.Second))
}

func (r report) table(w io.Writer, s *service) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "load\tcondition\toffered/s\tachieved %\tp50 ms\tp99 ms\tp99.9 ms\tshare %\toffline CPUs\tcpu bogo/s\tstream bogo/s\thost busy %\tsystem CPUs\tloadgen CPUs\tagent %\tkept\t")
	for _, lvl := range s.levels {
		for k := range numConditions {
			all := r.group(s.name, lvl, k)
			if len(all.kept)+len(all.discarded) == 0 {
				continue
			}
			g, fromDiscarded := all.shown()
			mark := map[bool]string{true: "*"}[fromDiscarded]
			fmt.Fprintf(tw, "%d%%\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d%s\t\n", lvl, k, s.rate(lvl),
				iqr(g.figure(figAchieved), "%.1f"), iqr(g.figure(figP50), "%.3f"), iqr(g.figure(figP99), "%.3f"),
				iqr(g.figure(figP999), "%.3f"), iqr(g.figure(figShare), "%.1f"), iqr(g.figure(figOfflineCores), "%.2f"),
				iqr(g.figure(figBogo("cpu")), "%.0f"), iqr(g.figure(figBogo("stream")), "%.1f"),
				iqr(g.figure(figHostBusy), "%.0f"), iqr(g.figure(figSystem), "%.2f"), iqr(g.figure(figLoadgen), "%.2f"), iqr(g.figure(figAgent), "%.2f"),
				len(all.kept), len(all.kept)+len(all.discarded), mark)
		}
	}
	tw.Flush()
}

func (r report) writeDiscarded(w io.Writer) {
	var lines []string
	for _, c := range r.cells {
		if c.starved {
			lines = append(lines, fmt.Sprintf("  round %d %s %d%% %s: dispatcher lag p99 %v, max %v",
				c.round+1, c.service, c.level, c.cond, c.load.LagP99.Round(time.Microsecond), c.load.LagMax.Round(time.Microsecond)))
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "\nDiscarded windows (load generator starved; rows marked * had no other, and show these figures, unfit for comparison):\n%s\n", strings.Join(lines, "\n"))
}

// writeBusyHost warns when others used a tenth of the host or more during
// the windows: they perturb every figure, and "alone" was not alone.
func (r report) writeBusyHost(w io.Writer) {
	var sys []float64
	for _, c := range r.cells {
		sys = append(sys, figSystem(c))
	}
	if m := med(sys); m >= 0.1*float64(r.cpus) {
		fmt.Fprintf(w, "\nNOTE: outside the benchmark's cgroups the host was busy %.2f CPUs of %d (median over windows): other users perturb every figure above, and alone was not alone\n", m, r.cpus)
	}
}

// goals prints, per service and level, the goal checks from the
// medians above.
func (r report) goals(w io.Writer) {
	fmt.Fprintln(w, "\nGoals (benchmark figures, per service and level)")
	for _, s := range r.services {
		for _, lvl := range s.levels {
			fmt.Fprintf(w, "  %s %d%%: %s\n", s.name, lvl, r.goalLine(s.name, lvl))
		}
	}
}

func (r report) goalLine(svc string, lvl int) string {
	p99 := func(k condition) []float64 { return r.group(svc, lvl, k).figure(figP99) }
	share := func(k condition) float64 { return med(r.group(svc, lvl, k).figure(figShare)) }
	alone, spin, sl := p99(condAlone), p99(condSpinner), p99(condSluice)
	if len(sl) == 0 || (len(alone) == 0 && len(spin) == 0) {
		return "no kept sluice or alone windows: no verdict"
	}
	base, baseName := alone, condAlone.String()
	if len(alone) == 0 || (len(spin) > 0 && med(spin) < med(alone)) {
		base, baseName = spin, condSpinner.String()
	}
	q1, bm, q3 := quartiles(base)
	band, bandName := 0.05*bm, "5%"
	if q3-q1 > band {
		band, bandName = q3-q1, "its IQR"
	}
	var parts []string
	verdict := map[bool]string{true: "MET", false: "MISSED"}
	parts = append(parts, fmt.Sprintf("p99 %.3f ms vs %s %.3f ms (%+.1f%%, band %s = %.3f ms): %s",
		med(sl), baseName, bm, 100*(med(sl)/bm-1), bandName, band, verdict[med(sl) <= bm+band]))
	sh := share(condSluice)
	parts = append(parts, fmt.Sprintf("offline share %.1f%% (goal >= 80%%): %s", sh, verdict[sh >= 80]))
	for _, k := range []condition{condKoord, condCPUIdle} {
		if len(p99(k)) == 0 {
			parts = append(parts, "vs "+k.String()+": no kept windows")
			continue
		}
		parts = append(parts, fmt.Sprintf("vs %s (p99 %.3f, share %.1f%%): %s", k, med(p99(k)), share(k), dominance(med(sl), sh, med(p99(k)), share(k))))
	}
	return strings.Join(parts, "; ")
}

// dominance compares sluice (p99, share) to a baseline: better when
// strictly better on one and not worse on the other.
func dominance(p99, share, baseP99, baseShare float64) string {
	switch {
	case p99 <= baseP99 && share >= baseShare && (p99 < baseP99 || share > baseShare):
		return "sluice better"
	case p99 >= baseP99 && share <= baseShare && (p99 > baseP99 || share < baseShare):
		return "sluice worse"
	case p99 == baseP99 && share == baseShare:
		return "tie"
	}
	return "trade-off (better on one, worse on the other)"
}

// capacityLine says what the load levels are shares of.
func (s *service) capacityLine() string {
	measured := fmt.Sprintf("%.0f req/s here (closed loop, %d connections)", s.measuredRPS, s.conns)
	if s.pinnedRPS > 0 {
		return fmt.Sprintf("capacity pinned at %.0f req/s by a flag; measured %s", s.pinnedRPS, measured)
	}
	return "capacity " + measured
}
