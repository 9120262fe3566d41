package ebpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	cebpf "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// WakeClass marks a cgroup for the programs' wake-ups.
type WakeClass uint32

// Wake classes, as bpf/runq.c's WAKE_CLASS_*.
const (
	WakeClassNone    WakeClass = 0
	WakeClassOnline  WakeClass = 1
	WakeClassOffline WakeClass = 2
)

// WakeKind says why the programs posted a wake-up.
type WakeKind uint32

// Wake kinds, as bpf/runq.c's WAKE_*.
const (
	// WakePreempt: an offline task left a CPU still runnable and an online
	// task took it — online work wants CPU offline work holds.
	WakePreempt WakeKind = 1
	// WakeRunq: an online task's run-queue wait exceeded the threshold.
	WakeRunq WakeKind = 2
	// WakeWoken: an online task was woken (sched_wakeup or
	// sched_wakeup_new), whatever its CPU was running: the start of an
	// online burst, seen before the task preempts or waits.
	WakeWoken WakeKind = 3
)

func (k WakeKind) String() string {
	switch k {
	case WakePreempt:
		return "online-preempts-offline"
	case WakeRunq:
		return "online-runq-delay"
	case WakeWoken:
		return "online-woken"
	}
	return fmt.Sprintf("WakeKind(%d)", uint32(k))
}

// WakeEvent is one wake-up: a hint to look at the exact counters now,
// never a measurement.
type WakeEvent struct {
	// CgroupID is the online cgroup (in the sampler's key mode) that wants CPU.
	CgroupID uint64
	// Delay is the wait that crossed the threshold (WakeRunq only).
	Delay time.Duration
	Kind  WakeKind
	CPU   uint32
}

// WakeConfig turns the programs' wake-ups on.
type WakeConfig struct {
	// RunqThreshold posts WakeRunq for online waits above it; 0 posts none.
	RunqThreshold time.Duration
	// MinGap is the least time between two wake-ups from one CPU (each
	// costs the agent a decision); at least 1 ms.
	MinGap time.Duration
}

// SetWakes turns wake-ups on with cfg, or off with the zero WakeConfig.
// Cgroups are marked with SetWakeClass.
func (s *Sampler) SetWakes(cfg WakeConfig) error {
	if cfg != (WakeConfig{}) && cfg.MinGap < time.Millisecond {
		return fmt.Errorf("ebpf runq: wake-ups: min gap %v: want at least 1ms", cfg.MinGap)
	}
	v := runqWakeConfig{RunqThresholdNs: uint64(max(cfg.RunqThreshold, 0)), MinGapNs: uint64(cfg.MinGap)}
	if cfg != (WakeConfig{}) {
		v.Enabled = 1
	}
	if err := s.maps.WakeCfg.Update(uint32(0), v, cebpf.UpdateAny); err != nil {
		return fmt.Errorf("ebpf runq: set wake-ups: %w", err)
	}
	return nil
}

// SetWakeClass marks cgroupID (in the sampler's key mode) as online or
// offline for wake-ups; WakeClassNone unmarks it (a missing mark is not an
// error). The map holds as many cgroups as MaxCgroups.
func (s *Sampler) SetWakeClass(cgroupID uint64, c WakeClass) error {
	var err error
	if c == WakeClassNone {
		err = s.maps.WakeClass.Delete(cgroupID)
		if errors.Is(err, cebpf.ErrKeyNotExist) {
			err = nil
		}
	} else {
		err = s.maps.WakeClass.Update(cgroupID, uint32(c), cebpf.UpdateAny)
	}
	if err != nil {
		return fmt.Errorf("ebpf runq: mark cgroup %d for wake-ups as %d: %w", cgroupID, c, err)
	}
	return nil
}

// NextWake blocks until the programs post a wake-up or the sampler is
// closed (then the error wraps os.ErrClosed). One goroutine reads.
func (s *Sampler) NextWake() (WakeEvent, error) {
	s.mu.Lock()
	if s.wake == nil && s.maps.WakeEvents != nil {
		r, err := newWakeRing(s.maps.WakeEvents)
		if err != nil {
			s.mu.Unlock()
			return WakeEvent{}, fmt.Errorf("ebpf runq: open wake-up ring: %w", err)
		}
		s.wake = r
	}
	r := s.wake
	s.mu.Unlock()
	if r == nil {
		return WakeEvent{}, fmt.Errorf("ebpf runq: wake-ups: %w", os.ErrClosed)
	}
	var rec ringbuf.Record
	for {
		if err := r.next(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) {
				err = os.ErrClosed
			}
			return WakeEvent{}, fmt.Errorf("ebpf runq: read wake-up: %w", err)
		}
		var ev runqWakeEvent
		if _, err := binary.Decode(rec.RawSample, binary.NativeEndian, &ev); err != nil {
			continue // a short record: never written by these programs
		}
		return WakeEvent{CgroupID: ev.CgroupId, Delay: time.Duration(ev.DelayNs), Kind: WakeKind(ev.Kind), CPU: ev.Cpu}, nil
	}
}

// wakeRing reads the wake-up ring without blocking in a system call: the
// ring's descriptor waits in Go's netpoller and the reader only drains
// what is there. A goroutine blocked in epoll_wait (the reader's own wait)
// keeps its P until the runtime's sysmon takes it back, up to 10 ms later,
// and sysmon polls every 20 µs to 10 ms meanwhile; re-entered after every
// wake-up, that polling was a fifth of the agent's CPU under online load
// (perf, redis at 40% of capacity: finish_task_switch under sysmon's
// usleep). Where the descriptor cannot join the netpoller, the reader
// blocks as before.
type wakeRing struct {
	r *ringbuf.Reader
	// f is a non-blocking duplicate of the ring's descriptor in the
	// netpoller (nil: the reader blocks); rc waits on it.
	f  *os.File
	rc syscall.RawConn
}

func newWakeRing(m *cebpf.Map) (*wakeRing, error) {
	r, err := ringbuf.NewReader(m)
	if err != nil {
		return nil, err
	}
	w := &wakeRing{r: r}
	fd, err := unix.FcntlInt(uintptr(m.FD()), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return w, nil // the reader blocks
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return w, nil
	}
	f := os.NewFile(uintptr(fd), "ebpf wake-up ring")
	// A file the netpoller refused has no deadlines.
	rc, err := f.SyscallConn()
	if err != nil || f.SetReadDeadline(time.Time{}) != nil {
		f.Close()
		return w, nil
	}
	// Every read drains without waiting; waits happen in next.
	r.SetDeadline(time.Unix(1, 0))
	w.f, w.rc = f, rc
	return w, nil
}

// next reads one record, waiting for one in the netpoller.
func (w *wakeRing) next(rec *ringbuf.Record) error {
	for {
		err := w.r.ReadInto(rec)
		if w.f == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		// Nothing there. Edge-triggered: a record written since the
		// drain has marked the descriptor ready, so this returns at once.
		waited := false
		err = w.rc.Read(func(uintptr) bool {
			ok := waited
			waited = true
			return ok
		})
		if err != nil {
			// Closed meanwhile: the reader says so.
			if err := w.r.ReadInto(rec); err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
				return err
			}
			return fmt.Errorf("wait for the wake-up ring: %w", err)
		}
	}
}

// Close closes the reader, then the descriptor (which ends a wait).
func (w *wakeRing) Close() error {
	err := w.r.Close()
	if w.f != nil {
		err = errors.Join(err, w.f.Close())
	}
	return err
}
