package capability

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/sluicehq/sluice/ebpf"
	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
)

// Roots are the mounts Probe looks at; tests point them at fake trees.
type Roots struct {
	// Cgroup is the cgroup mount root (default /sys/fs/cgroup).
	Cgroup string
	// Proc is procfs (default /proc).
	Proc string
	// Resctrl is where resctrl is, or would be, mounted (default
	// /sys/fs/resctrl).
	Resctrl string
}

func (r Roots) withDefaults() Roots {
	if r.Cgroup == "" {
		r.Cgroup = "/sys/fs/cgroup"
	}
	if r.Proc == "" {
		r.Proc = "/proc"
	}
	if r.Resctrl == "" {
		r.Resctrl = "/sys/fs/resctrl"
	}
	return r
}

// Capabilities is what the host offers, probed once at start. Every
// field's zero value means "absent"; each *Err field says why, in the
// words of the failing probe, so an SRE knows which kernel feature or
// mount to look at.
type Capabilities struct {
	// Cgroup is the host's cgroup layout (v1, hybrid or v2, where each
	// controller and the BPF-attachable hierarchy are). The zero Layout
	// when detection failed (CgroupErr).
	Cgroup    cgroupfs.Layout `json:"cgroup"`
	CgroupErr string          `json:"cgroupError,omitempty"`
	// Controllers are the cgroup controllers Sluice uses that the host
	// offers.
	Controllers []cgroupfs.Controller `json:"controllers"`

	// BPF is what the kernel offers the run-queue sampler; BPFUsable says
	// whether loading it can be expected to work.
	BPF       ebpf.Capabilities `json:"bpf"`
	BPFUsable bool              `json:"bpfUsable"`
	BPFErr    string            `json:"bpfError,omitempty"`

	// PSI: /proc/pressure/{cpu,memory,io} are readable (CONFIG_PSI, not
	// booted with psi=0).
	PSI    bool   `json:"psi"`
	PSIErr string `json:"psiError,omitempty"`

	Resctrl Resctrl `json:"resctrl"`
	TC      TC      `json:"tc"`
}

// Resctrl is the cache and memory-bandwidth allocation interface.
type Resctrl struct {
	// Supported: the kernel knows the resctrl file system (listed in
	// /proc/filesystems: CONFIG_X86_CPU_RESCTRL and a CPU with RDT).
	Supported bool `json:"supported"`
	// Mounted: resctrl is mounted at Root (it has an info directory).
	Mounted bool   `json:"mounted"`
	Root    string `json:"root"`
}

// TC is which traffic-control qdiscs and classifiers the kernel offers.
// Probe leaves it unprobed: finding out honestly means creating qdiscs on
// a device, which the agent does in a private network namespace
// (netqos/tc.Probe) and fills in here; Probed stays false when that
// failed.
type TC struct {
	Probed      bool     `json:"probed"`
	Qdiscs      []string `json:"qdiscs,omitempty"`
	Classifiers []string `json:"classifiers,omitempty"`
}

// Probe asks the host what it offers. It never fails: each missing
// feature is recorded with the reason. The BPF probe needs the privileges
// loading needs (CAP_BPF and CAP_PERFMON, or root); without them BPF reads
// as unsupported with a permission error.
func Probe(ctx context.Context, roots Roots) Capabilities {
	roots = roots.withDefaults()
	var c Capabilities
	if l, err := cgroupfs.Detect(roots.Cgroup); err != nil {
		c.CgroupErr = err.Error()
	} else {
		c.Cgroup, c.Controllers = l, l.Controllers()
	}
	if err := ctx.Err(); err != nil {
		c.BPFErr = fmt.Sprintf("not probed: %v", err)
	} else {
		bpf, err := ebpf.Probe()
		c.BPF, c.BPFUsable = bpf, bpf.Usable()
		if err != nil {
			c.BPFErr = err.Error()
		}
	}
	if err := probePSI(roots.Proc); err != nil {
		c.PSIErr = err.Error()
	} else {
		c.PSI = true
	}
	c.Resctrl = probeResctrl(roots)
	return c
}

// probePSI reads every pressure file: a kernel booted with psi=0 has the
// files but refuses reads (EOPNOTSUPP).
func probePSI(proc string) error {
	for _, r := range []string{"cpu", "memory", "io"} {
		name := filepath.Join(proc, "pressure", r)
		if _, err := os.ReadFile(name); err != nil {
			return fmt.Errorf("psi (CONFIG_PSI): %w", err)
		}
	}
	return nil
}

func probeResctrl(roots Roots) Resctrl {
	r := Resctrl{Root: roots.Resctrl}
	r.Mounted = cgroupfs.Exists(filepath.Join(roots.Resctrl, "info"))
	if data, err := os.ReadFile(filepath.Join(roots.Proc, "filesystems")); err == nil {
		r.Supported = listsFS(data, "resctrl")
	}
	// A mounted resctrl is supported whatever /proc says.
	r.Supported = r.Supported || r.Mounted
	return r
}

// listsFS reports whether /proc/filesystems names fs ("nodev\tresctrl").
func listsFS(data []byte, fs string) bool {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) > 0 && string(f[len(f)-1]) == fs {
			return true
		}
	}
	return false
}

// LogValue shows the capabilities in one structured log record.
func (c Capabilities) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("cgroup", c.Cgroup.String()),
		slog.Any("controllers", c.Controllers),
		slog.Bool("bpf", c.BPFUsable),
		slog.Bool("psi", c.PSI),
		slog.Bool("resctrl.supported", c.Resctrl.Supported),
		slog.Bool("resctrl.mounted", c.Resctrl.Mounted),
		slog.Bool("tc.probed", c.TC.Probed),
		slog.Any("tc.qdiscs", c.TC.Qdiscs),
		slog.Any("tc.classifiers", c.TC.Classifiers),
	}
	for _, e := range []struct{ k, v string }{{"cgroupError", c.CgroupErr}, {"bpfError", c.BPFErr}, {"psiError", c.PSIErr}} {
		if e.v != "" {
			attrs = append(attrs, slog.String(e.k, e.v))
		}
	}
	return slog.GroupValue(attrs...)
}
