package sim

import (
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
