package resctrltest

import (
	"fmt"
	"io/fs"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/sluicehq/sluice/rdt"
)

// Write is one logged write.
type Write struct {
	Name string
	Data string
	Err  error
}

// Fake is an in-memory resctrl mount. It implements resctrl.FS.
type Fake struct {
	hw rdt.Hardware

	mu       sync.Mutex
	groups   map[string]map[string]map[int]uint64 // group -> resource -> domain -> value
	tasks    map[int]string                       // pid -> group
	lastCmd  string
	writes   []Write
	counters map[string]map[int]rdt.RawCounters
	reject   map[string]error
}

// New returns a fake mount of hw with only the default group.
func New(hw rdt.Hardware) *Fake {
	f := &Fake{hw: hw, groups: map[string]map[string]map[int]uint64{}, tasks: map[int]string{},
		lastCmd: "ok", counters: map[string]map[int]rdt.RawCounters{}, reject: map[string]error{}}
	f.groups[""] = f.defaults()
	return f
}

// defaults is what the kernel gives a new group: every way, full bandwidth.
func (f *Fake) defaults() map[string]map[int]uint64 {
	s := map[string]map[int]uint64{}
	for _, c := range f.hw.Caches {
		s[c.Name] = map[int]uint64{}
		for _, d := range c.Domains {
			s[c.Name][d] = c.CBMMask
		}
	}
	if mb := f.hw.MB; mb != nil {
		s[rdt.ResourceMB] = map[int]uint64{}
		for _, d := range mb.Domains {
			s[rdt.ResourceMB][d] = uint64(mb.MaxValue)
		}
	}
	return s
}

func perr(op, name string, err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }

// AddTask makes a task exist (in the default group).
func (f *Fake) AddTask(pid int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tasks[pid] = ""
}

// ExitTask makes a task disappear.
func (f *Fake) ExitTask(pid int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.tasks, pid)
}

// GroupOf says which group holds a task ("" is the default group).
func (f *Fake) GroupOf(pid int) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.tasks[pid]
	return g, ok
}

// SetCounters scripts a group's monitoring values in one domain.
func (f *Fake) SetCounters(group string, domain int, c rdt.RawCounters) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.counters[group] == nil {
		f.counters[group] = map[int]rdt.RawCounters{}
	}
	f.counters[group][domain] = c
}

// Reject makes later writes to name fail with err.
func (f *Fake) Reject(name string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reject[name] = err
}

// Writes returns the write log.
func (f *Fake) Writes() []Write {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.writes)
}

// ResetWrites empties the write log.
func (f *Fake) ResetWrites() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = nil
}

// Schemata renders a group's schemata as the kernel prints it.
func (f *Fake) Schemata(group string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.render(group)
}

func (f *Fake) resources() []string {
	var names []string
	for _, c := range f.hw.Caches {
		names = append(names, c.Name)
	}
	if f.hw.MB != nil {
		names = append(names, rdt.ResourceMB)
	}
	return names
}

// render follows rdtgroup_schemata_show: names right-aligned to the
// widest, masks zero-padded to the cache's width, MB in decimal.
func (f *Fake) render(group string) string {
	g := f.groups[group]
	width := 0
	for _, n := range f.resources() {
		width = max(width, len(n))
	}
	var b strings.Builder
	for _, n := range f.resources() {
		fmt.Fprintf(&b, "%*s:", width, n)
		var ids []int
		for d := range g[n] {
			ids = append(ids, d)
		}
		slices.Sort(ids)
		for i, d := range ids {
			if i > 0 {
				b.WriteByte(';')
			}
			if n == rdt.ResourceMB {
				fmt.Fprintf(&b, "%d=%d", d, g[n][d])
			} else {
				c := f.cache(n)
				fmt.Fprintf(&b, "%d=%0*x", d, (bits.Len64(c.CBMMask)+3)/4, g[n][d])
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func (f *Fake) cache(name string) *rdt.CacheResource {
	for i := range f.hw.Caches {
		if f.hw.Caches[i].Name == name {
			return &f.hw.Caches[i]
		}
	}
	return nil
}

// split turns "g/file" into group and file; files at the top belong to
// the default group.
func split(name string) (group, file string) {
	if strings.HasPrefix(name, "mon_data/") {
		return "", name
	}
	if i := strings.Index(name, "/"); i >= 0 {
		return name[:i], name[i+1:]
	}
	return "", name
}

// ReadFile implements resctrl.FS.
func (f *Fake) ReadFile(name string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.info(name); ok {
		return []byte(s), nil
	}
	group, file := split(name)
	if group == "info" {
		return nil, perr("open", name, syscall.ENOENT)
	}
	if _, ok := f.groups[group]; !ok {
		return nil, perr("open", name, syscall.ENOENT)
	}
	switch {
	case file == "schemata":
		return []byte(f.render(group)), nil
	case file == "tasks":
		var pids []int
		for pid, g := range f.tasks {
			if g == group {
				pids = append(pids, pid)
			}
		}
		slices.Sort(pids)
		var b strings.Builder
		for _, p := range pids {
			fmt.Fprintf(&b, "%d\n", p)
		}
		return []byte(b.String()), nil
	case strings.HasPrefix(file, "mon_data/mon_L3_"):
		return f.monRead(name, group, strings.TrimPrefix(file, "mon_data/mon_L3_"))
	}
	return nil, perr("open", name, syscall.ENOENT)
}

func (f *Fake) monRead(name, group, rest string) ([]byte, error) {
	dom, event, ok := strings.Cut(rest, "/")
	d, err := strconv.Atoi(dom)
	l3, hasL3 := f.hw.L3()
	if !ok || err != nil || !hasL3 || !slices.Contains(l3.Domains, d) || !f.hw.Monitors(event) {
		return nil, perr("open", name, syscall.ENOENT)
	}
	c, ok := f.counters[group][d]
	var v uint64
	var has bool
	switch event {
	case rdt.EventOccupancy:
		v, has = c.OccupancyBytes, c.HasOccupancy
	case rdt.EventMBMTotal:
		v, has = c.TotalBytes, c.HasTotal
	case rdt.EventMBMLocal:
		v, has = c.LocalBytes, c.HasLocal
	}
	if !ok || !has {
		return []byte("Unavailable\n"), nil
	}
	return []byte(strconv.FormatUint(v, 10) + "\n"), nil
}

// info serves info/ files from the hardware model.
func (f *Fake) info(name string) (string, bool) {
	if name == "info/last_cmd_status" {
		return f.lastCmd + "\n", true
	}
	res, file, ok := strings.Cut(strings.TrimPrefix(name, "info/"), "/")
	if !ok || !strings.HasPrefix(name, "info/") {
		return "", false
	}
	if c := f.cache(res); c != nil {
		switch file {
		case "cbm_mask":
			return fmt.Sprintf("%x\n", c.CBMMask), true
		case "min_cbm_bits":
			return fmt.Sprintf("%d\n", c.MinCBMBits), true
		case "shareable_bits":
			return fmt.Sprintf("%x\n", c.ShareableBits), true
		case "num_closids":
			return fmt.Sprintf("%d\n", c.NumCLOSIDs), true
		case "sparse_masks":
			if c.SparseMasks {
				return "1\n", true
			}
			return "0\n", true
		}
	}
	if mb := f.hw.MB; mb != nil && res == rdt.ResourceMB {
		switch file {
		case "bandwidth_gran":
			return fmt.Sprintf("%d\n", mb.Granularity), true
		case "min_bandwidth":
			return fmt.Sprintf("%d\n", mb.Min), true
		case "num_closids":
			return fmt.Sprintf("%d\n", mb.NumCLOSIDs), true
		case "delay_linear":
			if mb.DelayLinear {
				return "1\n", true
			}
			return "0\n", true
		}
	}
	if res == "L3_MON" && len(f.hw.Monitoring) > 0 {
		switch file {
		case "mon_features":
			return strings.Join(f.hw.Monitoring, "\n") + "\n", true
		case "num_rmids":
			return fmt.Sprintf("%d\n", f.hw.NumRMIDs), true
		}
	}
	return "", false
}

// ReadDir implements resctrl.FS.
func (f *Fake) ReadDir(name string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	switch {
	case name == "":
		out = []string{"info", "mon_data", "mon_groups"}
		for g := range f.groups {
			if g != "" {
				out = append(out, g)
			}
		}
	case name == "info":
		out = append(out, f.resources()...)
		if len(f.hw.Monitoring) > 0 {
			out = append(out, "L3_MON")
		}
	default:
		group, file := split(name)
		if name == "mon_data" {
			group, file = "", "mon_data"
		}
		l3, ok := f.hw.L3()
		if _, exists := f.groups[group]; !exists || file != "mon_data" || !ok || len(f.hw.Monitoring) == 0 {
			return nil, perr("open", name, syscall.ENOENT)
		}
		for _, d := range l3.Domains {
			out = append(out, fmt.Sprintf("mon_L3_%02d", d))
		}
	}
	slices.Sort(out)
	return out, nil
}

// Mkdir implements resctrl.FS: one control group per CLOSID.
func (f *Fake) Mkdir(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case strings.Contains(name, "/") || name == "" || name == "info" || name == "mon_data" || name == "mon_groups":
		return perr("mkdir", name, syscall.EPERM)
	case f.groups[name] != nil:
		return perr("mkdir", name, syscall.EEXIST)
	case len(f.groups) >= f.hw.NumCLOSIDs():
		f.lastCmd = "out of CLOSIDs"
		return perr("mkdir", name, syscall.ENOSPC)
	}
	f.groups[name] = f.defaults()
	return nil
}

// Remove implements resctrl.FS; the group's tasks go to the default group.
func (f *Fake) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name == "" || f.groups[name] == nil {
		return perr("rmdir", name, syscall.ENOENT)
	}
	delete(f.groups, name)
	delete(f.counters, name)
	for pid, g := range f.tasks {
		if g == name {
			f.tasks[pid] = ""
		}
	}
	return nil
}

// WriteFile implements resctrl.FS.
func (f *Fake) WriteFile(name string, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.write(name, string(data))
	f.writes = append(f.writes, Write{Name: name, Data: string(data), Err: err})
	return err
}

func (f *Fake) write(name, data string) error {
	if err := f.reject[name]; err != nil {
		return perr("write", name, err)
	}
	group, file := split(name)
	if _, ok := f.groups[group]; !ok || group == "info" {
		return perr("open", name, syscall.ENOENT)
	}
	switch file {
	case "schemata":
		staged, msg := f.parse(data)
		if msg != "" {
			f.lastCmd = msg
			return perr("write", name, syscall.EINVAL)
		}
		for res, doms := range staged {
			for d, v := range doms {
				f.groups[group][res][d] = v
			}
		}
		f.lastCmd = "ok"
		return nil
	case "tasks":
		pid, err := strconv.Atoi(strings.TrimSpace(data))
		if err != nil {
			return perr("write", name, syscall.EINVAL)
		}
		if _, ok := f.tasks[pid]; !ok {
			f.lastCmd = "No task " + strconv.Itoa(pid)
			return perr("write", name, syscall.ESRCH)
		}
		f.tasks[pid] = group
		f.lastCmd = "ok"
		return nil
	}
	return perr("open", name, syscall.EACCES)
}

// parse follows rdtgroup_schemata_write: every line is parsed and checked
// before anything is applied; the first problem is the message.
func (f *Fake) parse(data string) (map[string]map[int]uint64, string) {
	if !strings.HasSuffix(data, "\n") {
		return nil, "schemata must end with a newline"
	}
	staged := map[string]map[int]uint64{}
	for line := range strings.SplitSeq(strings.TrimSuffix(data, "\n"), "\n") {
		res, vals, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			return nil, "Missing ':'"
		}
		c := f.cache(res)
		isMB := res == rdt.ResourceMB && f.hw.MB != nil
		if c == nil && !isMB {
			return nil, fmt.Sprintf("Unknown or unsupported resource name '%s'", res)
		}
		if staged[res] == nil {
			staged[res] = map[int]uint64{}
		}
		for item := range strings.SplitSeq(vals, ";") {
			id, val, ok := strings.Cut(strings.TrimSpace(item), "=")
			d, err := strconv.Atoi(strings.TrimSpace(id))
			if !ok || err != nil {
				return nil, "Missing '=' or non-numeric domain"
			}
			val = strings.TrimSpace(val)
			var known []int
			if isMB {
				known = f.hw.MB.Domains
			} else {
				known = c.Domains
			}
			if !slices.Contains(known, d) {
				return nil, fmt.Sprintf("Unknown domain %d", d)
			}
			if _, dup := staged[res][d]; dup {
				return nil, fmt.Sprintf("Duplicate domain %d", d)
			}
			var v uint64
			var msg string
			if isMB {
				v, msg = bwValidate(*f.hw.MB, val)
			} else {
				v, msg = cbmValidate(*c, val)
			}
			if msg != "" {
				return nil, msg
			}
			staged[res][d] = v
		}
	}
	return staged, ""
}

// bwValidate follows the kernel's bw_validate: decimal, within
// [min_bandwidth, max], rounded up to bandwidth_gran.
func bwValidate(mb rdt.MemBandwidth, s string) (uint64, string) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Sprintf("Non-decimal digit in MB value %s", s)
	}
	if v < uint64(mb.Min) || v > uint64(mb.MaxValue) {
		return 0, fmt.Sprintf("MB value %d out of range [%d,%d]", v, mb.Min, mb.MaxValue)
	}
	if g := uint64(mb.Granularity); g > 1 {
		v = (v + g - 1) / g * g
	}
	return v, ""
}

// cbmValidate follows the kernel's cbm_validate.
func cbmValidate(c rdt.CacheResource, s string) (uint64, string) {
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Sprintf("Non-hex character in the mask %s", s)
	}
	if v > c.CBMMask || v&^c.CBMMask != 0 {
		return 0, "Mask out of range"
	}
	if !c.SparseMasks && !rdt.Contiguous(v) {
		return 0, fmt.Sprintf("The mask %x has non-consecutive 1-bits", v)
	}
	if bits.OnesCount64(v) < c.MinCBMBits {
		return 0, fmt.Sprintf("Need at least %d bits in the mask", c.MinCBMBits)
	}
	return v, ""
}
