package resctrl_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicehq/sluice/rdt"
	"github.com/sluicehq/sluice/rdt/resctrl"
	"github.com/sluicehq/sluice/rdt/resctrltest"
)

func TestCollectorExportsTheMonitorsSample(t *testing.T) {
	f := resctrltest.New(resctrltest.IntelTwoSocket())
	if err := f.Mkdir(rdt.GroupOffline); err != nil {
		t.Fatal(err)
	}
	f.SetCounters(rdt.GroupOffline, 1, rdt.RawCounters{OccupancyBytes: 2048, TotalBytes: 9000, HasOccupancy: true, HasTotal: true})
	f.SetCounters(rdt.GroupDefault, 0, rdt.RawCounters{LocalBytes: 7, HasLocal: true})
	hw, _ := resctrl.Probe(f)
	s, err := resctrl.NewMonitor(f, hw).Read(time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	c := resctrl.NewCollector(func() rdt.MonSample { return s })
	want := `
# HELP sluice_rdt_llc_occupancy_bytes Last-level cache held by a resctrl group in a cache domain (llc_occupancy).
# TYPE sluice_rdt_llc_occupancy_bytes gauge
sluice_rdt_llc_occupancy_bytes{domain="1",group="sluice-offline"} 2048
# HELP sluice_rdt_mbm_local_bytes_total Memory bandwidth used by a resctrl group in a cache domain, local memory only (mbm_local_bytes).
# TYPE sluice_rdt_mbm_local_bytes_total counter
sluice_rdt_mbm_local_bytes_total{domain="0",group="default"} 7
# HELP sluice_rdt_mbm_total_bytes_total Memory bandwidth used by a resctrl group in a cache domain, all memory (mbm_total_bytes).
# TYPE sluice_rdt_mbm_total_bytes_total counter
sluice_rdt_mbm_total_bytes_total{domain="1",group="sluice-offline"} 9000
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
