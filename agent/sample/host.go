package sample

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"

	"github.com/sluicehq/sluice/qos"
)

// Host samples host-wide CPU, memory and PSI from procfs.
//
// CPU use is a rate: each Sample reports busy CPU over the interval since the
// previous Sample (or since NewHost for the first one). Host is not safe for
// concurrent use; the agent loop owns it.
type Host struct {
	procRoot string
	// files holds /proc/stat, /proc/meminfo and the pressure files open on
	// a real procfs (see heldFiles); read reads through it, or opens each
	// time on fixtures.
	files heldFiles
	read  fileReader
	buf   []byte
	// cpus is the last online CPU list handed out (never changed after,
	// since samples share it); scratch is where the next one is parsed.
	cpus, scratch []int
	// psiMissing is set once, at construction, when the kernel has no
	// /proc/pressure; Sample then leaves PSI at zero instead of failing
	// every tick.
	psiMissing error

	prev          cpuTicks
	lastUsedMilli int64

	// psiEvery, psiCount and lastPSI pace PSI reads (see ReadPSIEvery).
	psiEvery, psiCount int
	lastPSI            qos.PSI
	// memEvery, memCount and lastMem pace meminfo reads (ReadMemoryEvery).
	memEvery, memCount int
	lastMem            meminfoFields
}

// ReadMemoryEvery makes Sample read /proc/meminfo only every n-th call and
// repeat the last figures in between; n <= 1 reads every time (the
// default). The fast host tick exists to see CPU bursts within 100 ms;
// memory lending reacts over grace windows of seconds and is woken early
// by memory PSI triggers, and /proc/meminfo is a fifty-line file the
// kernel formats afresh on every read.
func (h *Host) ReadMemoryEvery(n int) { h.memEvery = n }

// Close releases the files the sampler holds open.
func (h *Host) Close() error {
	h.files.close()
	return nil
}

// ReadPSIEvery makes Sample read /proc/pressure only every n-th call and
// repeat the last figures in between. The kernel recomputes the avg10
// averages every 2 s (PSI_FREQ), so reading them on a 100 ms tick costs
// three file reads per tick for numbers that have not changed; fast
// reaction to pressure comes from PSI triggers, not from these averages.
// n <= 1 reads every time (the default).
func (h *Host) ReadPSIEvery(n int) { h.psiEvery = n }

// cpuTicks holds the aggregate "cpu" line of /proc/stat in USER_HZ ticks.
type cpuTicks struct {
	busy, total int64
}

// NewHost reads a first /proc/stat baseline under procRoot (normally
// "/proc") and probes PSI once. A kernel without PSI is not an error: it is
// logged once and reported by PSIMissing. A nil log discards.
func NewHost(procRoot string, log *slog.Logger) (*Host, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Host{procRoot: procRoot, read: openAndRead, buf: make([]byte, 0, 4096)}
	if procfsMount(procRoot) {
		h.read = h.files.read
	}
	var err error
	if h.prev, _, err = h.readCPU(); err != nil {
		h.files.close()
		return nil, fmt.Errorf("host sampler: %w", err)
	}
	if _, err := h.read(filepath.Join(procRoot, "pressure"), "cpu", h.buf); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			h.files.close()
			return nil, fmt.Errorf("host sampler: read %s: %w", filepath.Join(procRoot, "pressure", "cpu"), err)
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

	if h.memCount%max(h.memEvery, 1) == 0 {
		name := filepath.Join(h.procRoot, "meminfo")
		data, err := h.read(h.procRoot, "meminfo", h.buf)
		if err != nil {
			return s, fmt.Errorf("host sample: read %s: %w", name, err)
		}
		h.buf = data[:0]
		if h.lastMem, err = parseMeminfo(data); err != nil {
			return s, fmt.Errorf("host sample: %s: %w", name, err)
		}
	}
	h.memCount++
	s.MemTotalBytes = h.lastMem.totalBytes
	s.MemAvailableBytes = h.lastMem.availableBytes
	s.PageCacheBytes = h.lastMem.cachedBytes + h.lastMem.buffersBytes

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
	data, err := h.read(h.procRoot, "stat", h.buf)
	if err != nil {
		return cpuTicks{}, nil, fmt.Errorf("read %s: %w", filepath.Join(h.procRoot, "stat"), err)
	}
	h.buf = data[:0]
	t, cpus, err := parseProcStat(data, h.scratch)
	h.scratch = cpus
	if err != nil {
		return cpuTicks{}, nil, fmt.Errorf("%s: %w", filepath.Join(h.procRoot, "stat"), err)
	}
	if !slices.Equal(cpus, h.cpus) {
		h.cpus = slices.Clone(cpus)
	}
	return t, h.cpus, nil
}

func (h *Host) readPSI() (qos.PSI, error) {
	var p qos.PSI
	dir := filepath.Join(h.procRoot, "pressure")
	for _, r := range []struct {
		resource   string
		some, full *float64
	}{
		{"cpu", &p.CPUSomeAvg10, nil},
		{"memory", &p.MemorySomeAvg10, &p.MemoryFullAvg10},
		{"io", &p.IOSomeAvg10, &p.IOFullAvg10},
	} {
		name := filepath.Join(dir, r.resource)
		data, err := h.read(dir, r.resource, h.buf)
		if err != nil {
			return p, fmt.Errorf("read %s: %w", name, err)
		}
		h.buf = data[:0]
		st, err := parsePSI(data)
		switch {
		case err != nil:
			return p, fmt.Errorf("%s: %w", name, err)
		case !st.hasSome:
			return p, fmt.Errorf("%s: no \"some\" line", name)
		case r.full != nil && !st.hasFull:
			return p, fmt.Errorf("%s: no \"full\" line", name)
		}
		*r.some = st.some
		if r.full != nil {
			*r.full = st.full
		}
	}
	return p, nil
}
