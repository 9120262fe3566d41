package sim

import (
	"bytes"
	"context"
	"testing"

	"github.com/sluicehq/sluice/brain/place"
	"github.com/sluicehq/sluice/brain/trace"
)

// BenchmarkV2018FullScale is the end-to-end goal: generate the full-scale
// synthetic v2018 trace, parse it, place all 71,000 containers with deploy
// unit spread, validate and report. One iteration is one whole pipeline.
func BenchmarkV2018FullScale(b *testing.B) {
	for _, s := range []place.Strategy{place.StrategyBestFit, place.StrategyFGDPack} {
		for _, sample := range []int{0, 64} {
			b.Run(string(s)+"/sample="+itoa(sample), func(b *testing.B) {
				for b.Loop() {
					dir := b.TempDir()
					if err := trace.WriteV2018Dir(dir, trace.V2018Scale(42)); err != nil {
						b.Fatal(err)
					}
					tr, err := trace.LoadV2018(dir, trace.LoadOptions{})
					if err != nil {
						b.Fatal(err)
					}
					w, err := FromV2018(tr)
					if err != nil {
						b.Fatal(err)
					}
					run, err := Replay(context.Background(), w, s, 1, Options{SampleFeasible: sample})
					if err != nil {
						b.Fatal(err)
					}
					if len(run.Violations) != 0 {
						b.Fatalf("violations: %v", run.Violations[:min(5, len(run.Violations))])
					}
					b.ReportMetric(float64(run.Placed), "placed")
					b.ReportMetric(run.Allocation[place.DimCPU]*100, "cpu-alloc-%")
				}
			})
		}
	}
}

// BenchmarkClusterScale is issue 15's planning goal: the generated large
// online cluster (6,000 hosts, 9,000 apps with 98-point curves, 68,000
// containers, 33,000 rules, 90% placed) encoded, decoded and evaluated
// under one strategy; the goal is under 30 s and 500 MB per strategy
// (measure RSS with /usr/bin/time -v on sluicectl simulate evaluate).
func BenchmarkClusterScale(b *testing.B) {
	g, err := GenerateCluster(ClusterScale(1))
	if err != nil {
		b.Fatal(err)
	}
	var file bytes.Buffer
	if err := trace.EncodeGeneric(&file, g); err != nil {
		b.Fatal(err)
	}
	for _, s := range []place.Strategy{place.StrategyBestFit, place.StrategyFGDPack} {
		b.Run(string(s), func(b *testing.B) {
			for b.Loop() {
				g, err := trace.DecodeGeneric(bytes.NewReader(file.Bytes()), "cluster.yaml")
				if err != nil {
					b.Fatal(err)
				}
				w, err := FromGeneric(g)
				if err != nil {
					b.Fatal(err)
				}
				run, err := Replay(context.Background(), w, s, 1, Options{})
				if err != nil {
					b.Fatal(err)
				}
				if len(run.Violations) != 0 {
					b.Fatalf("violations: %v", run.Violations[:min(5, len(run.Violations))])
				}
				b.ReportMetric(run.Allocation[place.DimCPU]*100, "cpu-used-%")
			}
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	return string(d)
}
