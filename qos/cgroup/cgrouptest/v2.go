package cgrouptest

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
)

// Write is one write the fake received, successful or not.
type Write struct {
	Path  string // e.g. "/sluice/offline/cpu.max"
	Value string
	Err   error
}

func (w Write) String() string {
	if w.Err != nil {
		return fmt.Sprintf("%s <- %q: %v", w.Path, w.Value, w.Err)
	}
	return fmt.Sprintf("%s <- %q", w.Path, w.Value)
}

// Options shape the modelled kernel.
type Options struct {
	// NoCPUIdle models a kernel older than 5.15 (no cpu.idle file).
	NoCPUIdle bool
	// CPUs is the number of online CPUs (default 4).
	CPUs int
}

// V2 is a fake cgroup v2 hierarchy. It implements the enforcer's FS
// interface; Proc returns the matching /proc.
type V2 struct {
	files
	opts Options

	// alive maps live pids to their oom_score_adj.
	alive  map[int]int
	killed []int
	// savedWeight keeps cpu.weight while a group is idle (the kernel
	// restores it when idle goes back to 0).
	savedWeight map[string]string
}

const pageSize = 4096

// NewV2 makes an empty hierarchy whose root offers cpu, cpuset, io, memory
// and pids, with nothing enabled in its cgroup.subtree_control.
func NewV2(t testing.TB, opts Options) *V2 {
	t.Helper()
	return newV2(t.TempDir(), opts)
}

func newV2(dir string, opts Options) *V2 {
	if opts.CPUs == 0 {
		opts.CPUs = 4
	}
	f := &V2{files: newFilesAt(dir), opts: opts, alive: map[int]int{}, savedWeight: map[string]string{}}
	for name, v := range map[string]string{
		"cgroup.controllers":     "cpuset cpu io memory pids",
		"cgroup.subtree_control": "",
		"cgroup.procs":           "",
		"cpuset.cpus.effective":  fmt.Sprintf("0-%d", opts.CPUs-1),
	} {
		f.put("/"+name, v)
	}
	return f
}

// controllerFiles are the files a controller adds to a non-root cgroup,
// with the kernel's defaults.
func (f *V2) controllerFiles(c string) map[string]string {
	switch c {
	case "cpu":
		m := map[string]string{"cpu.max": "max 100000", "cpu.weight": "100", "cpu.stat": "usage_usec 0"}
		if !f.opts.NoCPUIdle {
			m["cpu.idle"] = "0"
		}
		return m
	case "memory":
		return map[string]string{"memory.high": "max", "memory.max": "max", "memory.current": "0", "memory.events": "oom_kill 0"}
	case "cpuset":
		return map[string]string{"cpuset.cpus": "", "cpuset.mems": "", "cpuset.cpus.effective": ""}
	case "io":
		return map[string]string{"io.max": ""}
	case "pids":
		return map[string]string{"pids.max": "max", "pids.current": "0"}
	}
	return nil
}

var readOnly = map[string]bool{
	"cgroup.controllers": true, "cpu.stat": true, "memory.current": true, "memory.events": true,
	"cpuset.cpus.effective": true, "pids.current": true,
}

// Killed lists pids killed through cgroup.kill, in order.
func (f *V2) Killed() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.killed)
}

// ReadFile implements the enforcer's FS.
func (f *V2) ReadFile(name string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name = path.Clean("/" + name)
	if path.Base(name) == "cgroup.kill" {
		return nil, perr("open", name, syscall.EACCES)
	}
	return f.read(name)
}

// Mkdir implements the enforcer's FS: the new cgroup gets the files of the
// controllers its parent enables.
func (f *V2) Mkdir(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cg := path.Clean("/" + name)
	if created, err := f.mkdir(cg); !created {
		return err
	}
	enabled := strings.Fields(f.get(path.Join(path.Dir(cg), "cgroup.subtree_control")))
	f.put(path.Join(cg, "cgroup.controllers"), strings.Join(enabled, " "))
	f.put(path.Join(cg, "cgroup.subtree_control"), "")
	f.put(path.Join(cg, "cgroup.procs"), "")
	f.put(path.Join(cg, "cgroup.kill"), "")
	for _, c := range enabled {
		for file, v := range f.controllerFiles(c) {
			f.put(path.Join(cg, file), v)
		}
	}
	return nil
}

// Rmdir removes an empty cgroup, as a runtime does when a container exits.
func (f *V2) Rmdir(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cg := path.Clean("/" + name)
	kids, err := f.children(cg)
	if err != nil {
		return err
	}
	if len(kids) > 0 || strings.TrimSpace(f.get(path.Join(cg, "cgroup.procs"))) != "" {
		return perr("rmdir", cg, syscall.EBUSY)
	}
	return os.RemoveAll(f.host(cg))
}

// AddProc starts a fake process pid in cgroup cg (oom_score_adj 0).
func (f *V2) AddProc(cg string, pid int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.alive[pid] = 0
	return f.moveProc(path.Clean("/"+cg), pid)
}

// Exit ends a fake process.
func (f *V2) Exit(pid int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exit(pid)
}

func (f *V2) exit(pid int) {
	delete(f.alive, pid)
	_ = filepath.WalkDir(f.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "cgroup.procs" {
			rel, _ := filepath.Rel(f.dir, p)
			name := "/" + filepath.ToSlash(rel)
			f.put(name, joinPIDs(slices.DeleteFunc(pidsOf(f.get(name)), func(p int) bool { return p == pid })))
		}
		return nil
	})
}

func (f *V2) moveProc(cg string, pid int) error {
	if !f.isDir(cg) {
		return syscall.ENOENT
	}
	if _, ok := f.alive[pid]; !ok {
		return syscall.ESRCH
	}
	// No internal processes: a non-root cgroup that distributes resources
	// to children cannot hold tasks.
	if cg != "/" && strings.TrimSpace(f.get(path.Join(cg, "cgroup.subtree_control"))) != "" {
		return syscall.EBUSY
	}
	oom := f.alive[pid]
	f.exit(pid)
	f.alive[pid] = oom
	name := path.Join(cg, "cgroup.procs")
	f.put(name, joinPIDs(append(pidsOf(f.get(name)), pid)))
	return nil
}

func pidsOf(s string) []int {
	var out []int
	for _, l := range strings.Fields(s) {
		if p, err := strconv.Atoi(l); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func joinPIDs(pids []int) string {
	var b strings.Builder
	for i, p := range pids {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(strconv.Itoa(p))
	}
	return b.String()
}

// WriteFile implements the enforcer's FS, validating like the kernel.
func (f *V2) WriteFile(name string, data []byte) error {
	return f.logWrite(name, data, f.write)
}

func (f *V2) write(name, v string) error {
	cg, file := path.Dir(name), path.Base(name)
	if !f.isDir(cg) {
		return syscall.ENOENT
	}
	if !f.hasFile(name) {
		return syscall.ENOENT // controller not enabled in the parent
	}
	if err, ok := f.reject[name]; ok {
		return err
	}
	if readOnly[file] {
		return syscall.EACCES
	}
	switch file {
	case "cpu.max":
		return f.writeCPUMax(name, v)
	case "cpu.weight":
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return syscall.EINVAL
		}
		if n < 1 || n > 10000 {
			return syscall.ERANGE
		}
		if f.get(path.Join(cg, "cpu.idle")) == "1" {
			return syscall.EINVAL // sched_group_set_shares refuses idle groups
		}
		f.put(name, strconv.FormatUint(n, 10))
	case "cpu.idle":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > 1 {
			return syscall.EINVAL
		}
		w := path.Join(cg, "cpu.weight")
		old := f.get(name)
		switch {
		case n == 1 && old == "0":
			f.savedWeight[cg] = f.get(w)
			f.put(w, "0") // 6.1 reports WEIGHT_IDLEPRIO as weight 0
		case n == 0 && old == "1":
			f.put(w, f.savedWeight[cg])
		}
		f.put(name, strconv.FormatInt(n, 10))
	case "memory.high", "memory.max":
		if v == "max" {
			f.put(name, "max")
			return nil
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return syscall.EINVAL
		}
		f.put(name, strconv.FormatUint(n-n%pageSize, 10))
	case "cgroup.subtree_control":
		return f.writeSubtree(cg, v)
	case "cgroup.kill":
		n, err := strconv.ParseInt(v, 0, 64)
		if err != nil {
			return syscall.EINVAL
		}
		if n != 1 {
			return syscall.ERANGE
		}
		f.kill(cg)
	case "cgroup.procs":
		pid, err := strconv.Atoi(v)
		if err != nil {
			return syscall.EINVAL
		}
		return f.moveProc(cg, pid)
	case "cpuset.cpus":
		return f.writeCpus(cg, v)
	default:
		f.put(name, v)
	}
	return nil
}

func (f *V2) writeCPUMax(name, v string) error {
	fields := strings.Fields(v)
	if len(fields) < 1 || len(fields) > 2 {
		return syscall.EINVAL
	}
	// A quota alone keeps the current period.
	_, p, _ := strings.Cut(f.get(name), " ")
	q := "max"
	if fields[0] != "max" {
		n, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return syscall.EINVAL
		}
		// min_cfs_quota_period is 1ms; max_cfs_runtime is 2^44-1 us.
		if n < 1000 || n > 1<<44-1 {
			return syscall.EINVAL
		}
		q = strconv.FormatUint(n, 10)
	}
	if len(fields) == 2 {
		n, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil || n < 1000 || n > 1000000 {
			return syscall.EINVAL
		}
		p = strconv.FormatUint(n, 10)
	}
	f.put(name, q+" "+p)
	return nil
}

func (f *V2) writeSubtree(cg, v string) error {
	have := strings.Fields(f.get(path.Join(cg, "cgroup.subtree_control")))
	avail := strings.Fields(f.get(path.Join(cg, "cgroup.controllers")))
	kids, _ := f.children(cg)
	var enable, disable []string
	for _, tok := range strings.Fields(v) {
		if len(tok) < 2 || (tok[0] != '+' && tok[0] != '-') {
			return syscall.EINVAL
		}
		c := tok[1:]
		if !slices.Contains(avail, c) {
			return syscall.ENOENT
		}
		if tok[0] == '+' {
			enable = append(enable, c)
		} else {
			disable = append(disable, c)
		}
	}
	if cg != "/" && len(enable) > 0 && strings.TrimSpace(f.get(path.Join(cg, "cgroup.procs"))) != "" {
		return syscall.EBUSY // no internal processes
	}
	for _, c := range disable {
		for _, k := range kids {
			if slices.Contains(strings.Fields(f.get(path.Join(cg, k, "cgroup.subtree_control"))), c) {
				return syscall.EBUSY // a child still distributes it
			}
		}
	}
	for _, c := range enable {
		if slices.Contains(have, c) {
			continue
		}
		have = append(have, c)
		for _, k := range kids {
			for file, def := range f.controllerFiles(c) {
				f.put(path.Join(cg, k, file), def)
			}
		}
	}
	for _, c := range disable {
		have = slices.DeleteFunc(have, func(h string) bool { return h == c })
		for _, k := range kids {
			for file := range f.controllerFiles(c) {
				_ = os.Remove(f.host(path.Join(cg, k, file)))
			}
		}
	}
	slices.Sort(have)
	f.put(path.Join(cg, "cgroup.subtree_control"), strings.Join(have, " "))
	for _, k := range kids {
		f.put(path.Join(cg, k, "cgroup.controllers"), strings.Join(have, " "))
	}
	return nil
}

func (f *V2) kill(cg string) {
	for _, pid := range pidsOf(f.get(path.Join(cg, "cgroup.procs"))) {
		f.killed = append(f.killed, pid)
		f.exit(pid)
	}
	kids, _ := f.children(cg)
	for _, k := range kids {
		f.kill(path.Join(cg, k))
	}
}

func (f *V2) writeCpus(cg, v string) error {
	cpus, err := cgroupfs.ParseCPUList([]byte(v))
	if err != nil {
		return syscall.EINVAL
	}
	for _, c := range cpus {
		if c >= f.opts.CPUs {
			return syscall.EINVAL
		}
	}
	f.put(path.Join(cg, "cpuset.cpus"), v)
	return nil
}

// Render prints every cgroup and its files (except cgroup.kill and
// read-only statistics) as text, sorted, for exact-text checks.
func (f *V2) Render() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.render(func(name string) bool {
		return name == "cgroup.kill" || (readOnly[name] && name != "cgroup.controllers")
	})
}

// Proc returns the fake /proc holding the fake processes' oom_score_adj.
func (f *V2) Proc() *Proc { return &Proc{f: f} }

// Proc is a fake /proc: "/<pid>/oom_score_adj" for live fake processes.
type Proc struct{ f *V2 }

func (p *Proc) pid(name string) (int, string, error) {
	name = path.Clean("/" + name)
	dir, file := path.Split(name)
	pid, err := strconv.Atoi(strings.Trim(dir, "/"))
	if err != nil {
		return 0, "", perr("open", name, syscall.ENOENT)
	}
	if _, ok := p.f.alive[pid]; !ok {
		return 0, "", perr("open", name, syscall.ENOENT)
	}
	if file != "oom_score_adj" {
		return 0, "", perr("open", name, syscall.ENOENT)
	}
	return pid, file, nil
}

// ReadFile implements the enforcer's FS.
func (p *Proc) ReadFile(name string) ([]byte, error) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	pid, _, err := p.pid(name)
	if err != nil {
		return nil, err
	}
	return []byte(strconv.Itoa(p.f.alive[pid]) + "\n"), nil
}

// WriteFile implements the enforcer's FS: -1000..1000, as the kernel.
func (p *Proc) WriteFile(name string, data []byte) error {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	w := Write{Path: "/proc" + path.Clean("/"+name), Value: string(data)}
	defer func() { p.f.writes = append(p.f.writes, w) }()
	pid, _, err := p.pid(name)
	if err != nil {
		w.Err = err
		return err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || n < -1000 || n > 1000 {
		w.Err = perr("write", name, syscall.EINVAL)
		return w.Err
	}
	p.f.alive[pid] = n
	return nil
}

// Mkdir implements the enforcer's FS (/proc has no user directories).
func (p *Proc) Mkdir(name string) error { return perr("mkdir", name, syscall.EPERM) }

// ReadDir implements the enforcer's FS.
func (p *Proc) ReadDir(name string) ([]string, error) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	if path.Clean("/"+name) != "/" {
		return nil, perr("open", name, syscall.ENOENT)
	}
	var out []string
	for pid := range p.f.alive {
		out = append(out, strconv.Itoa(pid))
	}
	slices.Sort(out)
	return out, nil
}

// OOMScoreAdj returns a live fake process's oom_score_adj.
func (f *V2) OOMScoreAdj(pid int) (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.alive[pid]
	return v, ok
}
