package main

import "testing"

func TestKoordNextQuota(t *testing.T) {
	p := defaultKoordParams(2) // 2000m capacity, 65% = 1300m
	for _, tc := range []struct {
		name      string
		prev      int64
		u         koordUsage
		want      int64
		wantWrite bool
	}{
		// 1300 - 400 online - (700-400-200)=100 system = 800m -> 80 ms per 100 ms.
		{"first write, no quota yet", -1, koordUsage{HostMilli: 700, OnlineMilli: 400, OfflineMilli: 200}, 80_000, true},
		// Offline's own use does not count against it.
		{"offline use is not system", -1, koordUsage{HostMilli: 1900, OnlineMilli: 400, OfflineMilli: 1400}, 80_000, true},
		// Same target from 30 ms: grows by at most 10% of 2 CPUs = 20 ms.
		{"scale up slow", 30_000, koordUsage{HostMilli: 700, OnlineMilli: 400, OfflineMilli: 200}, 50_000, true},
		// Cuts at once, however far.
		{"suppress at once", 150_000, koordUsage{HostMilli: 700, OnlineMilli: 400, OfflineMilli: 200}, 80_000, true},
		// Online + system above 65%: the floor, 2 ms per period.
		{"floor", 80_000, koordUsage{HostMilli: 1500, OnlineMilli: 1200, OfflineMilli: 0}, 2000, true},
		// Less than 1% of the node (2 ms) from the quota in force: left alone.
		{"bypass small change", 79_000, koordUsage{HostMilli: 700, OnlineMilli: 400, OfflineMilli: 200}, 79_000, false},
		// System (load generator, daemons) counts like online: 1300 - 400 - 500.
		{"system counts", -1, koordUsage{HostMilli: 900, OnlineMilli: 400, OfflineMilli: 0}, 40_000, true},
	} {
		got, write := p.nextQuota(tc.prev, tc.u)
		if got != tc.want || write != tc.wantWrite {
			t.Errorf("%s: nextQuota(%d, %+v) = %d, %v; want %d, %v", tc.name, tc.prev, tc.u, got, write, tc.want, tc.wantWrite)
		}
	}
}
