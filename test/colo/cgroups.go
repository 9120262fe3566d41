package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// v1Controllers are the hierarchies the benchmark's cgroups are made in:
// cpu (shares, quota, idle: what Sluice enforces), cpuacct (the CPU seconds
// reported) and memory (the offline memory limit).
var v1Controllers = [...]string{"cpu", "cpuacct", "memory"}

// tree is the benchmark's own cgroup subtree, /<base>/{online,loadgen,offline/stress-ng},
// in every v1 hierarchy it uses. It never touches a cgroup outside base.
type tree struct {
	root string // cgroup mount root, /sys/fs/cgroup
	base string // "/sluice-colo-<rand>"
}

func (t tree) online() string  { return t.base + "/online" }
func (t tree) loadgen() string { return t.base + "/loadgen" }
func (t tree) offline() string { return t.base + "/offline" }
func (t tree) stress() string  { return t.base + "/offline/stress-ng" }

// create makes the subtree in each hierarchy, parents first.
func (t tree) create() error {
	for _, ctrl := range v1Controllers {
		if _, err := os.Stat(filepath.Join(t.root, ctrl, "cgroup.procs")); err != nil {
			return fmt.Errorf("cgroup v1 %s hierarchy at %s: %w", ctrl, filepath.Join(t.root, ctrl), err)
		}
		for _, cg := range []string{t.base, t.online(), t.loadgen(), t.offline(), t.stress()} {
			if err := os.Mkdir(filepath.Join(t.root, ctrl, cg), 0o755); err != nil {
				return fmt.Errorf("create cgroup %s in %s: %w", cg, ctrl, err)
			}
		}
	}
	return nil
}

// command returns a command that joins cgroup cg in every hierarchy and
// only then execs argv: stress-ng forks its workers at once, so moving its
// pid after the start would race with the fork. The command leads its own
// process group so a phase can signal it and its children together.
func (t tree) command(cg string, argv ...string) *exec.Cmd {
	var procs []string
	for _, ctrl := range v1Controllers {
		procs = append(procs, filepath.Join(t.root, ctrl, cg, "cgroup.procs"))
	}
	const script = `for f in $SLUICE_COLO_PROCS; do echo $$ > "$f" || exit 111; done; exec "$@"`
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, "sh"}, argv...)...)
	cmd.Env = append(os.Environ(), "SLUICE_COLO_PROCS="+strings.Join(procs, " "))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// cpuUsage is cgroup cg's cpuacct.usage (all CPU time of its tasks and
// descendants).
func (t tree) cpuUsage(cg string) (time.Duration, error) {
	p := filepath.Join(t.root, "cpuacct", cg, "cpuacct.usage")
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || ns < 0 {
		return 0, fmt.Errorf("%s: %q is not a count of nanoseconds", p, strings.TrimSpace(string(b)))
	}
	return time.Duration(ns), nil
}

// neutral lifts every limit on the offline parent, so a phase "without
// Sluice" really runs without it whatever an agent left behind: no quota,
// default shares, not idle, no memory limits. The values are read back.
func (t tree) neutral() error {
	writes := []struct{ ctrl, file, value string }{
		{"cpu", "cpu.cfs_quota_us", "-1"},
		// An idle group refuses cpu.shares (EINVAL): clear idle first.
		{"cpu", "cpu.idle", "0"},
		{"cpu", "cpu.shares", "1024"},
		{"memory", "memory.limit_in_bytes", "-1"},
		{"memory", "memory.soft_limit_in_bytes", "-1"},
	}
	var errs []error
	for _, w := range writes {
		p := filepath.Join(t.root, w.ctrl, t.offline(), w.file)
		if err := os.WriteFile(p, []byte(w.value), 0); err != nil {
			if errors.Is(err, fs.ErrNotExist) && w.file == "cpu.idle" {
				continue // kernels before 5.15 have no cpu.idle
			}
			errs = append(errs, fmt.Errorf("reset %s: %w", p, err))
		}
	}
	if b, err := os.ReadFile(filepath.Join(t.root, "cpu", t.offline(), "cpu.cfs_quota_us")); err != nil || strings.TrimSpace(string(b)) != "-1" {
		errs = append(errs, fmt.Errorf("offline cpu.cfs_quota_us is %q after reset (%v)", b, err))
	}
	return errors.Join(errs...)
}

// killAll SIGKILLs every task in the subtree until none is left (a task
// may fork while it is being killed) or the deadline passes.
func (t tree) killAll(deadline time.Duration) error {
	end := time.Now().Add(deadline)
	for {
		pids := t.pids()
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("cgroup %s: tasks %v still alive after %v", t.base, pids, deadline)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pids lists the tasks in the subtree, in every hierarchy the benchmark uses.
func (t tree) pids() []int {
	var out []int
	for _, ctrl := range v1Controllers {
		_ = filepath.WalkDir(filepath.Join(t.root, ctrl, t.base), func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			b, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && !slices.Contains(out, pid) {
					out = append(out, pid)
				}
			}
			return nil
		})
	}
	return out
}

// remove deletes the subtree from every v1 hierarchy under root, children
// first: the agent may have made the offline parent in hierarchies the
// benchmark did not (cpuset), and those go too. A missing subtree is fine.
func (t tree) remove() error {
	ents, err := os.ReadDir(t.root)
	if err != nil {
		return fmt.Errorf("remove cgroups: %w", err)
	}
	var errs []error
	for _, e := range ents {
		top := filepath.Join(t.root, e.Name(), t.base)
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for _, d := range slices.Backward(dirs) {
			if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}
