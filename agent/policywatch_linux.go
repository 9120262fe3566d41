package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Why inotify directly and not fsnotify: fsnotify v1.10 watches a directory
// with IN_MODIFY among its default events and does not export the option
// that narrows the mask, so every write to any file beside the policy woke
// the agent (a busy log in /etc/sluice cost it 59% of a core, all of it in
// fsnotify). The kernel can only filter by event kind, not by name, so the
// narrowing has to be in the masks:
//
//   - the directory: IN_CREATE | IN_MOVED_TO. An editor's write-then-rename
//     and a Kubernetes ConfigMap's "..data" symlink swap are renames into
//     the directory; a policy file created where there was none is a create.
//     Writes to other files in the directory raise none of these.
//   - the policy file itself (symlinks followed, so a ConfigMap's real file):
//     IN_CLOSE_WRITE, for in-place writes (`cat new > policy.yaml`). Watched
//     again after every rename or create, because the path then names a new
//     inode.
const (
	policyDirMask  = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_ONLYDIR
	policyFileMask = unix.IN_CLOSE_WRITE
)

// policyWatch follows one policy path through inotify.
type policyWatch struct {
	f    *os.File
	path string
	base string
	dir  int32
	// wakeups counts inotify events read, whatever their name: the cost a
	// busy directory puts on the agent. Tests read it.
	wakeups atomic.Int64
}

func newPolicyWatch(path string) (*policyWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("watch policy: inotify_init1: %w", err)
	}
	// Non-blocking and wrapped in an *os.File: reads park in the runtime's
	// poller and Close wakes them, so the watch stops with its context.
	w := &policyWatch{f: os.NewFile(uintptr(fd), "inotify"), path: path, base: filepath.Base(path)}
	dir := filepath.Dir(path)
	wd, err := unix.InotifyAddWatch(fd, dir, policyDirMask)
	if err != nil {
		w.f.Close()
		return nil, fmt.Errorf("watch policy directory %s: %w", dir, err)
	}
	w.dir = int32(wd)
	w.watchFile()
	return w, nil
}

// watchFile (re)adds the watch on the file the path names now. A missing
// file is not an error: the directory watch sees it arrive.
func (w *policyWatch) watchFile() {
	_, _ = unix.InotifyAddWatch(int(w.f.Fd()), w.path, policyFileMask)
}

// run reads events until ctx ends, sending on changed whenever the policy
// may have changed (coalescing: a pending signal is not duplicated).
func (w *policyWatch) run(ctx context.Context, changed chan<- struct{}) error {
	stop := context.AfterFunc(ctx, func() { w.f.Close() })
	defer stop()
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("watch policy: read inotify: %w", err)
		}
		if w.matches(buf[:n]) {
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}
}

// matches walks one read's events and reports whether any concerns the
// policy: its own name or the ConfigMap "..data" link in the directory, any
// event on the file watch, or a queue overflow (something may be missed).
func (w *policyWatch) matches(buf []byte) bool {
	hit := false
	for off := 0; off+unix.SizeofInotifyEvent <= len(buf); {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
		nameEnd := off + unix.SizeofInotifyEvent + int(ev.Len)
		if nameEnd > len(buf) {
			break
		}
		name := string(trimNUL(buf[off+unix.SizeofInotifyEvent : nameEnd]))
		off = nameEnd
		w.wakeups.Add(1)
		switch {
		case ev.Mask&unix.IN_Q_OVERFLOW != 0:
			hit = true
		case ev.Wd != w.dir:
			// The file watch; IN_IGNORED only says an old inode went away.
			hit = hit || ev.Mask&unix.IN_CLOSE_WRITE != 0
		case name == w.base || name == "..data":
			w.watchFile()
			hit = true
		}
	}
	return hit
}

func trimNUL(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}
