package sample

import (
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// heldFiles keeps cgroup files open between ticks and re-reads them with
// pread at offset 0, which makes the kernel generate their text afresh
// (seq_file restarts at offset 0). Opening a cgroup file walks its path
// through sysfs and kernfs and closing it tears down the open file, which
// was over half of the agent's per-workload sampling cost; the read itself
// is what remains.
//
// A held file of a removed cgroup reads ENODEV (kernfs deactivated it); it
// is then closed and opened again by path, so a cgroup removed and created
// again under the same path is read afresh, and a gone one reports the
// open's ENOENT. Holding a file does not keep its cgroup from being
// removed. Files not read between two sweeps are closed, so exited
// workloads do not hold descriptors: each held cgroup costs up to four.
//
// Only files on cgroupfs are held (see cgroupfs.OnCgroupfs): a regular file replaced
// or unlinked under an open descriptor keeps reading its old contents,
// which is not how cgroup files behave, so fixture trees are opened on
// every read. Safe for concurrent use; a read holds the lock so a sweep
// cannot close a descriptor under it.
type heldFiles struct {
	mu    sync.Mutex
	gen   uint64
	files map[heldKey]*heldFile
}

// heldKey names a file by its directory and name, so that a tick's reads
// need no path joined.
type heldKey struct{ dir, name string }

type heldFile struct {
	fd  int
	gen uint64 // the sweep generation it was last read in
}

// read returns the current contents of dir/name in buf (grown if needed).
func (h *heldFiles) read(dir, name string, buf []byte) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.files == nil {
		h.files = map[heldKey]*heldFile{}
	}
	key := heldKey{dir, name}
	if f, ok := h.files[key]; ok {
		data, err := preadAll(f.fd, buf)
		if err == nil {
			f.gen = h.gen
			return data, nil
		}
		// ENODEV (the cgroup was removed) or anything else: start over
		// from the path, which says whether a cgroup is there now.
		unix.Close(f.fd)
		delete(h.files, key)
	}
	fd, err := unix.Open(filepath.Join(dir, name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	data, err := preadAll(fd, buf)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	h.files[key] = &heldFile{fd: fd, gen: h.gen}
	return data, nil
}

// sweep closes the files not read since the previous sweep and returns
// how many stay open.
func (h *heldFiles) sweep() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	for p, f := range h.files {
		if f.gen != h.gen {
			unix.Close(f.fd)
			delete(h.files, p)
		}
	}
	h.gen++
	return len(h.files)
}

// close closes every held file.
func (h *heldFiles) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for p, f := range h.files {
		unix.Close(f.fd)
		delete(h.files, p)
	}
}

// preadAll reads the whole file from offset 0 in one pread when buf is
// large enough; when the read fills buf it grows buf and reads again from
// 0, so the text is always one generation, never two stitched together.
func preadAll(fd int, buf []byte) ([]byte, error) {
	buf = buf[:0]
	if cap(buf) < 512 {
		buf = make([]byte, 0, 512)
	}
	for {
		n, err := unix.Pread(fd, buf[:cap(buf)], 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n < cap(buf) {
			return buf[:n], nil
		}
		buf = make([]byte, 0, 2*cap(buf))
	}
}

// procfsMount reports whether dir is a procfs mount.
func procfsMount(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.PROC_SUPER_MAGIC
}
