package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/qos"
)

// TestAgentPolicy checks that the policy the sluice condition writes is
// one the agent accepts: the default policy plus the benchmark's rules.
func TestAgentPolicy(t *testing.T) {
	tr := tree{root: "/sys/fs/cgroup", base: "/sluice-colo-test"}
	pol, err := qos.ParsePolicy("colo.yaml", []byte(agentPolicy(tr, "")))
	if err != nil {
		t.Fatal(err)
	}
	def, err := qos.ParsePolicy("default.yaml", []byte("version: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if pol.DryRun || pol.OfflineParent != tr.offline() || pol.OnStop != qos.StopRelease {
		t.Errorf("dryRun %v, offlineParent %q, onStop %q; want false, %q, release", pol.DryRun, pol.OfflineParent, pol.OnStop, tr.offline())
	}
	if pol.CPU != def.CPU {
		t.Errorf("cpu policy %+v, want the default %+v", pol.CPU, def.CPU)
	}
	want := map[string]qos.Class{tr.online(): qos.ClassOnline, tr.loadgen(): qos.ClassSystem, tr.stress(): qos.ClassOffline}
	for cg, class := range want {
		var got qos.Class
		for _, r := range pol.Rules {
			if ok, _ := path.Match(r.Cgroup, cg); ok {
				got = r.Class
				break
			}
		}
		if got != class {
			t.Errorf("cgroup %s classed %q, want %q", cg, got, class)
		}
	}
	if pol, err := qos.ParsePolicy("colo.yaml", []byte(agentPolicy(tr, "cpu:\n  highWater: 90%\n"))); err != nil || pol.CPU.HighWater != 0.9 {
		t.Errorf("-policy-extra highWater 90%%: got %v, %v", pol.CPU.HighWater, err)
	}
}

// testCell is a window with round figures: p99 in ms, offline share as a
// fraction (of 10 CPU-seconds left), dispatcher lag.
func testCell(k condition, round int, p99ms, share float64, lag time.Duration) cell {
	left := 10.0
	return cell{cond: k, service: "redis", level: 20, round: round,
		load: loadResult{OfferedPerSec: 1000, AchievedPerSec: 1000, P50: time.Duration(p99ms * 0.5 * float64(time.Millisecond)),
			P99: time.Duration(p99ms * float64(time.Millisecond)), P999: time.Duration(p99ms * 2 * float64(time.Millisecond)), LagP99: lag, WindowSeconds: 10},
		cpu:     cpuWindow{capacity: 20, online: 8, loadgen: 2, host: 10 + share*left, offline: share * left},
		samples: []sample{{offsetSec: 1, share: share, capCores: -1}, {offsetSec: 2, share: share, capCores: 1.2}, {offsetSec: 3, share: share, capCores: 1.1}},
		starved: lag > 5*time.Millisecond}
}

func TestReportTableAndGoals(t *testing.T) {
	var cells []cell
	for r := range 3 {
		cells = append(cells,
			testCell(condAlone, r, 1.0+0.01*float64(r), 0, 0),
			testCell(condSpinner, r, 0.9+0.01*float64(r), 0, 0),
			testCell(condNoIsolation, r, 9, 0.99, 0),
			testCell(condCPUIdle, r, 1.5, 0.98, 0),
			testCell(condKoord, r, 0.93, 0.50, 0),
			testCell(condSluice, r, 0.92, 0.85, 0))
	}
	// A starved sluice window with an absurd p99 must not count.
	cells = append(cells, testCell(condSluice, 3, 500, 0.1, 40*time.Millisecond))
	rep := report{o: options{duration: 10 * time.Second, maxLag: 5 * time.Millisecond}, cpus: 2,
		services: []*service{{name: "redis", levels: []int{20}, measuredRPS: 5000, conns: 8, rounds: 3}}, cells: cells}
	var b bytes.Buffer
	rep.write(&b)
	out := b.String()
	for _, want := range []string{
		"sluice", "0.920", "3/4", // sluice: 3 kept of 4, the starved one left out of the median
		"round 4 redis 20% sluice: dispatcher lag p99 40ms",
		"vs alone+idle-spinner 0.910 ms", // the better of the two alone baselines
		"offline share 85.0% (goal >= 80%): MET",
		"vs koordinator-like (p99 0.930, share 50.0%): sluice better",
		"vs cpu-idle-only (p99 1.500, share 98.0%): trade-off",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "NOTE: outside") {
		t.Errorf("quiet host reported busy:\n%s", out)
	}
	// Others using 1.5 of the 2 CPUs in every window: said up front.
	busy := rep
	busy.cells = nil
	for _, c := range rep.cells {
		c.cpu.host += 15
		busy.cells = append(busy.cells, c)
	}
	var bb bytes.Buffer
	busy.write(&bb)
	if !strings.Contains(bb.String(), "NOTE: outside the benchmark's cgroups the host was busy 1.50 CPUs of 2") {
		t.Errorf("busy host not reported:\n%s", bb.String())
	}
	if !strings.Contains(out, "p99 0.920 ms vs alone+idle-spinner 0.910 ms (+1.1%, band 5%") || !strings.Contains(out, "MET; offline") {
		t.Errorf("p99 goal line wrong:\n%s", out)
	}
	for _, svg := range [][]byte{rep.latencyPlot(rep.services[0]), rep.sharePlot(rep.services[0])} {
		checkSVG(t, svg)
	}
}

// checkSVG parses the plot as XML and counts what it draws.
func checkSVG(t *testing.T, svg []byte) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	marks := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("plot is not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && (se.Name.Local == "circle" || se.Name.Local == "polyline") {
			marks++
		}
	}
	if marks == 0 {
		t.Errorf("plot draws no data:\n%s", svg)
	}
}

func TestDominance(t *testing.T) {
	for _, tc := range []struct {
		p99, share, bp99, bshare float64
		want                     string
	}{
		{1, 0.9, 1, 0.8, "sluice better"},
		{0.9, 0.8, 1, 0.8, "sluice better"},
		{1.1, 0.8, 1, 0.8, "sluice worse"},
		{0.9, 0.7, 1, 0.8, "trade-off (better on one, worse on the other)"},
		{1, 0.8, 1, 0.8, "tie"},
	} {
		if got := dominance(tc.p99, tc.share, tc.bp99, tc.bshare); got != tc.want {
			t.Errorf("dominance(%v, %v vs %v, %v) = %q, want %q", tc.p99, tc.share, tc.bp99, tc.bshare, got, tc.want)
		}
	}
	if !math.IsNaN(med(nil)) {
		t.Error("median of nothing is not NaN")
	}
}
