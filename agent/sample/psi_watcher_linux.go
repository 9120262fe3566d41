package sample

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"golang.org/x/sys/unix"
)

// wakeTag marks the eventfd in epoll events; triggers are tagged with their
// index, which is never negative.
const wakeTag = -1

// PSIWatcher holds PSI triggers open and turns the kernel's POLLPRI wake-ups
// into PSIEvents, so the agent loop reacts to pressure without waiting for
// its next tick.
type PSIWatcher struct {
	triggers []PSITrigger
	fds      []int
	epfd     int
	wakefd   int
	events   chan PSIEvent
	stop     chan struct{} // closed by Close: unblocks a pending send
	done     chan struct{} // closed by run on exit
	close    sync.Once
	closeErr error
}

// NewPSIWatcher registers every trigger (host-wide under procRoot, normally
// "/proc", or on a cgroup2 directory) and starts one goroutine that waits on
// all of them. When the kernel refuses a window because the process lacks
// CAP_SYS_RESOURCE (EINVAL for a window that is not a multiple of 2 s), the
// trigger falls back to the next 2 s multiple with its stall scaled alike,
// logs that once, and Triggers reports what is in force. A nil log discards.
func NewPSIWatcher(procRoot string, triggers []PSITrigger, log *slog.Logger) (*PSIWatcher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(triggers) == 0 {
		return nil, errors.New("psi watcher: no triggers")
	}
	for _, t := range triggers {
		if err := t.validate(); err != nil {
			return nil, fmt.Errorf("psi watcher: %w", err)
		}
	}
	w := &PSIWatcher{epfd: -1, wakefd: -1, stop: make(chan struct{}), done: make(chan struct{})}
	fail := func(err error) (*PSIWatcher, error) {
		w.closeFDs()
		return nil, fmt.Errorf("psi watcher: %w", err)
	}
	var err error
	if w.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fail(fmt.Errorf("epoll_create1: %w", err))
	}
	if w.wakefd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return fail(fmt.Errorf("eventfd: %w", err))
	}
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, w.wakefd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeTag}); err != nil {
		return fail(fmt.Errorf("epoll_ctl wake: %w", err))
	}
	for _, t := range triggers {
		fd, inForce, err := registerPSITrigger(procRoot, t, log)
		if err != nil {
			return fail(err)
		}
		w.fds = append(w.fds, fd)
		w.triggers = append(w.triggers, inForce)
		ev := unix.EpollEvent{Events: unix.EPOLLPRI, Fd: int32(len(w.fds) - 1)}
		if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return fail(fmt.Errorf("epoll_ctl %v: %w", inForce, err))
		}
	}
	// One slot per trigger: a slow reader loses repeats of a trigger that is
	// already pending, never the fact that it fired.
	w.events = make(chan PSIEvent, len(w.triggers))
	go w.run()
	return w, nil
}

// registerPSITrigger opens the pressure file and writes the trigger, falling
// back to an unprivileged window on EINVAL.
func registerPSITrigger(procRoot string, t PSITrigger, log *slog.Logger) (int, PSITrigger, error) {
	fd, err := writePSITrigger(procRoot, t)
	if errors.Is(err, unix.EINVAL) {
		if f, ok := t.unprivilegedFallback(); ok {
			fd, err = writePSITrigger(procRoot, f)
			if err == nil {
				log.Info("psi trigger window refused by the kernel (no CAP_SYS_RESOURCE?); using a 2 s multiple",
					"trigger", t.String(), "window", f.Window, "stall", f.Stall)
				return fd, f, nil
			}
		}
	}
	if err != nil {
		return -1, t, err
	}
	return fd, t, nil
}

func writePSITrigger(procRoot string, t PSITrigger) (int, error) {
	path := t.file(procRoot)
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) && t.Cgroup != "" {
			return -1, fmt.Errorf("psi trigger %v: open %s: %w", t, path, ErrCgroupGone)
		}
		return -1, fmt.Errorf("psi trigger %v: open %s: %w", t, path, err)
	}
	if _, err := unix.Write(fd, []byte(t.text())); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("psi trigger %v: write %s: %w", t, path, err)
	}
	return fd, nil
}

// C delivers an event each time a trigger fires. It is closed by Close.
func (w *PSIWatcher) C() <-chan PSIEvent { return w.events }

// Triggers returns the triggers in force, in the order given to
// NewPSIWatcher (windows may differ after a fallback).
func (w *PSIWatcher) Triggers() []PSITrigger { return append([]PSITrigger(nil), w.triggers...) }

// Close stops the goroutine, waits for it, closes C and releases the
// triggers (closing a trigger's file removes it from the kernel). Safe to
// call more than once.
func (w *PSIWatcher) Close() error {
	w.close.Do(func() {
		close(w.stop)
		one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
		if _, err := unix.Write(w.wakefd, one); err != nil {
			w.closeErr = fmt.Errorf("psi watcher: wake: %w", err)
			// Without the wake-up the goroutine would block forever;
			// closing the epoll fd does not wake epoll_wait.
			return
		}
		<-w.done
		w.closeFDs()
	})
	return w.closeErr
}

func (w *PSIWatcher) closeFDs() {
	for _, fd := range w.fds {
		unix.Close(fd)
	}
	w.fds = nil
	for _, fd := range []*int{&w.wakefd, &w.epfd} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

func (w *PSIWatcher) run() {
	defer close(w.done)
	defer close(w.events)
	buf := make([]unix.EpollEvent, len(w.triggers)+1)
	for {
		n, err := unix.EpollWait(w.epfd, buf, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			// Cannot happen with valid fds; stop rather than spin.
			return
		}
		for _, ev := range buf[:n] {
			if ev.Fd == wakeTag {
				return
			}
			i := int(ev.Fd)
			t := w.triggers[i]
			if ev.Events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
				// A removed cgroup's pressure file reports POLLERR forever;
				// stop watching it so the loop does not spin.
				_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, w.fds[i], nil)
				// A dead trigger is news the loop must get: wait for room
				// (or for Close) instead of dropping it.
				select {
				case w.events <- PSIEvent{Trigger: t, Err: fmt.Errorf("psi trigger %v: %w", t, ErrCgroupGone)}:
				case <-w.stop:
					return
				}
				continue
			}
			w.send(PSIEvent{Trigger: t})
		}
	}
}

func (w *PSIWatcher) send(ev PSIEvent) {
	select {
	case w.events <- ev:
	default:
	}
}
