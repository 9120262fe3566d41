package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/rdt"
	"github.com/sluicehq/sluice/rdt/resctrl"
	"github.com/sluicehq/sluice/rdt/resctrltest"
)

// fakeConfig sets the fake run.
type fakeConfig struct {
	Target time.Duration
	Log    *slog.Logger
	// Tick is the simulated decision interval; the run lasts Ticks ticks.
	Tick  time.Duration
	Ticks int
	// BurstFrom and BurstTo are the ticks during which offline streams
	// through memory on socket 0.
	BurstFrom, BurstTo int
}

// fakeReport is what one fake run saw.
type fakeReport struct {
	// Writes are the schemata writes to the offline group, in order, with
	// the simulated time they were made.
	Writes []timedWrite
	// Latencies are the simulated online p99 per tick.
	Latencies []time.Duration
	// Reasons are the offline intent's reason kinds per tick.
	Reasons []rdt.ReasonKind
	// Decision is the wall time of each tick's read -> decide -> apply.
	Decision []time.Duration
	Failed   []qos.IntentResult
}

type timedWrite struct {
	At   time.Duration
	Text string
}

func (r fakeReport) String() string {
	var b strings.Builder
	b.WriteString("fake resctrl (Intel, two sockets, 11 ways, MBA): offline schemata writes\n")
	for _, w := range r.Writes {
		fmt.Fprintf(&b, "  t=%-6v %s\n", w.At, strings.ReplaceAll(strings.TrimSpace(w.Text), "\n", "  "))
	}
	d := slices.Clone(r.Decision)
	slices.Sort(d)
	if len(d) > 0 {
		fmt.Fprintf(&b, "decision latency (monitor read + rates + decide + apply), %d ticks: p50 %v  p99 %v  max %v\n",
			len(d), d[len(d)/2], d[len(d)*99/100], d[len(d)-1])
	}
	return b.String()
}

// world is the simulated host: online latency and the MBM/occupancy
// counters respond to the offline group's schemata as the kernel holds it.
type world struct {
	f       *resctrltest.Fake
	hw      rdt.Hardware
	total   map[string]map[int]uint64 // group -> domain -> cumulative MBM bytes
	ways    int
	bwPerMB float64 // bytes/s offline streams per MB point
}

const (
	onlineBytesPerSec = 5e9
	onlineOccupancy   = 10 << 20
	cacheBytes        = 30 << 20
	baseLatency       = time.Millisecond
)

// step advances the world by dt and returns online's p99 for the interval.
// While offline streams (socket 0 only), online's p99 grows with the share
// of ways and bandwidth offline holds there: 1ms + 8ms x ways/11 x MB/100.
func (w *world) step(dt time.Duration, streaming bool) time.Duration {
	off, _ := rdt.ParseSchemata(w.f.Schemata(rdt.GroupOffline))
	lat := baseLatency
	for _, d := range w.hw.MB.Domains {
		mask, _ := off.Get(rdt.ResourceL3, d)
		mb, _ := off.Get(rdt.ResourceMB, d)
		ways := bits.OnesCount64(mask)
		offBW, offOcc := 0.0, uint64(0)
		if streaming && d == 0 {
			offBW = float64(mb) * w.bwPerMB
			offOcc = uint64(ways) * cacheBytes / uint64(w.ways)
			lat += time.Duration(8 * float64(time.Millisecond) * float64(ways) / float64(w.ways) * float64(mb) / 100)
		}
		w.add(rdt.GroupOffline, d, offBW, offOcc, dt)
		w.add(rdt.GroupOnline, d, onlineBytesPerSec, onlineOccupancy, dt)
	}
	return lat
}

func (w *world) add(group string, d int, bytesPerSec float64, occ uint64, dt time.Duration) {
	if w.total[group] == nil {
		w.total[group] = map[int]uint64{}
	}
	w.total[group][d] += uint64(bytesPerSec * dt.Seconds())
	t := w.total[group][d]
	w.f.SetCounters(group, d, rdt.RawCounters{OccupancyBytes: occ, TotalBytes: t, LocalBytes: t, HasOccupancy: true, HasTotal: true, HasLocal: true})
}

// taskList is the fake host's cgroups.
type taskList map[string][]int

func (t taskList) Threads(cg string) ([]int, error) { return t[cg], nil }

// runFake drives Decide and the enforcer against the fake mount in
// simulated time; only the decision latency is wall time.
func runFake(cfg fakeConfig) (fakeReport, error) {
	if cfg.Tick == 0 {
		cfg.Tick = 100 * time.Millisecond
	}
	if cfg.Ticks == 0 {
		cfg.Ticks, cfg.BurstFrom, cfg.BurstTo = 400, 30, 200
	}
	f := resctrltest.New(resctrltest.IntelTwoSocket())
	for _, pid := range []int{101, 201, 202} {
		f.AddTask(pid)
	}
	hw, err := resctrl.Probe(f)
	if err != nil {
		return fakeReport{}, err
	}
	pol := rdt.DefaultPolicy()
	pol.OnlineLatencyTarget = cfg.Target
	if err := pol.Validate(hw); err != nil {
		return fakeReport{}, err
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	tasks := taskList{"/bench/online": {101}, "/bench/offline": {201, 202}}
	enf, err := resctrl.New(resctrl.Config{FS: f, Hardware: hw, Tasks: tasks, Log: cfg.Log, Now: func() time.Time { return now }})
	if err != nil {
		return fakeReport{}, err
	}
	mon := resctrl.NewMonitor(f, hw)
	w := &world{f: f, hw: hw, total: map[string]map[int]uint64{}, ways: 11, bwPerMB: 2e8}
	wl := []rdt.Workload{{CgroupPath: "/bench/online", Class: rdt.ClassOnline}, {CgroupPath: "/bench/offline", Class: rdt.ClassOffline}}

	var rep fakeReport
	var st rdt.State
	prev, _ := mon.Read(now)
	lat := baseLatency
	for i := range cfg.Ticks {
		began := time.Now()
		cur, err := mon.Read(now)
		if err != nil {
			return rep, err
		}
		in := rdt.Signals{Now: now, OnlineLatencyP99: lat, Domains: rdt.Rates(prev, cur), Workloads: wl, OfflineMerged: enf.Merged()}
		plan, next := rdt.Decide(in, pol, hw, st)
		results := enf.Apply(context.Background(), plan)
		rep.Decision = append(rep.Decision, time.Since(began))
		st, prev = next, cur
		for _, r := range results {
			if r.Status == qos.ResultFailed {
				rep.Failed = append(rep.Failed, r)
			}
		}
		for _, g := range plan.Groups {
			if g.Class == rdt.ClassOffline {
				rep.Reasons = append(rep.Reasons, g.Reason.Kind)
			}
		}
		for _, wr := range f.Writes() {
			if wr.Name == rdt.GroupOffline+"/schemata" && wr.Err == nil {
				rep.Writes = append(rep.Writes, timedWrite{At: now.Sub(start), Text: wr.Data})
			}
		}
		f.ResetWrites()
		now = now.Add(cfg.Tick)
		lat = w.step(cfg.Tick, i >= cfg.BurstFrom && i < cfg.BurstTo)
		rep.Latencies = append(rep.Latencies, lat)
	}
	return rep, nil
}
