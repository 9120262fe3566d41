package sample

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
)

// ErrCgroupGone is wrapped by CgroupReader errors when the cgroup no longer
// exists (its container exited). It wraps fs.ErrNotExist, so callers may test
// either with errors.Is and skip the workload for this tick.
var ErrCgroupGone = fmt.Errorf("cgroup gone: %w", fs.ErrNotExist)

// ErrNoController is wrapped when a cgroup exists but lacks a controller's
// file: the controller is not enabled for it (a v2 parent without
// "+memory" in cgroup.subtree_control), or it is the v2 root, which has no
// memory.current. It does not wrap fs.ErrNotExist: this is a setup problem,
// not an exited container, and must not be skipped silently.
var ErrNoController = errors.New("controller file missing")

// CgroupUsage is one cgroup's cumulative CPU time and current memory.
type CgroupUsage struct {
	// CPUTotal is cumulative CPU time of every task in the cgroup and its
	// descendants (v1 cpuacct.usage, v2 cpu.stat usage_usec).
	CPUTotal time.Duration
	// MemoryUsageBytes is the working set: usage minus inactive file pages,
	// which the kernel can drop at once (kubelet's working_set). Hierarchical.
	MemoryUsageBytes uint64
	// MemoryLimitBytes is the hard limit; 0 means unlimited.
	MemoryLimitBytes uint64
}

// CgroupReader reads CPU and memory usage of cgroups, v1 or v2.
//
// It reads the few files it needs directly rather than through
// containerd/cgroups/v3, whose cgroup1 Stat walks every subsystem (blkio,
// hugetlb, pids, cpuset...) and whose Load resolves fixed mount points, so it
// cannot read fake trees. BenchmarkCgroupReaderReal measured, for 100 empty
// v1 cgroups on a loaded 2-CPU host: 5-13 ms, 131 KB and 2000 allocations
// per pass here against 42-88 ms, 3.3 MB and 31900 allocations for
// cgroup1 Stat.
// A CgroupReader is safe for concurrent use.
type CgroupReader struct {
	// v2 reads v2 files (cpu.stat, memory.current...), else v1 ones.
	v2 bool
	// cpuRoot and memRoot are the hierarchy roots holding cpuacct/cpu and
	// memory files: two v1 mounts, or the one v2 mount twice.
	cpuRoot, memRoot string
	// bufs holds *[]byte read buffers: a tick reads four files per
	// workload and the buffers would otherwise be garbage at once.
	bufs sync.Pool
	// held keeps the files of cgroups read every tick open (see
	// heldFiles) where a root is cgroupfs; readCPU and readMem read files
	// under cpuRoot and memRoot, through held or not.
	held             heldFiles
	readCPU, readMem fileReader
}

// NewCgroupReader returns a reader for the host's cgroup layout. On v1 and
// hybrid hosts accounting comes from the v1 cpuacct and memory
// hierarchies (co-mounted or not); on v2 from the unified hierarchy.
func NewCgroupReader(layout cgroupfs.Layout) (*CgroupReader, error) {
	r := &CgroupReader{}
	r.bufs.New = func() any {
		// memory.stat is 1-2 KiB on current kernels; a larger file
		// grows the slice instead of failing.
		b := make([]byte, 0, 4096)
		return &b
	}
	switch layout.Mode() {
	case cgroupfs.ModeV1, cgroupfs.ModeHybrid:
		r.cpuRoot, r.memRoot = layout.Hierarchy(cgroupfs.CPUAcct), layout.Hierarchy(cgroupfs.Memory)
		if r.cpuRoot == "" || r.memRoot == "" {
			return nil, fmt.Errorf("cgroup reader: layout %v: want v1 cpuacct and memory hierarchies: %w", layout, fs.ErrNotExist)
		}
	case cgroupfs.ModeV2:
		r.v2 = true
		r.cpuRoot, r.memRoot = layout.Root(), layout.Root()
	default:
		return nil, fmt.Errorf("cgroup reader: no cgroup layout detected (%v)", layout)
	}
	r.readCPU, r.readMem = r.reader(cgroupfs.OnCgroupfs(r.cpuRoot)), r.reader(cgroupfs.OnCgroupfs(r.memRoot))
	return r, nil
}

// CloseUnused closes the files of cgroups not read since the previous call
// and returns how many files stay open. The reader keeps cgroup files open
// between reads (re-reading an open file is much cheaper than opening it);
// the caller calls this once per sampling pass over its workloads so that
// exited workloads do not keep descriptors.
func (r *CgroupReader) CloseUnused() int { return r.held.sweep() }

// Close closes every file the reader holds open. The reader stays usable.
func (r *CgroupReader) Close() error {
	r.held.close()
	return nil
}

// reader returns how files under a root are read: held open on cgroupfs,
// opened on every read elsewhere (fixture trees).
func (r *CgroupReader) reader(hold bool) fileReader {
	if hold {
		return r.held.read
	}
	return openAndRead
}

// fileReader reads the whole file dir/name into buf, growing it if needed.
type fileReader func(dir, name string, buf []byte) ([]byte, error)

// openAndRead is a fileReader that opens the file on every read.
func openAndRead(dir, name string, buf []byte) ([]byte, error) {
	return cgroupfs.ReadFileInto(filepath.Join(dir, name), buf)
}

// Usage reads CPU and memory of the cgroup at cgroupPath, relative to each
// hierarchy root (e.g. "/sluice/offline/job-1"). Errors wrap ErrCgroupGone
// (and so fs.ErrNotExist) when the cgroup has vanished, ErrNoController when
// a controller's file is missing.
func (r *CgroupReader) Usage(cgroupPath string) (CgroupUsage, error) {
	var u CgroupUsage
	var err error
	if u.CPUTotal, err = r.CPU(cgroupPath); err != nil {
		return CgroupUsage{}, err
	}
	if u.MemoryUsageBytes, u.MemoryLimitBytes, err = r.Memory(cgroupPath); err != nil {
		return CgroupUsage{}, err
	}
	return u, nil
}

// CPU reads the cgroup's cumulative CPU time.
func (r *CgroupReader) CPU(cgroupPath string) (time.Duration, error) {
	dir := cgroupfs.Join(r.cpuRoot, cgroupPath)
	bp := r.bufs.Get().(*[]byte)
	defer r.bufs.Put(bp)
	if r.v2 {
		data, err := readCgroupFile(r.readCPU, dir, "cpu.stat", (*bp)[:0])
		if err != nil {
			return 0, fmt.Errorf("cgroup %s: %w", cgroupPath, err)
		}
		usec, err := cgroupfs.ParseFlatKeyed(data, "usage_usec")
		if err != nil {
			return 0, fmt.Errorf("cgroup %s: cpu.stat: %w", cgroupPath, err)
		}
		return durationOf(usec, time.Microsecond), nil
	}
	data, err := readCgroupFile(r.readCPU, dir, "cpuacct.usage", (*bp)[:0])
	if err != nil {
		return 0, fmt.Errorf("cgroup %s: %w", cgroupPath, err)
	}
	ns, err := cgroupfs.ParseUint(data)
	if err != nil {
		return 0, fmt.Errorf("cgroup %s: cpuacct.usage: %w", cgroupPath, err)
	}
	return durationOf(ns, time.Nanosecond), nil
}

// Memory reads the cgroup's working set and hard limit (0 = unlimited).
func (r *CgroupReader) Memory(cgroupPath string) (workingSetBytes, limitBytes uint64, err error) {
	usageFile, limitFile, inactiveKey := "memory.usage_in_bytes", "memory.limit_in_bytes", "total_inactive_file"
	if r.v2 {
		usageFile, limitFile, inactiveKey = "memory.current", "memory.max", "inactive_file"
	}
	dir := cgroupfs.Join(r.memRoot, cgroupPath)
	bp := r.bufs.Get().(*[]byte)
	defer r.bufs.Put(bp)
	read := func(name string, parse func([]byte) (uint64, error)) (uint64, error) {
		data, err := readCgroupFile(r.readMem, dir, name, (*bp)[:0])
		if data != nil {
			*bp = data[:0] // keep a grown buffer
		}
		if err != nil {
			return 0, fmt.Errorf("cgroup %s: %w", cgroupPath, err)
		}
		v, err := parse(data)
		if err != nil {
			return 0, fmt.Errorf("cgroup %s: %s: %w", cgroupPath, name, err)
		}
		return v, nil
	}
	usage, err := read(usageFile, cgroupfs.ParseUint)
	if err != nil {
		return 0, 0, err
	}
	inactive, err := read("memory.stat", func(b []byte) (uint64, error) { return cgroupfs.ParseFlatKeyed(b, inactiveKey) })
	if err != nil {
		return 0, 0, err
	}
	if limitBytes, err = read(limitFile, cgroupfs.ParseLimit); err != nil {
		return 0, 0, err
	}
	// usage and memory.stat are read at different instants; clamp rather
	// than wrap around when inactive file pages grew in between.
	if inactive < usage {
		workingSetBytes = usage - inactive
	}
	return workingSetBytes, limitBytes, nil
}

// readCgroupFile reads dir/name into buf (grown if needed). A missing file
// in a missing directory, or ENODEV from a file whose cgroup was removed
// after open, is ErrCgroupGone; a missing file in a present directory is
// ErrNoController.
func readCgroupFile(read fileReader, dir, name string, buf []byte) ([]byte, error) {
	data, err := read(dir, name, buf)
	switch {
	case err == nil:
		return data, nil
	case errors.Is(err, fs.ErrNotExist):
		if _, derr := os.Stat(dir); errors.Is(derr, fs.ErrNotExist) {
			return nil, ErrCgroupGone
		}
		return nil, fmt.Errorf("%s: %w", name, ErrNoController)
	case errors.Is(err, syscall.ENODEV):
		return nil, ErrCgroupGone
	}
	return nil, fmt.Errorf("read %s: %w", name, cgroupfs.ErrnoOf(err))
}

// durationOf converts a kernel counter to a Duration, saturating instead of
// wrapping for counters beyond 292 years.
func durationOf(n uint64, unit time.Duration) time.Duration {
	const maxDur = time.Duration(1<<63 - 1)
	if n > uint64(maxDur/unit) {
		return maxDur
	}
	return time.Duration(n) * unit
}
