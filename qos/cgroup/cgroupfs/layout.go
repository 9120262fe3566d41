package cgroupfs

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Mode is how cgroups are mounted on a host.
type Mode int

const (
	// ModeUnknown is the zero Mode: no Layout was detected.
	ModeUnknown Mode = iota
	// ModeV1 is legacy mode: one v1 hierarchy per controller (or per
	// co-mounted group such as cpu,cpuacct) and no cgroup2 mount, so no
	// BPF attach point and no per-cgroup PSI.
	ModeV1
	// ModeHybrid is v1 controllers plus a controller-less cgroup2 at
	// <root>/unified (PSI, cgroup.kill, BPF attach). Resource control and
	// accounting are v1.
	ModeHybrid
	// ModeV2 is the unified hierarchy mounted at the root, holding every
	// controller.
	ModeV2
)

func (m Mode) String() string {
	switch m {
	case ModeUnknown:
		return "unknown"
	case ModeV1:
		return "v1"
	case ModeHybrid:
		return "hybrid"
	case ModeV2:
		return "v2"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Controller names a cgroup controller Sluice reads or writes.
type Controller string

// The controllers Sluice uses. On v2, CPUAcct's files (cpu.stat) are in
// every cgroup whatever cgroup.subtree_control says.
const (
	CPU     Controller = "cpu"
	CPUAcct Controller = "cpuacct"
	Memory  Controller = "memory"
	Cpuset  Controller = "cpuset"
)

// knownControllers lists the controllers a Layout locates, in a fixed order.
func knownControllers() [4]Controller { return [4]Controller{CPU, CPUAcct, Memory, Cpuset} }

// Layout is the host's cgroup mount layout, as Detect found it. The zero
// Layout has no hierarchy at all. A Layout is a comparable value; copy it
// freely.
type Layout struct {
	root string
	mode Mode
	// cpu, cpuacct, memory, cpuset are the directories of the hierarchies
	// holding each controller ("" when absent): on v1 the controller's
	// mount, the same directory for co-mounted ones (cpu,cpuacct); on v2
	// the root for all.
	cpu, cpuacct, memory, cpuset string
	// unified is the cgroup2 hierarchy BPF programs attach to and whose
	// ids bpf_get_current_cgroup_id returns: the root on v2,
	// <root>/unified on hybrid hosts, "" on pure v1.
	unified string
	// enabled is the root's cgroup.controllers on v2 (space-separated),
	// the controllers the kernel offers there.
	enabled string
}

// Detect finds how cgroups are mounted under root (normally
// "/sys/fs/cgroup"). It is meant to be called once, at start.
//
// containerd/cgroups/v3's Mode() gives the same answer on real hosts (a
// test checks it) but reads a fixed root and caches it process-wide, so it
// cannot look at a fake tree. The markers used here are as reliable: the
// kernel puts cgroup.controllers in every cgroup2 directory and in no v1
// directory, and cgroup.procs in every cgroup of both.
//
// A v1 controller is found at <root>/<name> or at any mount whose
// comma-separated name lists it: hosts mount cpu and cpuacct apart (as on
// Sluice's CI) or together (<root>/cpu,cpuacct, usually with cpu and
// cpuacct symlinks to it). A host with neither a cgroup2 root nor any of
// the v1 controllers is an error.
func Detect(root string) (Layout, error) {
	l := Layout{root: root}
	if data, err := os.ReadFile(filepath.Join(root, "cgroup.controllers")); err == nil {
		l.mode = ModeV2
		l.cpu, l.cpuacct, l.memory, l.cpuset, l.unified = root, root, root, root, root
		l.enabled = strings.Join(strings.Fields(string(data)), " ")
		return l, nil
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return Layout{}, fmt.Errorf("detect cgroup layout under %s: %w", root, err)
	}
	for _, c := range knownControllers() {
		*l.field(c) = v1Hierarchy(root, entries, c)
	}
	if l.cpu == "" && l.cpuacct == "" && l.memory == "" && l.cpuset == "" {
		return Layout{}, fmt.Errorf("detect cgroup layout under %s: no cgroup2 mount (cgroup.controllers) and no v1 cpu, cpuacct, memory or cpuset hierarchy: %w", root, fs.ErrNotExist)
	}
	l.mode = ModeV1
	if unified := filepath.Join(root, "unified"); Exists(filepath.Join(unified, "cgroup.controllers")) {
		l.mode, l.unified = ModeHybrid, unified
	}
	return l, nil
}

// v1Hierarchy finds the mount of controller c among root's entries: the
// directory named after it, else the first co-mount listing it; "" if none.
func v1Hierarchy(root string, entries []os.DirEntry, c Controller) string {
	if dir := filepath.Join(root, string(c)); Exists(filepath.Join(dir, "cgroup.procs")) {
		return resolveMount(root, dir)
	}
	for _, e := range entries {
		if !slices.Contains(strings.Split(e.Name(), ","), string(c)) {
			continue
		}
		if dir := filepath.Join(root, e.Name()); Exists(filepath.Join(dir, "cgroup.procs")) {
			return dir
		}
	}
	return ""
}

// resolveMount follows dir when it is a symlink beside its mount (cpu ->
// cpu,cpuacct), so co-mounted controllers report one hierarchy directory.
func resolveMount(root, dir string) string {
	target, err := os.Readlink(dir)
	if err != nil {
		return dir // not a symlink: the mount itself
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(root, target)
	}
	return target
}

func (l *Layout) field(c Controller) *string {
	switch c {
	case CPU:
		return &l.cpu
	case CPUAcct:
		return &l.cpuacct
	case Memory:
		return &l.memory
	case Cpuset:
		return &l.cpuset
	}
	return nil
}

// Root is the cgroup mount root the Layout was detected under.
func (l Layout) Root() string { return l.root }

// Mode is how the host mounts cgroups.
func (l Layout) Mode() Mode { return l.mode }

// Hierarchy returns the directory of the hierarchy holding controller c,
// or "" when the host has none: on v1 and hybrid hosts the controller's v1
// mount (one directory for co-mounted controllers), on v2 the root.
func (l Layout) Hierarchy(c Controller) string {
	if p := l.field(c); p != nil {
		return *p
	}
	return ""
}

// Unified returns the cgroup2 hierarchy BPF programs attach to (and whose
// ids bpf_get_current_cgroup_id returns): the root on v2, <root>/unified
// on hybrid hosts; "" on pure v1, which has none.
func (l Layout) Unified() string { return l.unified }

// Dir maps a cgroup path, relative to every hierarchy root (e.g.
// "/sluice/offline/x"), to its directory in controller c's hierarchy;
// false when the host has no hierarchy for c.
func (l Layout) Dir(c Controller, cgroupPath string) (string, bool) {
	h := l.Hierarchy(c)
	if h == "" {
		return "", false
	}
	return Join(h, cgroupPath), true
}

// UnifiedDir maps a cgroup path to its directory in the BPF-attachable
// hierarchy; false on pure v1.
func (l Layout) UnifiedDir(cgroupPath string) (string, bool) {
	if l.unified == "" {
		return "", false
	}
	return Join(l.unified, cgroupPath), true
}

// CoMounted reports whether controllers a and b share one v1 hierarchy
// (cpu,cpuacct on most distributions); always true on v2.
func (l Layout) CoMounted(a, b Controller) bool {
	ha := l.Hierarchy(a)
	return ha != "" && ha == l.Hierarchy(b)
}

// Controllers lists the controllers the host offers: on v1 and hybrid
// hosts those with a hierarchy, on v2 those the root's cgroup.controllers
// names (cpuacct's accounting, cpu.stat, is always there).
func (l Layout) Controllers() []Controller {
	var out []Controller
	for _, c := range knownControllers() {
		switch {
		case l.mode == ModeV2 && c == CPUAcct:
			out = append(out, c)
		case l.mode == ModeV2:
			if slices.Contains(strings.Fields(l.enabled), string(c)) {
				out = append(out, c)
			}
		case l.Hierarchy(c) != "":
			out = append(out, c)
		}
	}
	return out
}

// String describes the layout for logs, e.g.
// "hybrid (cpu=/sys/fs/cgroup/cpu memory=/sys/fs/cgroup/memory ... unified=/sys/fs/cgroup/unified)".
func (l Layout) String() string {
	if l.mode == ModeUnknown {
		return l.mode.String()
	}
	var b strings.Builder
	b.WriteString(l.mode.String())
	b.WriteString(" (")
	sep := ""
	for _, c := range knownControllers() {
		if h := l.Hierarchy(c); h != "" {
			fmt.Fprintf(&b, "%s%s=%s", sep, c, h)
			sep = " "
		}
	}
	if l.unified != "" {
		fmt.Fprintf(&b, "%sunified=%s", sep, l.unified)
	}
	b.WriteString(")")
	return b.String()
}

// MarshalText lets logs and JSON show a Layout as String does.
func (l Layout) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// Join joins a cgroup path to a hierarchy directory; cleaning it as an
// absolute path first keeps ".." from leaving the hierarchy. The agent's
// paths are clean already, and then Join costs one concatenation.
func Join(hierarchy, cgroupPath string) string {
	if !strings.HasPrefix(cgroupPath, "/") {
		cgroupPath = "/" + cgroupPath
	}
	clean := filepath.Clean(cgroupPath)
	if hierarchy == "/" || clean == "/" {
		return filepath.Join(hierarchy, clean)
	}
	return hierarchy + clean
}
