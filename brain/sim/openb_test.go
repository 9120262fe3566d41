package sim

import (
	"context"
	"testing"

	"github.com/sluicehq/sluice/brain/openb"
	"github.com/sluicehq/sluice/brain/place"
	"github.com/sluicehq/sluice/test/openbdata"
)

// The simulator's replay of the openb experiment must agree with
// brain/openb's own runner request for request. The data is not in the
// repository: test/openbdata finds it beside the checkout or through
// SLUICE_OPENB_DATA.
func TestOpenbMatchesOpenbRun(t *testing.T) {
	tr, err := openb.LoadTrace(openbdata.Dir(t), "default")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []place.Strategy{place.StrategyBestFit, place.StrategyFGD} {
		want, err := openb.Run(tr, s, 2)
		if err != nil {
			t.Fatal(err)
		}
		run, err := Replay(context.Background(), FromOpenb(tr, 2), s, 2, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if run.Placed != want.Placed || run.Failed != want.Failed {
			t.Errorf("%s: sim placed %d failed %d, openb placed %d failed %d", s, run.Placed, run.Failed, want.Placed, want.Failed)
		}
		if got := run.Allocation[DimGPU]; got != want.Allocated {
			t.Errorf("%s: sim gpu allocation %v, openb %v", s, got, want.Allocated)
		}
		if len(run.Violations) != 0 {
			t.Errorf("%s: violations %v", s, run.Violations)
		}
		t.Logf("%s: gpu allocation %.4f, placed %d, failed %d", s, run.Allocation[DimGPU], run.Placed, run.Failed)
	}
}
