package ebpf

import (
	"errors"
	"fmt"

	cebpf "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
)

// Capabilities is what the kernel offers the run-queue sampler, probed once
// at agent start.
type Capabilities struct {
	// KernelBTF: the kernel describes its types (/sys/kernel/btf/vmlinux,
	// CONFIG_DEBUG_INFO_BTF). Both flavours need it: they read task and
	// cgroup fields with CO-RE.
	KernelBTF bool
	// Tracing: BPF_PROG_TYPE_TRACING loads (tp_btf attach).
	Tracing bool
	// RawTracepoint: BPF_PROG_TYPE_RAW_TRACEPOINT loads (raw_tp attach).
	RawTracepoint bool
	// QueueMap: BPF_MAP_TYPE_QUEUE is available (Linux 4.20+), the newest
	// of the map types both flavours use (the free counter slots).
	QueueMap bool
	// SchedInfo: tasks carry the kernel's run-queue accounting
	// (CONFIG_SCHED_INFO, selected by SCHEDSTATS and TASK_DELAY_ACCT; what
	// /proc/<pid>/schedstat prints), which the programs read.
	SchedInfo bool
}

// Usable reports whether Load can be expected to succeed.
func (c Capabilities) Usable() bool {
	return c.KernelBTF && c.SchedInfo && c.QueueMap && (c.Tracing || c.RawTracepoint)
}

// Probe asks the kernel what the run-queue sampler needs. When something
// essential is missing the error wraps ErrNotSupported and names it; the
// returned Capabilities are filled in either way. Probing needs the same
// privileges as loading (CAP_BPF and CAP_PERFMON, or root): without them
// every probe fails with a permission error, also reported as unsupported.
func Probe() (Capabilities, error) {
	var c Capabilities
	var errs []error
	if spec, err := btf.LoadKernelSpec(); err != nil {
		errs = append(errs, fmt.Errorf("kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF): %w", err))
	} else {
		c.KernelBTF = true
		if err := hasSchedInfo(spec); err != nil {
			errs = append(errs, err)
		} else {
			c.SchedInfo = true
		}
	}
	errTracing := haveTpBTF()
	c.Tracing = errTracing == nil
	errRaw := features.HaveProgramType(cebpf.RawTracepoint)
	c.RawTracepoint = errRaw == nil
	if !c.Tracing && !c.RawTracepoint {
		errs = append(errs,
			fmt.Errorf("tp_btf programs (BPF_PROG_TYPE_TRACING): %w", errTracing),
			fmt.Errorf("raw_tp programs (BPF_PROG_TYPE_RAW_TRACEPOINT): %w", errRaw))
	}
	if err := features.HaveMapType(cebpf.Queue); err != nil {
		errs = append(errs, fmt.Errorf("queue maps: %w", err))
	} else {
		c.QueueMap = true
	}
	if len(errs) == 0 {
		return c, nil
	}
	return c, unsupported("probe", errors.Join(errs...))
}

// haveTpBTF loads the smallest tp_btf program on sched_switch, the attach
// point the sampler uses. The library's generic probe for tracing programs
// (features.HaveProgramType) loads an fentry program instead, which kernels
// without direct-call trampolines refuse with EPERM even where tp_btf loads.
func haveTpBTF() error {
	prog, err := cebpf.NewProgram(&cebpf.ProgramSpec{
		Type:       cebpf.Tracing,
		AttachType: cebpf.AttachTraceRawTp,
		AttachTo:   "sched_switch",
		License:    "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		},
	})
	if err != nil {
		return err
	}
	return prog.Close()
}

// hasSchedInfo checks in the kernel's types that tasks have the sched_info
// the programs read.
func hasSchedInfo(spec *btf.Spec) error {
	var task *btf.Struct
	if err := spec.TypeByName("task_struct", &task); err != nil {
		return fmt.Errorf("kernel BTF: task_struct: %w", err)
	}
	for _, m := range task.Members {
		if m.Name == "sched_info" {
			return nil
		}
	}
	return fmt.Errorf("task_struct has no sched_info (CONFIG_SCHED_INFO, selected by SCHEDSTATS or TASK_DELAY_ACCT): %w", ErrNotSupported)
}
