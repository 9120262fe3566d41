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
}

// cpuTicks holds the aggregate "cpu" line of /proc/stat, in seconds as
// procfs reports it (USER_HZ ticks / 100).
type cpuTicks struct {
	busy, total float64
}

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
		used := math.Round(dBusy / dTotal * float64(s.CPUCapacityMilli))
		h.lastUsedMilli = min(int64(used), s.CPUCapacityMilli)
	case dTotal < 0 || dBusy < 0:
		// Counters only go backwards when /proc/stat is not what it was
		// (a different proc root or a CPU's counters reset on hotplug):
		// rebase and report no use rather than a negative rate.
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
		if s.PSI, err = h.readPSI(); err != nil {
			return s, fmt.Errorf("host sample: %w", err)
		}
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
	// them would count guest time twice.
	total := c.User + c.Nice + c.System + c.Idle + c.Iowait + c.IRQ + c.SoftIRQ + c.Steal
	return cpuTicks{busy: total - c.Idle - c.Iowait, total: total}, cpus, nil
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
