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

// tree is the benchmark's own cgroup subtree,
// /<base>/{online,loadgen,spinner,offline/stress-ng}, in every v1
// hierarchy it uses. It never writes to a cgroup outside base (it reads
// the root's cpuacct.usage: host busy time).
type tree struct {
	root string // cgroup mount root, /sys/fs/cgroup
	base string // "/sluice-colo-<rand>"
}

func (t tree) online() string  { return t.base + "/online" }
func (t tree) loadgen() string { return t.base + "/loadgen" }
func (t tree) spinner() string { return t.base + "/spinner" }
func (t tree) offline() string { return t.base + "/offline" }
func (t tree) agent() string   { return t.base + "/agent" }
func (t tree) stress() string  { return t.base + "/offline/stress-ng" }

// create makes the subtree in each hierarchy, parents first.
func (t tree) create() error {
	for _, ctrl := range v1Controllers {
		if _, err := os.Stat(filepath.Join(t.root, ctrl, "cgroup.procs")); err != nil {
			return fmt.Errorf("cgroup v1 %s hierarchy at %s: %w", ctrl, filepath.Join(t.root, ctrl), err)
		}
		for _, cg := range []string{t.base, t.online(), t.loadgen(), t.spinner(), t.offline(), t.stress(), t.agent()} {
			if err := os.Mkdir(filepath.Join(t.root, ctrl, cg), 0o755); err != nil {
				return fmt.Errorf("create cgroup %s in %s: %w", cg, ctrl, err)
			}
		}
	}
	// The load generator stands for clients on other machines: give it a
	// weight no burner at default weight can dent, so what it measures is
	// the service, not its own stalls (a starved round is discarded all
	// the same). The spinner only ever runs on CPUs nothing else wants.
	return t.write([]cgWrite{
		{"cpu", t.loadgen(), "cpu.shares", "10240"},
		{"cpu", t.spinner(), "cpu.idle", "1"},
	})
}

// cgWrite is one cgroup file write: hierarchy, cgroup, file, value.
type cgWrite struct{ ctrl, cg, file, value string }

// write applies ws in order, reading each value back; it keeps going past
// a failure and joins every error.
func (t tree) write(ws []cgWrite) error {
	var errs []error
	for _, w := range ws {
		p := filepath.Join(t.root, w.ctrl, w.cg, w.file)
		if err := writeExisting(p, w.value); err != nil {
			if errors.Is(err, fs.ErrNotExist) && w.file == "cpu.idle" && w.value == "0" {
				continue // kernels before 5.15 have no cpu.idle: nothing to clear
			}
			errs = append(errs, fmt.Errorf("write %s = %s: %w", p, w.value, err))
			continue
		}
		if b, err := os.ReadFile(p); err != nil || strings.TrimSpace(string(b)) != w.value {
			errs = append(errs, fmt.Errorf("%s reads %q after writing %s (%v)", p, strings.TrimSpace(string(b)), w.value, err))
		}
	}
	return errors.Join(errs...)
}

// command returns a command that joins cgroup cg in every hierarchy and
// only then execs argv: stress-ng forks its workers at once, so moving its
// pid after the start would race with the fork. The command leads its own
// process group so the benchmark can signal it and its children together.
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

// writeExisting writes value to an existing file: a cgroup's files are the
// kernel's, and one that does not exist must not be created.
func writeExisting(p, value string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	return errors.Join(err, f.Close())
}

// offlineMode writes the offline parent's CPU knobs for a condition,
// starting from neutral so nothing a previous condition (or an agent) left
// behind carries over: no quota, not idle, default shares, no memory
// limits. idle sets cpu.idle (the kernel's own "yield to everyone"),
// shares a weight (cpu.idle must be 0 for a write to cpu.shares: EINVAL
// otherwise, so idle comes last).
func (t tree) offlineMode(shares string, idle bool) error {
	off := t.offline()
	ws := []cgWrite{
		{"cpu", off, "cpu.cfs_quota_us", "-1"},
		{"cpu", off, "cpu.idle", "0"},
		{"cpu", off, "cpu.shares", shares},
		{"memory", off, "memory.limit_in_bytes", "9223372036854771712"},
		{"memory", off, "memory.soft_limit_in_bytes", "9223372036854771712"},
	}
	if idle {
		ws = append(ws, cgWrite{"cpu", off, "cpu.idle", "1"})
	}
	return t.write(ws)
}

// quotaCores is the offline parent's CFS quota in CPUs, -1 for none.
func (t tree) quotaCores() float64 {
	read := func(f string) (float64, error) {
		b, err := os.ReadFile(filepath.Join(t.root, "cpu", t.offline(), f))
		if err != nil {
			return 0, err
		}
		return strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	}
	q, err := read("cpu.cfs_quota_us")
	if err != nil || q < 0 {
		return -1
	}
	p, err := read("cpu.cfs_period_us")
	if err != nil || p <= 0 {
		return -1
	}
	return q / p
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
