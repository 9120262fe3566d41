package ebpf

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	cebpf "github.com/cilium/ebpf"

	"github.com/sluicehq/sluice/test/kerneltest"
)

// spinEnv makes this test binary a busy loop (TestHelperSpin): the VM
// lane's guest has no programs of its own to spin with.
const spinEnv = "SLUICE_EBPF_TEST_SPIN"

// TestHelperSpin is the busy child of TestVMSamplerLoadsAndCounts.
func TestHelperSpin(t *testing.T) {
	if os.Getenv(spinEnv) == "" {
		t.Skip("helper for TestVMSamplerLoadsAndCounts")
	}
	// Bounded, so a child the test failed to kill does not spin forever.
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); {
	}
}

// verifierTail shortens a load error to its verifier log's last lines
// (where the rejection is): the VM lane's serial console is slow.
func verifierTail(err error, lines int) string {
	var ve *cebpf.VerifierError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	log := ve.Log
	if len(log) > lines {
		log = log[len(log)-lines:]
	}
	return fmt.Sprintf("%v\n  ...\n  %s", ve.Cause, strings.Join(log, "\n  "))
}

// threadsSchedstat sums schedstat over every thread of the cgroup (the
// busy child is a Go program, with runtime threads besides the spinning one).
func threadsSchedstat(t *testing.T, dir string) schedInfo {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.threads"))
	if err != nil {
		t.Fatal(err)
	}
	var sum schedInfo
	for _, f := range strings.Fields(string(b)) {
		tid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s/cgroup.threads: %q: %v", dir, f, err)
		}
		s := schedstat(t, tid)
		sum.onCPU += s.onCPU
		sum.runDelay += s.runDelay
		sum.slices += s.slices
	}
	return sum
}

// TestVMSamplerLoadsAndCounts loads the sampler keyed by cgroup v2 id, in
// each attach mode, on a kernel with v2 controllers (the VM lane's Debian
// 6.1: in the guest SLUICE_REQUIRE declares bpf, so a program the verifier
// rejects fails this test instead of skipping it), runs a busy child in a
// cgroup capped by cpu.max, and checks the counts against the kernel's:
// on-CPU time against cpu.stat usage_usec and the run-queue delay (waits
// while throttled included) against the threads' schedstat run_delay,
// each within 5%.
func TestVMSamplerLoadsAndCounts(t *testing.T) {
	kerneltest.RequireBPF(t)
	root := kerneltest.RequireCgroupV2Controllers(t, "cpu")
	for _, attach := range attachModes() {
		t.Run(attach.String(), func(t *testing.T) {
			dir, id := cgroupWithID(t, root)
			kerneltest.WriteCgroupFile(t, filepath.Join(dir, "cpu.max"), "50000 100000")
			s, err := Load(Options{Attach: attach, KeyMode: KeyCgroupV2})
			if err != nil {
				kerneltest.Missing(t, kerneltest.FeatureBPF, "load %v: %s", attach, verifierTail(err, 12))
			}
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("close sampler: %v", err)
				}
			})
			if got := s.Attach(); got != attach {
				t.Fatalf("Attach() = %v, want %v", got, attach)
			}

			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperSpin$")
			cmd.Env = append(os.Environ(), spinEnv+"=1", "GOMAXPROCS=1")
			kerneltest.StartCmd(t, cmd)
			pids := []int{cmd.Process.Pid}
			stopAll(t, pids)
			kerneltest.WriteCgroupFile(t, filepath.Join(dir, "cgroup.procs"), strconv.Itoa(pids[0]))
			before := threadsSchedstat(t, dir)
			usageBefore := cpuStatUsage(t, dir)
			readWindow(t, s) // start a window here
			contAll(t, pids)
			// At half a CPU the child waits 50 ms of each 100 ms period
			// throttled, which the kernel counts as run delay.
			runUntil(t, "the busy child to run and wait", func() bool {
				return cpuStatUsage(t, dir)-usageBefore >= time.Second &&
					threadsSchedstat(t, dir).runDelay-before.runDelay >= minTaskDelay
			})
			stopAll(t, pids)

			window := readWindow(t, s)
			got := window[id]
			usage := cpuStatUsage(t, dir) - usageBefore
			after := threadsSchedstat(t, dir)
			delay := after.runDelay - before.runDelay
			t.Logf("%v: eBPF on-CPU %v, cpu.stat usage %v; eBPF %d waits, %v; schedstat %d slices, run_delay %v; preemptions %d",
				attach, got.OnCPU, usage, got.RunqCount(), got.RunqDelayTotal, after.slices-before.slices, delay, got.Preemptions)
			// The sum does not depend on where the boundary between
			// waiting and running falls.
			if sum, want := got.OnCPU+got.RunqDelayTotal, usage+delay; !within(sum, want, 0.05) {
				t.Errorf("eBPF on-CPU + run-queue delay %v vs cpu.stat usage + schedstat run_delay %v: more than 5%% apart", sum, want)
			}
			if slices := after.slices - before.slices; got.RunqCount() > slices || float64(got.RunqCount()) < 0.95*float64(slices) {
				t.Errorf("eBPF counted %d waits, schedstat %d switch-ins: want at most as many and at least 95%%", got.RunqCount(), slices)
			}
			if !within(got.OnCPU, usage, 0.05) {
				t.Errorf("eBPF on-CPU %v vs cpu.stat usage_usec %v: more than 5%% apart", got.OnCPU, usage)
			}
			if got.RunqCount() == 0 {
				t.Errorf("no run-queue waits recorded for a busy child throttled by cpu.max")
			}
			if !within(got.RunqDelayTotal, delay, 0.05) {
				t.Errorf("eBPF run-queue delay %v vs schedstat run_delay %v: more than 5%% apart", got.RunqDelayTotal, delay)
			}
			checkHistAgainstTotal(t, got)
			if got.Preemptions == 0 {
				t.Errorf("no preemptions counted for a busy child throttled by cpu.max")
			}
			if n, err := s.recursionMisses(); err != nil || n != 0 {
				t.Errorf("recursionMisses() = %d, %v; want 0", n, err)
			}
		})
	}
}

// TestVMSamplerLoadsKeyedByV1CPU loads both flavours keyed by the v1 cpu
// controller's cgroup ids, with per-task tracking on: the verifier sees
// different code for that key mode (the other branch is pruned at load),
// so passing TestVMSamplerLoadsAndCounts does not prove it. A Debian 12
// host booted with systemd.unified_cgroup_hierarchy=0 would use it. The
// guest mounts no v1 hierarchy, so this checks loading and attaching only.
func TestVMSamplerLoadsKeyedByV1CPU(t *testing.T) {
	kerneltest.RequireBPF(t)
	for _, attach := range attachModes() {
		s, err := Load(Options{Attach: attach, KeyMode: KeyCgroupV1CPU, trackTasksInCgroup: 1})
		if err != nil {
			kerneltest.Missing(t, kerneltest.FeatureBPF, "load %v keyed by %v: %s", attach, KeyCgroupV1CPU, verifierTail(err, 12))
		}
		if got := s.Attach(); got != attach {
			t.Errorf("Attach() = %v, want %v", got, attach)
		}
		if err := s.Close(); err != nil {
			t.Errorf("close %v sampler: %v", attach, err)
		}
	}
}

// TestMain, in the VM lane, keeps two samplers attached for the whole run.
// Changing how many probes a scheduler tracepoint has live-patches the
// kernel's text (text_poke_bp) at every call site of the tracepoint, in
// __schedule and try_to_wake_up among them: the first probe flips the
// tracepoint's static key, and with static calls the second probe (and
// going back to one) repoints the call from the single probe to the
// iterator. Under QEMU's TCG that patching was seen to hang the guest:
// one vCPU looping on the patch's int3 in __schedule while the other
// waited for it in smp_call_function_many_cond (soft lockup in
// bpf_raw_tp_link_release; 3 hangs in about 25 guest runs of this
// package with nothing held, and one more in CI with one sampler held,
// once the programs also attached to sched_wakeup and sched_wakeup_new).
// With two samplers holding every tracepoint at two probes, the tests'
// own attaches and detaches go from two to more and back, which only
// swaps the probe array: nothing is patched. Real hardware and KVM are
// not affected; the host runs without them.
func TestMain(m *testing.M) {
	var hold [2]*Sampler
	if kerneltest.InVM() && os.Getenv(spinEnv) == "" && os.Geteuid() == 0 {
		// A load failure is left to the tests, which report it.
		for i := range hold {
			hold[i], _ = Load(Options{Attach: AttachRawTP})
		}
	}
	code := m.Run()
	// Not closed: the guest powers off after this process, and its exit
	// releases the links. Kept reachable until then (cilium/ebpf closes
	// unreachable descriptors from finalizers).
	runtime.KeepAlive(hold)
	os.Exit(code)
}
