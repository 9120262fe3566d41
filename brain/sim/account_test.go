package sim

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/brain/place"
)

// AccountingYAML is issue 15's minimal file: a day app and a night app on
// one 4-CPU host, each at 2 CPUs at its peak and 0 otherwise.
const accountingYAML = `version: 1
curve_points: 2
hosts:
  - {name: h, cpu: 4, memory: 4Gi}
apps:
  - {name: day, cpu: 2, memory: 1Gi, curves: {cpu: [1, 0]}}
  - {name: night, cpu: 2, memory: 1Gi, curves: {cpu: [0, 1]}}
requests:
  - {app: day, count: 1}
  - {app: night, count: 1}
`

// The host holds 2 of 4 CPUs at each point: used 50%, mean 50%, while the
// peaks add up to 100%. No accounting violation.
func TestAccountingMinimalCurveFile(t *testing.T) {
	w, err := FromGeneric(decodeGeneric(t, accountingYAML))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Evaluate(context.Background(), w, []place.Strategy{place.StrategyBestFit}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	run := rep.Runs[0]
	if len(run.Violations) != 0 {
		t.Fatalf("violations: %v", run.Violations)
	}
	cpu := place.DimCPU
	if !near(run.Requested[cpu], 1) || !near(run.Allocation[cpu], 0.5) || !near(run.MeanUsed[cpu], 0.5) {
		t.Fatalf("cpu requested %v used %v mean %v; want 1, 0.5, 0.5", run.Requested[cpu], run.Allocation[cpu], run.MeanUsed[cpu])
	}
	// Memory is flat: all three figures are 2Gi of 4Gi.
	mem := place.DimMemory
	if !near(run.Requested[mem], 0.5) || !near(run.Allocation[mem], 0.5) || !near(run.MeanUsed[mem], 0.5) {
		t.Fatalf("memory requested %v used %v mean %v; want 0.5 each", run.Requested[mem], run.Allocation[mem], run.MeanUsed[mem])
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`best-fit\s+1\s+2\s+0\s+0\s+1/1\s+100\.00%\s+50\.00%\s+50\.00%`).MatchString(text.String()) {
		t.Errorf("text report's row is not requested 100%%, used 50%%, mean 50%%:\n%s", text.String())
	}
	for _, want := range []string{"requested cpu", "used cpu", "mean cpu", "requested: sum of peaks; used: peak of the summed curve"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	band := run.UtilBand[cpu]
	if len(band) != 2 || band[0] != (BandPoint{0.5, 0.5, 0.5}) || band[1] != (BandPoint{0.5, 0.5, 0.5}) {
		t.Errorf("cpu band %v, want 50%% at both points", band)
	}
}

// A seeded curve trace: day and night apps of several sizes, with flat
// ones mixed in. Whatever the strategy, no accounting violation, and the
// three figures equal a brute-force sum of the end state.
func TestAccountingSeededCurveTraces(t *testing.T) {
	shared := 0 // runs where complementary curves share capacity
	defer func() {
		if shared == 0 {
			t.Error("no run had requested > used: the traces do not exercise curves")
		}
	}()
	for seed := range uint64(6) {
		w := curveWorkload(seed)
		rep, err := Evaluate(context.Background(), w, place.Strategies(), []uint64{seed + 1}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, run := range rep.Runs {
			name := fmt.Sprintf("seed %d %s", seed, run.Strategy)
			if len(run.Violations) != 0 {
				t.Fatalf("%s: violations %v", name, run.Violations)
			}
			req, used, mean := bruteForceTotals(run.Final, w.Profile.CurvePoints)
			capCPU := float64(0)
			for _, h := range w.Snapshot.Hosts {
				capCPU += float64(h.Capacity[place.DimCPU])
			}
			cpu := place.DimCPU
			if !near(run.Requested[cpu], req/capCPU) || !near(run.Allocation[cpu], used/capCPU) || math.Abs(run.MeanUsed[cpu]-mean/capCPU) > 1e-9 {
				t.Fatalf("%s: cpu requested %v used %v mean %v; brute force %v %v %v", name,
					run.Requested[cpu], run.Allocation[cpu], run.MeanUsed[cpu], req/capCPU, used/capCPU, mean/capCPU)
			}
			if run.Requested[cpu] > run.Allocation[cpu]+1e-9 {
				shared++
			}
			if run.Placed > 0 && !(run.Requested[cpu] >= run.Allocation[cpu] && run.Allocation[cpu] >= run.MeanUsed[cpu]) {
				t.Fatalf("%s: want requested >= used >= mean, got %v %v %v", name, run.Requested[cpu], run.Allocation[cpu], run.MeanUsed[cpu])
			}
		}
	}
}

func curveWorkload(seed uint64) *Workload {
	rng := rand.New(rand.NewPCG(seed, 15))
	const points = 8
	w := &Workload{Name: fmt.Sprintf("curves-%d", seed)}
	w.Profile.CurvePoints = points
	for i := range 4 + rng.IntN(6) {
		w.Snapshot.Hosts = append(w.Snapshot.Hosts, host(fmt.Sprintf("h%d", i), int64(8+8*rng.IntN(3))*1000, 64<<30, nil))
	}
	for i := range 30 + rng.IntN(40) {
		r := req(fmt.Sprintf("r%d", i), fmt.Sprintf("app%d", i%7), int64(1+rng.IntN(6))*1000, int64(1+rng.IntN(4))<<30)
		peak := r.Demand[place.DimCPU]
		curve := make([]int64, points)
		for k := range curve {
			day := k < points/2
			switch i % 3 {
			case 0: // day
				if day {
					curve[k] = peak
				} else {
					curve[k] = peak / 5
				}
			case 1: // night
				if day {
					curve[k] = peak / 5
				} else {
					curve[k] = peak
				}
			}
		}
		if i%3 != 2 {
			r.Curves = map[string][]int64{place.DimCPU: curve}
		}
		w.Requests = append(w.Requests, r)
	}
	return w
}

// bruteForceTotals sums the end state's cpu by the definitions: peaks of
// placements; per host the peak of the pointwise sum; the mean of it.
func bruteForceTotals(snap place.Snapshot, points int) (requested, used, mean float64) {
	for _, h := range snap.Hosts {
		sum := make([]float64, points)
		for _, p := range snap.Placements {
			if p.Host != h.Name {
				continue
			}
			c, ok := p.Curves[place.DimCPU]
			var top float64
			for k := range sum {
				v := float64(p.Demand[place.DimCPU])
				if ok {
					v = float64(c[k])
				}
				sum[k] += v
				top = math.Max(top, v)
			}
			requested += top
		}
		var hi, tot float64
		for _, v := range sum {
			hi = math.Max(hi, v)
			tot += v
		}
		used += hi
		mean += tot / float64(points)
	}
	return requested, used, mean
}
