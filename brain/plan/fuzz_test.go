package plan_test

import (
	"encoding/json"
	"testing"

	"github.com/sluicehq/sluice/brain/plan"
)

// FuzzReplayMoves: any move list decodes to an error or a replay, never a
// panic; a replay that succeeds ends on a placement the validator accepts.
func FuzzReplayMoves(f *testing.F) {
	f.Add(`{"version":1,"in_flight":1,"moves":[{"step":1,"batch":1,"container":"day-0","from":"h0","to":"h2"}]}`)
	f.Add(`{"version":1,"in_flight":2,"moves":[{"step":1,"batch":1,"container":"day-0","from":"h0","to":"h1"},{"step":2,"batch":1,"container":"night-2","from":"h0","to":"h3"}]}`)
	f.Add(`{"version":1,"in_flight":0}`)
	in := dayNight()
	in.Existing = []string{"h0", "h1", "h0", "h1"}
	m, err := plan.Compile(in)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data string) {
		var mp plan.MovePlan
		if json.Unmarshal([]byte(data), &mp) != nil {
			return
		}
		res, err := plan.ReplayMoves(m, mp)
		if err != nil {
			return
		}
		if res.After.HostsUsed < 1 || res.After.Unplaced != 0 {
			t.Errorf("replay ended with %+v", res.After)
		}
	})
}
