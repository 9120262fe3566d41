package cgrouptest

import (
	"fmt"
	"math/bits"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
)

// V1 is a fake cgroup v1 hierarchy for one controller ("cpu", "memory" or
// "cpuset"). It models the v1 rules that make write order matter, after
// kernel/sched/core.c and kernel/cgroup/cpuset.c (legacy hierarchy): a CFS
// quota (as quota/period) may not exceed the nearest limited ancestor's,
// checked on the parent's and the child's writes alike (EINVAL); a cpuset
// must lie inside its parent's (EACCES) and a parent must keep its
// children's CPUs (EBUSY); a new cpuset is empty and takes no task until
// cpus and mems are set (ENOSPC); memory.limit_in_bytes below usage is
// EBUSY (no swap to reclaim into); cpu.shares is clamped to 2..262144 and
// refused while cpu.idle is 1.
type V1 struct {
	files
	controller string
	cpus       int

	saved map[string]string
	// notes are the cgroups' extended attributes, by cgroup then name.
	notes map[string]map[string]string
}

const v1NoLimit = "9223372036854771712"

// NewV1 makes a hierarchy for controller with an empty root cgroup (cpuset
// root: CPUs 0..opts.CPUs-1, memory node 0).
func NewV1(t testing.TB, controller string, opts Options) *V1 {
	t.Helper()
	return newV1(t.TempDir(), controller, opts)
}

func newV1(dir, controller string, opts Options) *V1 {
	if opts.CPUs == 0 {
		opts.CPUs = 4
	}
	f := &V1{files: newFilesAt(dir), controller: controller, cpus: opts.CPUs, saved: map[string]string{}, notes: map[string]map[string]string{}}
	f.populate("/", true)
	return f
}

func (f *V1) populate(cg string, root bool) {
	f.put(path.Join(cg, "cgroup.procs"), "")
	var m map[string]string
	switch f.controller {
	case "cpu":
		m = map[string]string{"cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000", "cpu.shares": "1024", "cpu.idle": "0"}
	case "memory":
		m = map[string]string{"memory.limit_in_bytes": v1NoLimit, "memory.soft_limit_in_bytes": v1NoLimit, "memory.usage_in_bytes": "0"}
	case "cpuset":
		m = map[string]string{"cpuset.cpus": "", "cpuset.mems": ""}
		if root {
			m["cpuset.cpus"], m["cpuset.mems"] = fmt.Sprintf("0-%d", f.cpus-1), "0"
		}
	}
	for k, v := range m {
		f.put(path.Join(cg, k), v)
	}
}

// ReadNote implements the enforcer's NoteFS as kernfs does on a v1
// hierarchy: only the trusted and security namespaces (EOPNOTSUPP
// otherwise), ENOENT for a missing cgroup, ENODATA for a missing note.
func (f *V1) ReadNote(cg, name string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cg, err := f.noteTarget(cg, name)
	if err != nil {
		return nil, err
	}
	v, ok := f.notes[cg][name]
	if !ok {
		return nil, perr("getxattr "+name, cg, syscall.ENODATA)
	}
	return []byte(v), nil
}

// WriteNote implements the enforcer's NoteFS (see ReadNote).
func (f *V1) WriteNote(cg, name string, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cg, err := f.noteTarget(cg, name)
	if err != nil {
		return err
	}
	if f.notes[cg] == nil {
		f.notes[cg] = map[string]string{}
	}
	f.notes[cg][name] = string(data)
	return nil
}

// RemoveNote implements the enforcer's NoteFS (see ReadNote).
func (f *V1) RemoveNote(cg, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cg, err := f.noteTarget(cg, name)
	if err != nil {
		return err
	}
	if _, ok := f.notes[cg][name]; !ok {
		return perr("removexattr "+name, cg, syscall.ENODATA)
	}
	delete(f.notes[cg], name)
	return nil
}

// Note returns cg's note name, for tests to check what the enforcer keeps.
func (f *V1) Note(cg, name string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.notes[path.Clean("/"+cg)][name]
	return v, ok
}

func (f *V1) noteTarget(cg, name string) (string, error) {
	cg = path.Clean("/" + cg)
	if !strings.HasPrefix(name, "trusted.") && !strings.HasPrefix(name, "security.") {
		return cg, perr("xattr "+name, cg, syscall.EOPNOTSUPP)
	}
	if !f.isDir(cg) {
		return cg, perr("xattr "+name, cg, syscall.ENOENT)
	}
	return cg, nil
}

// SetUsage sets a memory cgroup's memory.usage_in_bytes.
func (f *V1) SetUsage(cg string, bytes uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.put(path.Join(path.Clean("/"+cg), "memory.usage_in_bytes"), strconv.FormatUint(bytes, 10))
}

// ReadFile implements the enforcer's FS.
func (f *V1) ReadFile(name string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.read(path.Clean("/" + name))
}

// Mkdir implements the enforcer's FS.
func (f *V1) Mkdir(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cg := path.Clean("/" + name)
	if created, err := f.mkdir(cg); !created {
		return err
	}
	f.populate(cg, false)
	return nil
}

// WriteFile implements the enforcer's FS, validating like a v1 kernel.
func (f *V1) WriteFile(name string, data []byte) error {
	return f.logWrite(name, data, f.write)
}

func (f *V1) write(name, v string) error {
	cg, file := path.Dir(name), path.Base(name)
	if !f.isDir(cg) || !f.hasFile(name) {
		return syscall.ENOENT
	}
	if err, ok := f.reject[name]; ok {
		return err
	}
	switch file {
	case "memory.usage_in_bytes":
		return syscall.EACCES
	case "cpu.cfs_quota_us", "cpu.cfs_period_us":
		return f.writeCFS(cg, file, v)
	case "cpu.shares":
		return f.writeShares(cg, v)
	case "cpu.idle":
		return f.writeIdle(cg, v)
	case "memory.limit_in_bytes", "memory.soft_limit_in_bytes":
		return f.writeMemoryLimit(cg, file, v)
	case "cpuset.cpus", "cpuset.mems":
		return f.writeCpuset(cg, file, v)
	case "cgroup.procs":
		return f.writeProcs(cg, v)
	}
	f.put(name, v)
	return nil
}

// writeCFS sets the quota or the period of cg, keeping every limited
// cgroup's quota/period within its nearest limited ancestor's.
func (f *V1) writeCFS(cg, file, v string) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return syscall.EINVAL
	}
	q, p := f.cfs(cg)
	if file == "cpu.cfs_quota_us" {
		if n != -1 && (n < 1000 || n > 1<<44-1) {
			return syscall.EINVAL
		}
		q = n
	} else {
		if n < 1000 || n > 1000000 {
			return syscall.EINVAL
		}
		p = n
	}
	if cg == "/" || !f.schedulable(cg, q, p) {
		return syscall.EINVAL
	}
	f.put(path.Join(cg, file), strconv.FormatInt(n, 10))
	return nil
}

// writeShares clamps cpu.shares to the kernel's 2..262144 and refuses it
// while cpu.idle is 1.
func (f *V1) writeShares(cg, v string) error {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return syscall.EINVAL
	}
	if f.get(path.Join(cg, "cpu.idle")) == "1" {
		return syscall.EINVAL
	}
	f.put(path.Join(cg, "cpu.shares"), strconv.FormatUint(min(max(n, 2), 262144), 10))
	return nil
}

// writeIdle sets cpu.idle (0 or 1): going idle shows the idle weight in
// cpu.shares and keeps the old shares, coming back restores them.
func (f *V1) writeIdle(cg, v string) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > 1 {
		return syscall.EINVAL
	}
	name, shares := path.Join(cg, "cpu.idle"), path.Join(cg, "cpu.shares")
	old := f.get(name)
	if n == 1 && old == "0" {
		f.saved[cg] = f.get(shares)
		f.put(shares, "3")
	} else if n == 0 && old == "1" {
		f.put(shares, f.saved[cg])
	}
	f.put(name, strconv.FormatInt(n, 10))
	return nil
}

// writeMemoryLimit stores a limit rounded down to pages (-1: none); a hard
// limit below usage is EBUSY (no swap to reclaim into).
func (f *V1) writeMemoryLimit(cg, file, v string) error {
	val := v1NoLimit
	if v != "-1" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return syscall.EINVAL
		}
		n -= n % pageSize
		usage, _ := strconv.ParseUint(f.get(path.Join(cg, "memory.usage_in_bytes")), 10, 64)
		if file == "memory.limit_in_bytes" && n < usage {
			return syscall.EBUSY
		}
		val = strconv.FormatUint(n, 10)
	}
	f.put(path.Join(cg, file), val)
	return nil
}

// writeCpuset sets cpuset.cpus or cpuset.mems: inside the parent's
// (EACCES), keeping the children's (EBUSY), never empty while tasks are
// in the cgroup (ENOSPC).
func (f *V1) writeCpuset(cg, file, v string) error {
	set, err := cgroupfs.ParseCPUList([]byte(v))
	if err != nil {
		return syscall.EINVAL
	}
	if file == "cpuset.cpus" && len(set) > 0 && set[len(set)-1] >= f.cpus {
		return syscall.EINVAL
	}
	if cg != "/" {
		parent, _ := cgroupfs.ParseCPUList([]byte(f.get(path.Join(path.Dir(cg), file))))
		if !subset(set, parent) {
			return syscall.EACCES
		}
	}
	kids, _ := f.children(cg)
	for _, k := range kids {
		kid, _ := cgroupfs.ParseCPUList([]byte(f.get(path.Join(cg, k, file))))
		if !subset(kid, set) {
			return syscall.EBUSY
		}
	}
	if len(set) == 0 && strings.TrimSpace(f.get(path.Join(cg, "cgroup.procs"))) != "" {
		return syscall.ENOSPC
	}
	f.put(path.Join(cg, file), v)
	return nil
}

// writeProcs moves a task into cg; a cpuset without cpus or mems takes none.
func (f *V1) writeProcs(cg, v string) error {
	pid, err := strconv.Atoi(v)
	if err != nil {
		return syscall.EINVAL
	}
	if f.controller == "cpuset" && (f.get(path.Join(cg, "cpuset.cpus")) == "" || f.get(path.Join(cg, "cpuset.mems")) == "") {
		return syscall.ENOSPC
	}
	name := path.Join(cg, "cgroup.procs")
	f.put(name, joinPIDs(append(pidsOf(f.get(name)), pid)))
	return nil
}

// AddProc puts pid into cg, as a runtime would (with the same checks).
func (f *V1) AddProc(cg string, pid int) error {
	return f.WriteFile(path.Join(path.Clean("/"+cg), "cgroup.procs"), []byte(strconv.Itoa(pid)))
}

func (f *V1) cfs(cg string) (int64, int64) {
	q, _ := strconv.ParseInt(f.get(path.Join(cg, "cpu.cfs_quota_us")), 10, 64)
	p, _ := strconv.ParseInt(f.get(path.Join(cg, "cpu.cfs_period_us")), 10, 64)
	return q, p
}

// limitAbove is the nearest limited ancestor's quota/period (q = -1: none).
func (f *V1) limitAbove(cg string) (int64, int64) {
	for a := path.Dir(cg); a != "/"; a = path.Dir(a) {
		if q, p := f.cfs(a); q != -1 {
			return q, p
		}
	}
	return -1, 1
}

// schedulable applies the kernel's v1 rule to cg taking (q, p): its own
// limit within the nearest limited ancestor's, and every limited
// descendant within its own effective limit.
func (f *V1) schedulable(cg string, q, p int64) bool {
	aq, ap := f.limitAbove(cg)
	if q != -1 && aq != -1 && ratioAbove(q, p, aq, ap) {
		return false
	}
	eq, ep := q, p
	if q == -1 {
		eq, ep = aq, ap
	}
	if eq == -1 {
		return true
	}
	var ok = true
	var walk func(string, int64, int64)
	walk = func(c string, lq, lp int64) {
		kids, _ := f.children(c)
		for _, k := range kids {
			kc := path.Join(c, k)
			kq, kp := f.cfs(kc)
			if kq == -1 {
				walk(kc, lq, lp)
				continue
			}
			if ratioAbove(kq, kp, lq, lp) {
				ok = false
			}
			walk(kc, kq, kp)
		}
	}
	walk(cg, eq, ep)
	return ok
}

func ratioAbove(q1, p1, q2, p2 int64) bool {
	h1, l1 := bits.Mul64(uint64(q1), uint64(p2))
	h2, l2 := bits.Mul64(uint64(q2), uint64(p1))
	return h1 > h2 || (h1 == h2 && l1 > l2)
}

func subset(a, b []int) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// Render prints every cgroup and its files as text, sorted.
func (f *V1) Render() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.render(func(string) bool { return false })
}
