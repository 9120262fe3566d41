package ebpf

import (
	"errors"
	"fmt"
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
// add meanwhile), reading the slot hash at every Read and, as the agent
// does, at every tenth.
func BenchmarkRead100Cgroups(b *testing.B) {
	for _, slotReads := range []int{1, 10} {
		b.Run(fmt.Sprintf("slot-reads-%d", slotReads), func(b *testing.B) { benchRead100Cgroups(b, slotReads) })
	}
}

func benchRead100Cgroups(b *testing.B, slotReads int) {
	kerneltest.RequireBPF(b)
	s, err := Load(Options{KeyMode: KeyCgroupV2, SlotReads: slotReads})
	if errors.Is(err, ErrNotSupported) {
		kerneltest.Missing(b, kerneltest.FeatureBPF, "%v", err)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	perCPU := make([]runqCgroupStats, cebpf.MustPossibleCPU())
	const synthetic = 100
	for id := uint64(1 << 40); id < 1<<40+synthetic; id++ {
		// As the programs do for a new cgroup: take a free slot, map the
		// id to it, own each CPU's copy.
		var slot uint32
		if err := s.maps.FreeSlots.LookupAndDelete(nil, &slot); err != nil {
			b.Fatal(err)
		}
		if err := s.maps.CgroupSlots.Update(id, slot, cebpf.UpdateNoExist); err != nil {
			b.Fatal(err)
		}
		for i := range perCPU {
			perCPU[i] = runqCgroupStats{CgroupId: id, OncpuNs: 1000}
			perCPU[i].RunqHist[10] = 1
		}
		if err := s.maps.Stats.Update(slot, perCPU, cebpf.UpdateAny); err != nil {
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

// BenchmarkSchedPipeOverhead measures the programs' cost end to end:
// `perf bench sched pipe` round trips without and with the run-queue
// programs attached. One b.N iteration is pipePairs pairs of short runs
// (pipeLoops round trips each) with the programs loaded once and attached
// only for the "with" run of each pair, in turns without-with and
// with-without: on a shared machine, load that comes and goes then falls
// on both sides alike. Use -benchtime=7x or more. It reports the median
// round trip of each side and their slowdown (goal: under 3%), and the
// median and spread of the pairs' own slowdowns. It reports, it does not
// judge: figures on a shared machine vary.
func BenchmarkSchedPipeOverhead(b *testing.B) {
	const pipePairs, pipeLoops = 10, 20000
	for _, attach := range attachModes() {
		b.Run(attach.String(), func(b *testing.B) {
			kerneltest.RequireBPF(b)
			perf := kerneltest.RequireBinary(b, kerneltest.FeatureBPF, "perf")
			s, err := loadDetached(Options{KeyMode: KeyCgroupV1CPU}, attach)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			withPrograms := func() float64 {
				if err := s.attachLinks(); err != nil {
					b.Fatal(err)
				}
				v := schedPipe(b, perf, pipeLoops)
				for _, l := range s.links {
					if err := l.Close(); err != nil {
						b.Fatal(err)
					}
				}
				s.links = nil
				return v
			}
			var without, with, pairs []float64
			for b.Loop() {
				for range pipePairs {
					var wo, wi float64
					if len(pairs)%2 == 0 {
						wo = schedPipe(b, perf, pipeLoops)
						wi = withPrograms()
					} else {
						wi = withPrograms()
						wo = schedPipe(b, perf, pipeLoops)
					}
					without, with = append(without, wo), append(with, wi)
					pairs = append(pairs, 100*(wi-wo)/wo)
				}
			}
			mw, mb := median(without), median(with)
			b.ReportMetric(mw, "usec/op-without")
			b.ReportMetric(mb, "usec/op-with")
			b.ReportMetric(100*(mb-mw)/mw, "%slowdown")
			b.ReportMetric(median(pairs), "%slowdown-paired")
			b.ReportMetric(rankOf(pairs, 0.25), "%slowdown-paired-q1")
			b.ReportMetric(rankOf(pairs, 0.75), "%slowdown-paired-q3")
			b.Logf("%s: without %.2f, with %.2f usec/op; pairs' slowdowns %.1f%%", attach, without, with, pairs)
		})
	}
}

// median returns the median of vs (the upper one of an even count).
func median(vs []float64) float64 { return rankOf(vs, 0.5) }

// rankOf returns the element of vs at rank q (0..1) of the sorted order.
func rankOf(vs []float64, q float64) float64 {
	s := slices.Sorted(slices.Values(vs))
	return s[int(q*float64(len(s)-1)+0.5)]
}

// BenchmarkProgramRunTime reports the kernel's own measure of the
// programs' cost (BPF_STATS_RUN_TIME) while `perf bench sched pipe -l
// 200000` drives context switches: ns per run of the sched_switch program
// and of the sched_wakeup one,
// and all the programs' time per sched-pipe round trip (comparable across
// program designs that hook different events). Both include the kernel's
// two clock reads per run for the statistic itself (about 40 ns per run on
// the development machine: an empty program's figure). Unlike the
// end-to-end slowdown it hardly depends on what else the machine runs, but
// other load adds switches of other tasks (usually dearer than the idle
// task's): pin the benchmark (taskset -c 1) for figures to compare.
// Stats are enabled through a file descriptor, so they switch off again
// when the benchmark ends.
func BenchmarkProgramRunTime(b *testing.B) {
	for _, attach := range attachModes() {
		for _, armed := range []bool{false, true} {
			name := attach.String() + "/wakes-off"
			if armed {
				name = attach.String() + "/wakes-armed"
			}
			b.Run(name, func(b *testing.B) { benchProgramRunTime(b, attach, armed) })
		}
	}
}

// benchProgramRunTime: armed turns the wake-up posts on (as the agent keeps
// them between bursts) with no cgroup marked, so every wake-up pays the
// woken task's cgroup lookup and none posts.
func benchProgramRunTime(b *testing.B, attach AttachMode, armed bool) {
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
	if armed {
		if err := s.SetWakes(WakeConfig{RunqThreshold: time.Millisecond, MinGap: 10 * time.Millisecond}); err != nil {
			b.Fatal(err)
		}
	}
	loops := 0
	for b.Loop() {
		schedPipe(b, perf, 200000)
		loops += 200000
	}
	var total time.Duration
	for i, h := range schedHooks(attach) {
		st, err := s.progs[i].Stats()
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 && st.RunCount > 0 {
			b.ReportMetric(float64(st.Runtime.Nanoseconds())/float64(st.RunCount), "ns/switch")
		}
		if i == 1 && st.RunCount > 0 {
			b.ReportMetric(float64(st.Runtime.Nanoseconds())/float64(st.RunCount), "ns/wakeup")
		}
		total += st.Runtime
		b.Logf("%s %s: %d runs, %v total, %d recursion misses", attach, h.tracepoint, st.RunCount, st.Runtime, st.RecursionMisses)
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(loops), "prog-ns/roundtrip")
}
