package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// median of xs (xs is not modified); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread prints "median (min-max)" of the per-round figures.
func spread(xs []float64, format string) string {
	if len(xs) == 1 {
		return fmt.Sprintf(format, xs[0])
	}
	return fmt.Sprintf(format+" ("+format+"-"+format+")", median(xs), slices.Min(xs), slices.Max(xs))
}

func byKind(rs []phaseResult, k phaseKind) []phaseResult {
	var out []phaseResult
	for _, r := range rs {
		if r.kind == k {
			out = append(out, r)
		}
	}
	return out
}

// testFigure collects one redis test's figure over rounds.
func testFigure(rs []phaseResult, test string, f func(benchRow) float64) []float64 {
	var out []float64
	for _, r := range rs {
		for _, t := range r.tests {
			if t.Test == test {
				out = append(out, f(t))
			}
		}
	}
	return out
}

func stressRate(r phaseResult, stressor string) (ops uint64, perSec float64) {
	for _, s := range r.stress {
		if s.Stressor == stressor && s.RealSeconds > 0 {
			return s.BogoOps, float64(s.BogoOps) / s.RealSeconds
		}
	}
	return 0, 0
}

// offlineShare is the goal's measure for one with-Sluice phase:
// idle-left = capacity x window - (online + load generator) CPU time,
// share = offline CPU time / idle-left.
func offlineShare(r phaseResult) (share, idleLeftSeconds float64) {
	capSeconds := float64(r.end.host.cpus) * r.window().Seconds()
	used := (r.end.online - r.start.online + r.end.loadgen - r.start.loadgen).Seconds()
	idleLeftSeconds = capSeconds - used
	if idleLeftSeconds <= 0 {
		return 0, idleLeftSeconds
	}
	return (r.end.offline - r.start.offline).Seconds() / idleLeftSeconds, idleLeftSeconds
}

func report(w io.Writer, o options, rs []phaseResult, took time.Duration) {
	kinds := []phaseKind{phaseAlone, phaseBurners, phaseSluice}
	tests := []string{}
	for _, r := range rs {
		for _, t := range r.tests {
			if !slices.Contains(tests, t.Test) {
				tests = append(tests, t.Test)
			}
		}
	}
	fmt.Fprintf(w, "\nColocation interference: redis-server (online) under redis-benchmark -c %d -d %d -n %d per test, %d rounds; figures are median (min-max) over rounds\n\n",
		o.clients, o.dataBytes, o.requests, o.rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\ttest\tops/s\tp50 ms\tp99 ms\t")
	for _, k := range kinds {
		ks := byKind(rs, k)
		for _, test := range tests {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", k, test,
				spread(testFigure(ks, test, func(b benchRow) float64 { return b.OpsPerSec }), "%.0f"),
				spread(testFigure(ks, test, func(b benchRow) float64 { return b.P50Millis }), "%.3f"),
				spread(testFigure(ks, test, func(b benchRow) float64 { return b.P99Millis }), "%.3f"))
		}
	}
	tw.Flush()

	fmt.Fprintf(w, "\nCPU in the measured window (cores = CPU seconds / window seconds; host has %d CPUs)\n\n", rs[0].end.host.cpus)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\twindow s\tcpu bogo-ops\tcpu bogo/s\tvm bogo/s\toffline CPU s\toffline cores\tonline cores\tloadgen cores\tother host cores\thost CPU %\t")
	for _, k := range kinds {
		ks := byKind(rs, k)
		var win, bogo, bogoRate, vmRate, offS, offC, onC, lgC, otherC, host []float64
		for _, r := range ks {
			win = append(win, r.window().Seconds())
			ops, rate := stressRate(r, "cpu")
			_, vr := stressRate(r, "vm")
			bogo, bogoRate, vmRate = append(bogo, float64(ops)), append(bogoRate, rate), append(vmRate, vr)
			offS = append(offS, (r.end.offline - r.start.offline).Seconds())
			offC = append(offC, r.cores(r.start.offline, r.end.offline))
			onC = append(onC, r.cores(r.start.online, r.end.online))
			lgC = append(lgC, r.cores(r.start.loadgen, r.end.loadgen))
			otherC = append(otherC, r.otherCores())
			host = append(host, r.hostBusyPct())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", k, spread(win, "%.1f"), spread(bogo, "%.0f"),
			spread(bogoRate, "%.0f"), spread(vmRate, "%.0f"), spread(offS, "%.1f"), spread(offC, "%.2f"),
			spread(onC, "%.2f"), spread(lgC, "%.2f"), spread(otherC, "%.2f"), spread(host, "%.0f"))
	}
	tw.Flush()
	fmt.Fprintln(w, "\n(cpu bogo-ops are stress-ng's totals over warm-up plus window; bogo/s divide by its run time. \"other host\" = host busy - ours: other users of the machine.)")

	fmt.Fprintln(w, "\nGoal checks")
	alone, sl := byKind(rs, phaseAlone), byKind(rs, phaseSluice)
	for _, test := range tests {
		a := median(testFigure(alone, test, func(b benchRow) float64 { return b.P99Millis }))
		s := median(testFigure(sl, test, func(b benchRow) float64 { return b.P99Millis }))
		verdict := "MET"
		if s > 1.05*a {
			verdict = "MISSED"
		}
		// Rounds of the same phase that differ by more than twice the goal's
		// band mean the host's other load, not the phases, sets the figure.
		aloneP99 := testFigure(alone, test, func(b benchRow) float64 { return b.P99Millis })
		if len(aloneP99) > 1 && a > 0 {
			if v := (slices.Max(aloneP99) - slices.Min(aloneP99)) / a; v > 0.10 {
				verdict += fmt.Sprintf(" — NOT CONCLUSIVE: alone p99 itself varied by %.0f%% of its median between rounds", 100*v)
			}
		}
		fmt.Fprintf(w, "  %s p99 with Sluice %.3f ms vs alone %.3f ms: %+.1f%% (goal <= +5%%): %s\n", test, s, a, 100*(s/a-1), verdict)
	}
	var other []float64
	for _, r := range rs {
		other = append(other, r.otherCores())
	}
	if m := median(other); m > 0.1*float64(rs[0].end.host.cpus) {
		fmt.Fprintf(w, "  NOTE: other users of this host used %.2f cores (median over phases) of %d during the measurements; Sluice counts them as system and protects them, and they perturb every figure above\n",
			m, rs[0].end.host.cpus)
	}
	var offSum, idleSum float64
	var shares []float64
	for _, r := range sl {
		sh, idle := offlineShare(r)
		shares = append(shares, 100*sh)
		offSum += (r.end.offline - r.start.offline).Seconds()
		idleSum += idle
	}
	total := 0.0
	if idleSum > 0 {
		total = 100 * offSum / idleSum
	}
	verdict := "MET"
	if total < 70 {
		verdict = "MISSED"
	}
	fmt.Fprintf(w, "  offline share of the CPU online leaves idle (with Sluice): %.1f%% over all rounds, per round %s (goal >= 70%%): %s\n",
		total, spread(shares, "%.1f%%"), verdict)
	fmt.Fprintln(w, "    idle-left = CPUs x window - (online + loadgen) CPU seconds; share = offline CPU seconds / idle-left")
	var idleHost float64
	for _, r := range sl {
		idleHost += (r.end.host.total - r.start.host.total) - (r.end.host.busy - r.start.host.busy)
	}
	if offSum+idleHost > 0 {
		fmt.Fprintf(w, "    for reference, counting other users of the host as not idle: offline / (offline + host idle) = %.1f%%\n",
			100*offSum/(offSum+idleHost))
	}

	fmt.Fprintln(w, "\nsluice-agent while enforcing (benchmark 3) and its final plan, per with-Sluice round")
	for _, r := range sl {
		a := r.agent
		fmt.Fprintf(w, "  round %d: agent CPU %.2f%% of one core, RSS %.1f MiB; offline budget %dm (%s); memory max %.2f GiB (%s)\n",
			r.round+1, a.cpuPctOfCore, float64(a.rssBytes)/(1<<20), a.budgetMilli, a.cpuReason,
			float64(a.memMaxBytes)/(1<<30), a.memReason)
		var bud, on, sys, off []float64
		for _, x := range a.during {
			bud, on, sys = append(bud, float64(x.budgetMilli)), append(on, float64(x.online)), append(sys, float64(x.system))
			off = append(off, float64(x.offlineUsed))
		}
		if len(bud) > 0 {
			fmt.Fprintf(w, "    during the window (%d polls of /state), milli-CPUs: offline budget %s, agent saw online %s, system %s, offline %s\n",
				len(bud), spread(bud, "%.0f"), spread(on, "%.0f"), spread(sys, "%.0f"), spread(off, "%.0f"))
		}
		fmt.Fprintf(w, "    after the window, agent's class CPU view (milli): online %d, system %d, offline %d\n",
			a.classCPUMilli["online"], a.classCPUMilli["system"], a.classCPUMilli["offline"])
		var res []string
		for _, x := range a.results {
			s := fmt.Sprintf("%s=%s", x.Intent, x.Status)
			if x.Err != "" {
				s += " (" + x.Err + ")"
			}
			res = append(res, s)
		}
		fmt.Fprintf(w, "    last enforcement: %s\n", strings.Join(res, ", "))
		for _, m := range a.metrics {
			if strings.HasPrefix(m, "sluice_offline_") || strings.HasPrefix(m, "sluice_enforce_results_total") ||
				strings.HasPrefix(m, "sluice_kills_total") || strings.HasPrefix(m, "sluice_class_cpu_used_cores") {
				fmt.Fprintf(w, "    %s\n", m)
			}
		}
	}
	fmt.Fprintf(w, "\nwhole run: %s\n", took.Round(time.Second))
}
