package agent

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// The agent's own CPU is mostly waking up, not working (docs/bench-colo.md:
// on the PVM guest it is measured on, a third of its samples are the
// context switch itself). Each 100 ms tick reads a few files, yet the Go
// runtime turned it into about fifteen context switches:
//
//   - The runtime's monitor thread (sysmon) is woken by the tick's first
//     system call and then polls in 20 µs sleeps until the tick's work is
//     done: with the kernel's default 50 µs timer slack that was eight or
//     nine wake-ups a tick, over half of all the agent's context switches.
//   - With two Ps, every goroutine the tick readies (a timer, a channel
//     send to a worker) wakes a second thread to look for work, which
//     finds none and sleeps again.
//
// The agent needs neither: its timers are 100 ms and 1 s ticks and a 20 ms
// confirm wait, for which a millisecond of slack changes nothing, and its
// work is one loop goroutine. Measured with 100 offline cgroups enforcing
// (BenchmarkAgentOverhead in test/e2e, enforcing-ebpf against
// enforcing-ebpf-runtime-defaults, three interleaved rounds): 33 context
// switches a second instead of 123–132, run means 0.64–0.79% of a core
// instead of 0.94–1.27%, reaction to an online burst unchanged
// (docs/bench-colo.md). Of the two, the slack is most of it; one P helps
// only once sysmon's polling is gone (perf stat -p, 10 s windows: slack
// alone 497–534 switches, slack and one P 320–332).
//
// QuietRuntime applies both: timerSlack on every thread of the process
// (threads made later inherit it from the one that makes them), and one P
// unless GOMAXPROCS is set in the environment. sluice-agent calls it first
// thing; the benchmarks that run the loop in-process call it too, so they
// measure the runtime the agent ships with, and undo it after. It reports
// the GOMAXPROCS in force; a slack error leaves the kernel's default, which
// costs only CPU.
func QuietRuntime(timerSlack time.Duration) (procs int, undo func(), slackErr error) {
	oldProcs := runtime.GOMAXPROCS(0)
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	procs = runtime.GOMAXPROCS(0)
	undo = func() { runtime.GOMAXPROCS(oldProcs) }
	if timerSlack <= 0 {
		return procs, undo, nil
	}
	// The process's own threads, whatever -proc names.
	old, err := os.ReadFile(fmt.Sprintf("/proc/%d/timerslack_ns", os.Getpid()))
	if err != nil {
		return procs, undo, fmt.Errorf("read timer slack: %w", err)
	}
	oldNS, err := strconv.ParseInt(strings.TrimSpace(string(old)), 10, 64)
	if err != nil {
		return procs, undo, fmt.Errorf("read timer slack: %w", err)
	}
	undo = func() {
		_ = setTimerSlack("/proc", os.Getpid(), time.Duration(oldNS))
		runtime.GOMAXPROCS(oldProcs)
	}
	return procs, undo, setTimerSlack("/proc", os.Getpid(), timerSlack)
}

// setTimerSlack sets the timer slack of every thread of pid, as
// /proc/<tid>/timerslack_ns (Linux 4.6+; another thread's needs
// CAP_SYS_NICE). A thread the runtime starts meanwhile inherits its
// creator's slack, which may still be the old one, so the threads are
// listed again until a pass finds none left to set (four passes at most:
// the runtime makes threads at start, not all the time).
func setTimerSlack(proc string, pid int, slack time.Duration) error {
	want := strconv.FormatInt(slack.Nanoseconds(), 10)
	for range 4 {
		tids, err := os.ReadDir(fmt.Sprintf("%s/%d/task", proc, pid))
		if err != nil {
			return fmt.Errorf("list threads: %w", err)
		}
		changed := 0
		for _, t := range tids {
			file := fmt.Sprintf("%s/%s/timerslack_ns", proc, t.Name())
			cur, err := os.ReadFile(file)
			if err != nil {
				if os.IsNotExist(err) {
					continue // the thread exited
				}
				return fmt.Errorf("thread %s: %w", t.Name(), err)
			}
			if strings.TrimSpace(string(cur)) == want {
				continue
			}
			if err := os.WriteFile(file, []byte(want), 0); err != nil {
				return fmt.Errorf("thread %s: %w", t.Name(), err)
			}
			changed++
		}
		if changed == 0 {
			break
		}
	}
	return nil
}
