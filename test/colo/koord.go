package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"time"
)

// koordParams is the koordinator-like baseline: Koordinator's koordlet
// "CPU Suppress" in its cfsQuota policy, as its documentation describes
// it. Every interval (1 s) it sets the best-effort (offline) parent's CFS
// quota to
//
//	suppress(BE) = node capacity x cpuSuppressThresholdPercent (65%)
//	               - pod(LS).Used - system.Used
//
// where system.Used is node use outside pods. Here "pods" are the online
// service (LS) and the offline burners (BE); the load generator is not a
// pod, so it counts as system. The quota never goes below a floor (2 ms
// per 100 ms period), grows by at most 10% of the node's CPUs per step
// ("scale up slow") and is left alone when it would move by less than 1%
// of the node. Its BE pods also run at the minimum cpu.shares (2).
type koordParams struct {
	CapacityMilli    int64   // node CPUs x 1000
	ThresholdShare   float64 // 0.65
	PeriodMicros     int64   // cpu.cfs_period_us, 100000
	MinQuotaMicros   int64   // 2000
	MaxIncreaseShare float64 // 0.10 of the node per step
	BypassDeltaShare float64 // 0.01 of the node
	Interval         time.Duration
}

func defaultKoordParams(cpus int) koordParams {
	return koordParams{
		CapacityMilli: int64(cpus) * 1000, ThresholdShare: 0.65, PeriodMicros: 100_000,
		MinQuotaMicros: 2000, MaxIncreaseShare: 0.10, BypassDeltaShare: 0.01, Interval: time.Second,
	}
}

// koordUsage is one interval's average use, in milli-CPUs.
type koordUsage struct {
	HostMilli, OnlineMilli, OfflineMilli int64
}

// nextQuota returns the quota (µs per period) to write after an interval
// with use u, given the quota in force (-1: none); write is false when the
// change is too small to bother with.
func (p koordParams) nextQuota(prev int64, u koordUsage) (quota int64, write bool) {
	system := max(0, u.HostMilli-u.OnlineMilli-u.OfflineMilli)
	suppressMilli := int64(float64(p.CapacityMilli)*p.ThresholdShare) - u.OnlineMilli - system
	quota = suppressMilli * p.PeriodMicros / 1000
	if prev > 0 {
		if step := int64(p.MaxIncreaseShare * float64(p.CapacityMilli) * float64(p.PeriodMicros) / 1000); quota > prev+step {
			quota = prev + step
		}
	}
	quota = max(quota, p.MinQuotaMicros)
	if prev > 0 {
		bypass := int64(p.BypassDeltaShare * float64(p.CapacityMilli) * float64(p.PeriodMicros) / 1000)
		if d := quota - prev; d < bypass && -d < bypass {
			return prev, false
		}
	}
	return quota, true
}

// runKoord runs the baseline controller on the benchmark's offline parent
// until ctx ends, reading the root's, online's and offline's cpuacct.usage
// every interval. A failed read or write is logged and retried next time.
func runKoord(ctx context.Context, t tree, p koordParams, log *slog.Logger) {
	quotaFile := filepath.Join(t.root, "cpu", t.offline(), "cpu.cfs_quota_us")
	read := func() (host, on, off time.Duration, err error) {
		if host, err = t.cpuUsage("/"); err != nil {
			return
		}
		if on, err = t.cpuUsage(t.online()); err != nil {
			return
		}
		off, err = t.cpuUsage(t.offline())
		return
	}
	prevQuota := int64(-1)
	h0, on0, off0, err := read()
	at0 := time.Now()
	tick := time.NewTicker(p.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		h1, on1, off1, rerr := read()
		at1 := time.Now()
		if err != nil || rerr != nil {
			log.Warn("koordinator-like: read usage", "err", fmt.Sprint(err, rerr))
			h0, on0, off0, err, at0 = h1, on1, off1, rerr, at1
			continue
		}
		milli := func(a, b time.Duration) int64 { return int64(1000 * (b - a).Seconds() / at1.Sub(at0).Seconds()) }
		q, write := p.nextQuota(prevQuota, koordUsage{HostMilli: milli(h0, h1), OnlineMilli: milli(on0, on1), OfflineMilli: milli(off0, off1)})
		h0, on0, off0, at0 = h1, on1, off1, at1
		if !write {
			continue
		}
		if werr := writeExisting(quotaFile, strconv.FormatInt(q, 10)); werr != nil {
			log.Warn("koordinator-like: write quota", "err", werr)
			continue
		}
		prevQuota = q
	}
}
