package kerneltest

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
)

// RequireBPF needs root, kernel BTF and at least one of the tracing
// program types (tp_btf or raw_tp) the scheduler samplers attach with.
func RequireBPF(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	if _, err := btf.LoadKernelSpec(); err != nil {
		Missing(t, FeatureBPF, "kernel BTF: %v", err)
	}
	errTracing := features.HaveProgramType(ebpf.Tracing)
	errRaw := features.HaveProgramType(ebpf.RawTracepoint)
	if errTracing != nil && errRaw != nil {
		Missing(t, FeatureBPF, "tracing programs: tp_btf: %v; raw_tp: %v", errTracing, errRaw)
	}
}
