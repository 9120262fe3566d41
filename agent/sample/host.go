package sample

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"path/filepath"
	"slices"

	"github.com/prometheus/procfs"

	"github.com/sluicehq/sluice/qos"
)

// Host samples host-wide CPU, memory and PSI from procfs.
//
// CPU use is a rate: each Sample reports busy CPU over the interval since the
// previous Sample (or since NewHost for the first one). Host is not safe for
// concurrent use; the agent loop owns it.
type Host struct {
	fs       procfs.FS
	procRoot string
	// psiMissing is set once, at construction, when the kernel has no
	// /proc/pressure; Sample then leaves PSI at zero instead of failing
	// every tick.
	psiMissing error

	prev          cpuTicks
	lastUsedMilli int64

	// psiEvery, psiCount and lastPSI pace PSI reads (see ReadPSIEvery).
	psiEvery, psiCount int
	lastPSI            qos.PSI
}

// ReadPSIEvery makes Sample read /proc/pressure only every n-th call and
// repeat the last figures in between. The kernel recomputes the avg10
// averages every 2 s (PSI_FREQ), so reading them on a 100 ms tick costs
// three file reads per tick for numbers that have not changed; fast
// reaction to pressure comes from PSI triggers, not from these averages.
// n <= 1 reads every time (the default).
func (h *Host) ReadPSIEvery(n int) { h.psiEvery = n }

// cpuTicks holds the aggregate "cpu" line of /proc/stat in USER_HZ ticks.
// procfs reports seconds (ticks / 100); they are turned back into whole
// ticks so that deltas are exact, not float residues.
type cpuTicks struct {
	busy, total int64
}

func ticks(seconds float64) int64 { return int64(math.Round(seconds * 100)) }

// NewHost reads a first /proc/stat baseline under procRoot (normally
// "/proc") and probes PSI once. A kernel without PSI is not an error: it is
// logged once and reported by PSIMissing. A nil log discards.
func NewHost(procRoot string, log *slog.Logger) (*Host, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pfs, err := procfs.NewFS(procRoot)
	if err != nil {
		return nil, fmt.Errorf("host sampler: %w", err)
	}
	h := &Host{fs: pfs, procRoot: procRoot}
	if h.prev, _, err = h.readCPU(); err != nil {
		return nil, fmt.Errorf("host sampler: %w", err)
	}
	if _, err := h.fs.PSIStatsForResource("cpu"); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("host sampler: %w", err)
		}
		h.psiMissing = fmt.Errorf("psi missing: no %s (kernel built without CONFIG_PSI or booted with psi=0): %w",
			filepath.Join(procRoot, "pressure"), err)
		log.Warn("pressure stall information unavailable; PSI stays zero", "err", h.psiMissing)
	}
	return h, nil
}

// PSIMissing returns nil when the kernel offers /proc/pressure, or the
// error (wrapping fs.ErrNotExist) that explains which feature is missing.
func (h *Host) PSIMissing() error { return h.psiMissing }

// Sample reads CPU, memory and PSI. The CPU rate needs no clock: it is the
// share of busy ticks among all ticks since the previous sample, times the
// capacity, so a late tick does not distort it. When no tick has elapsed
// since the previous sample the previous rate is repeated.
func (h *Host) Sample() (qos.HostSample, error) {
	var s qos.HostSample
	cur, cpus, err := h.readCPU()
	if err != nil {
		return s, fmt.Errorf("host sample: %w", err)
	}
	s.CPUs = cpus
	s.CPUCapacityMilli = int64(len(cpus)) * 1000
	dBusy, dTotal := cur.busy-h.prev.busy, cur.total-h.prev.total
	switch {
	case dTotal > 0 && dBusy >= 0:
		// A decreasing iowait can make dBusy exceed dTotal; cap at capacity.
		used := (dBusy*s.CPUCapacityMilli + dTotal/2) / dTotal
		h.lastUsedMilli = min(used, s.CPUCapacityMilli)
	case dBusy < 0:
		// Busy time only goes backwards when /proc/stat is not what it
		// was (a different proc root, a reset counter): rebase and report
		// no use rather than a negative rate.
		h.lastUsedMilli = 0
	}
	h.prev = cur
	s.CPUUsedMilli = h.lastUsedMilli

	mi, err := h.fs.Meminfo()
	if err != nil {
		return s, fmt.Errorf("host sample: %w", err)
	}
	for _, f := range []struct {
		name string
		v    *uint64
	}{{"MemTotal", mi.MemTotalBytes}, {"MemAvailable", mi.MemAvailableBytes}, {"Cached", mi.CachedBytes}, {"Buffers", mi.BuffersBytes}} {
		if f.v == nil {
			return s, fmt.Errorf("host sample: %s: field %s missing", filepath.Join(h.procRoot, "meminfo"), f.name)
		}
	}
	s.MemTotalBytes = *mi.MemTotalBytes
	s.MemAvailableBytes = *mi.MemAvailableBytes
	s.PageCacheBytes = *mi.CachedBytes + *mi.BuffersBytes

	if h.psiMissing == nil {
		if h.psiCount%max(h.psiEvery, 1) == 0 {
			if h.lastPSI, err = h.readPSI(); err != nil {
				return s, fmt.Errorf("host sample: %w", err)
			}
		}
		h.psiCount++
		s.PSI = h.lastPSI
	}
	return s, nil
}

// readCPU returns the aggregate busy and total time and the online CPU
// numbers, sorted: the kernel prints one cpuN line per online CPU
// (fs/proc/stat.c, for_each_online_cpu), the same set as
// /sys/devices/system/cpu/online.
func (h *Host) readCPU() (cpuTicks, []int, error) {
	st, err := h.fs.Stat()
	if err != nil {
		return cpuTicks{}, nil, err
	}
	if len(st.CPU) == 0 {
		return cpuTicks{}, nil, fmt.Errorf("%s: no per-cpu lines", filepath.Join(h.procRoot, "stat"))
	}
	cpus := make([]int, 0, len(st.CPU))
	for id := range st.CPU {
		cpus = append(cpus, int(id))
	}
	slices.Sort(cpus)
	c := st.CPUTotal
	// Guest and GuestNice are already included in User and Nice; adding
	// them would count guest time twice. Busy is summed from fields that
	// never decrease, rather than total - idle - iowait: iowait may go
	// backwards (Documentation/filesystems/proc.rst), busy time must not.
	busy := ticks(c.User) + ticks(c.Nice) + ticks(c.System) + ticks(c.IRQ) + ticks(c.SoftIRQ) + ticks(c.Steal)
	return cpuTicks{busy: busy, total: busy + ticks(c.Idle) + ticks(c.Iowait)}, cpus, nil
}

func (h *Host) readPSI() (qos.PSI, error) {
	var p qos.PSI
	for _, r := range []struct {
		resource   string
		some, full *float64
	}{
		{"cpu", &p.CPUSomeAvg10, nil},
		{"memory", &p.MemorySomeAvg10, &p.MemoryFullAvg10},
		{"io", &p.IOSomeAvg10, &p.IOFullAvg10},
	} {
		st, err := h.fs.PSIStatsForResource(r.resource)
		if err != nil {
			return p, err
		}
		if st.Some == nil {
			return p, fmt.Errorf("%s: no \"some\" line", filepath.Join(h.procRoot, "pressure", r.resource))
		}
		*r.some = st.Some.Avg10
		if r.full != nil {
			if st.Full == nil {
				return p, fmt.Errorf("%s: no \"full\" line", filepath.Join(h.procRoot, "pressure", r.resource))
			}
			*r.full = st.Full.Avg10
		}
	}
	return p, nil
}
