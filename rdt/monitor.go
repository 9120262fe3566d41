package rdt

import "time"

// Monitoring event names (info/L3_MON/mon_features and the files under
// mon_data/mon_L3_XX/).
const (
	EventOccupancy = "llc_occupancy"
	EventMBMTotal  = "mbm_total_bytes"
	EventMBMLocal  = "mbm_local_bytes"
)

// MonSample is one reading of every group's counters: per L3 domain id,
// per group name. resctrl.Monitor produces it; Rates turns two into the
// Signals' counters.
type MonSample struct {
	At      time.Time
	Domains map[int]map[string]RawCounters
}

// RawCounters are the values as the kernel prints them: occupancy in
// bytes now, bandwidth as bytes counted since the group was made. Has
// says which events the kernel gave a number for (it prints
// "Unavailable" while an RMID is not being counted).
type RawCounters struct {
	OccupancyBytes uint64
	TotalBytes     uint64
	LocalBytes     uint64
	HasOccupancy   bool
	HasTotal       bool
	HasLocal       bool
}

// Rates turns two samples into per-second bandwidth plus the newer
// occupancy. A counter that went backwards (the group was removed and
// made again) or is missing from either sample gives no rate for that
// interval rather than a wrong one. Groups and domains only in cur get
// their occupancy and no rate.
func Rates(prev, cur MonSample) map[int]map[string]Counters {
	out := map[int]map[string]Counters{}
	secs := cur.At.Sub(prev.At).Seconds()
	for d, groups := range cur.Domains {
		m := map[string]Counters{}
		for name, c := range groups {
			var out Counters
			if c.HasOccupancy {
				out.OccupancyBytes = c.OccupancyBytes
			}
			if p, ok := prev.Domains[d][name]; ok && secs > 0 {
				if c.HasTotal && p.HasTotal && c.TotalBytes >= p.TotalBytes {
					out.TotalBytesPerSec = float64(c.TotalBytes-p.TotalBytes) / secs
				}
				if c.HasLocal && p.HasLocal && c.LocalBytes >= p.LocalBytes {
					out.LocalBytesPerSec = float64(c.LocalBytes-p.LocalBytes) / secs
				}
			}
			m[name] = out
		}
		out[d] = m
	}
	return out
}
