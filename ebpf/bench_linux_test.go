package ebpf

import (
	"errors"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	cebpf "github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/sluicehq/sluice/test/kerneltest"
)

// BenchmarkRead100Cgroups measures Sampler.Read with 100 cgroups in the
// counter map (synthetic ids beyond the real ones the attached programs
// add meanwhile).
func BenchmarkRead100Cgroups(b *testing.B) {
	kerneltest.RequireBPF(b)
	s, err := Load(Options{KeyMode: KeyCgroupV2})
	if errors.Is(err, ErrNotSupported) {
		kerneltest.Missing(b, kerneltest.FeatureBPF, "%v", err)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	perCPU := make([]runqCgroupStats, cebpf.MustPossibleCPU())
	for i := range perCPU {
		perCPU[i].RunqHist[10] = 1
		perCPU[i].OncpuNs = 1000
	}
	const synthetic = 100
	for id := uint64(1 << 40); id < 1<<40+synthetic; id++ {
		if err := s.maps.Stats.Update(id, perCPU, cebpf.UpdateAny); err != nil {
			b.Fatal(err)
		}
	}
	w, err := s.Read()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(w)), "cgroups")
	b.ReportAllocs()
	// CPU time besides wall time: on a loaded machine ns/op mostly
	// measures waiting for a CPU.
	cpu0 := processCPU(b)
	n := 0
	for b.Loop() {
		if _, err := s.Read(); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(n), "cpu-ns/op")
}

// processCPU is the user+system time this process used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var usecsPerOp = regexp.MustCompile(`([0-9.]+) usecs/op`)

func schedPipe(b *testing.B, perf string, loops int) float64 {
	b.Helper()
	out, err := exec.Command(perf, "bench", "sched", "pipe", "-l", strconv.Itoa(loops)).CombinedOutput()
	if err != nil {
		b.Fatalf("perf bench sched pipe: %v: %s", err, out)
	}
	m := usecsPerOp.FindSubmatch(out)
	if m == nil {
		b.Fatalf("perf bench sched pipe: no usecs/op in %q", out)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// BenchmarkSchedPipeOverhead runs `perf bench sched pipe -l 200000`
// without and with the run-queue programs attached, alternating, and
// reports the median round trip of each and the median's slowdown (goal:
// under 3%). One b.N iteration is one pair of runs; use -benchtime=5x or
// more. It reports, it does not judge: figures on a shared machine vary.
func BenchmarkSchedPipeOverhead(b *testing.B) {
	for _, attach := range attachModes() {
		b.Run(attach.String(), func(b *testing.B) {
			kerneltest.RequireBPF(b)
			perf := kerneltest.RequireBinary(b, kerneltest.FeatureBPF, "perf")
			var without, with []float64
			for b.Loop() {
				without = append(without, schedPipe(b, perf, 200000))
				s, err := Load(Options{KeyMode: KeyCgroupV1CPU, Attach: attach})
				if err != nil {
					b.Fatal(err)
				}
				with = append(with, schedPipe(b, perf, 200000))
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			}
			slices.Sort(without)
			slices.Sort(with)
			mw, mb := without[len(without)/2], with[len(with)/2]
			b.ReportMetric(mw, "usec/op-without")
			b.ReportMetric(mb, "usec/op-with")
			b.ReportMetric(100*(mb-mw)/mw, "%slowdown")
			b.Logf("%s: without %v, with %v usec/op", attach, without, with)
		})
	}
}

// BenchmarkProgramRunTime reports the kernel's own measure of the
// programs' cost (BPF_STATS_RUN_TIME: average ns per run and runs) while
// `perf bench sched pipe -l 200000` drives context switches. Unlike the
// end-to-end slowdown it hardly depends on what else the machine runs.
// Stats are enabled through a file descriptor, so they switch off again
// when the benchmark ends.
func BenchmarkProgramRunTime(b *testing.B) {
	for _, attach := range attachModes() {
		b.Run(attach.String(), func(b *testing.B) {
			kerneltest.RequireBPF(b)
			perf := kerneltest.RequireBinary(b, kerneltest.FeatureBPF, "perf")
			stats, err := cebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
			if err != nil {
				b.Fatalf("enable BPF run-time stats: %v", err)
			}
			defer stats.Close()
			s, err := Load(Options{KeyMode: KeyCgroupV1CPU, Attach: attach})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			for b.Loop() {
				schedPipe(b, perf, 200000)
			}
			for i, name := range []string{"wakeup", "wakeup_new", "switch"} {
				st, err := s.progs[i].Stats()
				if err != nil {
					b.Fatal(err)
				}
				if st.RunCount > 0 {
					b.ReportMetric(float64(st.Runtime.Nanoseconds())/float64(st.RunCount), "ns/"+name)
				}
				b.Logf("%s %s: %d runs, %v total, %d recursion misses", attach, name, st.RunCount, st.Runtime, st.RecursionMisses)
			}
		})
	}
}
