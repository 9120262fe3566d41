package containerdtest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
)

// CgroupMounts lists the mount points of every cgroup hierarchy on the host:
// each v1 controller (and named hierarchies such as name=systemd) and the
// v2 unified mount. runc creates a container's cgroup in all of them.
func CgroupMounts() ([]string, error) {
	ms, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Mountpoint)
	}
	sort.Strings(out)
	return out, nil
}

// removeCgroupTree kills every process left in rel and below (in every
// hierarchy) and removes the directories, deepest first. rel must be the
// test's own parent: it is never "/".
func removeCgroupTree(rel string) error {
	rel = filepath.Clean("/" + rel)
	if rel == "/" {
		return errors.New("refusing to remove a hierarchy root")
	}
	mounts, err := CgroupMounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, mp := range mounts {
		if err := removeTree(filepath.Join(mp, rel)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func removeTree(root string) error {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("walk %s: %w", root, err)
	}
	// Deepest first: a cgroup with children cannot be removed.
	sort.Slice(dirs, func(a, b int) bool { return strings.Count(dirs[a], "/") > strings.Count(dirs[b], "/") })
	var errs []error
	for _, d := range dirs {
		if err := removeCgroup(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeCgroup empties one cgroup and removes it; rmdir fails with EBUSY
// until the killed processes have really exited, so it retries for a while.
func removeCgroup(dir string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		killProcs(dir)
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rmdir %s: %w", dir, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func killProcs(dir string) {
	// cgroup.kill (v2, 5.14+) kills the whole subtree at once, also
	// processes that fork while we read cgroup.procs.
	if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0); err == nil {
		return
	}
	raw, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(raw)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// unmountUnder detaches every mount below dir (rootfs overlays of tasks a
// killed daemon did not clean), deepest first.
func unmountUnder(dir string) error {
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
	}
	sort.Slice(ms, func(a, b int) bool { return len(ms[a].Mountpoint) > len(ms[b].Mountpoint) })
	var errs []error
	for _, m := range ms {
		if err := syscall.Unmount(m.Mountpoint, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m.Mountpoint, err))
		}
	}
	return errors.Join(errs...)
}
