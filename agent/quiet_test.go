package agent

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sluicehq/sluice/test/kerneltest"
)

// threadSlacks reads the timer slack of every thread of this process.
func threadSlacks(t *testing.T) map[string]string {
	t.Helper()
	tids, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, tid := range tids {
		b, err := os.ReadFile("/proc/" + tid.Name() + "/timerslack_ns")
		if err != nil {
			continue // exited meanwhile
		}
		got[tid.Name()] = strings.TrimSpace(string(b))
	}
	return got
}

// Every thread of the process gets the slack, threads the runtime makes
// afterwards inherit it, and undo puts the old one back.
func TestRealSetTimerSlackReachesEveryThread(t *testing.T) {
	kerneltest.RequireRoot(t)
	orig, err := os.ReadFile("/proc/self/timerslack_ns")
	if err != nil {
		t.Skipf("no timerslack_ns (Linux 4.6+): %v", err)
	}
	const slack = 3 * time.Millisecond
	want := strconv.FormatInt(slack.Nanoseconds(), 10)
	if strings.TrimSpace(string(orig)) == want {
		t.Fatalf("the process already has %s ns of slack: the test could not tell", want)
	}
	oldProcs := runtime.GOMAXPROCS(0)
	procs, undo, err := QuietRuntime(slack)
	t.Cleanup(undo)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("GOMAXPROCS") == "" && procs != 1 {
		t.Errorf("GOMAXPROCS %d, want 1 when the environment does not set it", procs)
	}
	for tid, got := range threadSlacks(t) {
		if got != want {
			t.Errorf("thread %s: timerslack_ns %s, want %s", tid, got, want)
		}
	}

	// Goroutines that lock their threads and block force the runtime to
	// make new ones; each reads its own slack.
	before := len(threadSlacks(t))
	const n = 4
	var wg sync.WaitGroup
	release := make(chan struct{})
	slacks := make(chan string, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			b, err := os.ReadFile("/proc/" + strconv.Itoa(unix.Gettid()) + "/timerslack_ns")
			if err != nil {
				slacks <- err.Error()
			} else {
				slacks <- strings.TrimSpace(string(b))
			}
			<-release // keep the thread busy so the next goroutine needs another
		}()
	}
	for range n {
		if got := <-slacks; got != want {
			t.Errorf("a thread made after the call: timerslack_ns %s, want %s", got, want)
		}
	}
	after := len(threadSlacks(t))
	close(release)
	wg.Wait()
	if after <= before {
		t.Fatalf("threads %d before, %d after: no new thread was made, nothing was shown", before, after)
	}

	undo()
	if got := runtime.GOMAXPROCS(0); got != oldProcs {
		t.Errorf("after undo, GOMAXPROCS %d, want %d", got, oldProcs)
	}
	for tid, got := range threadSlacks(t) {
		if got != strings.TrimSpace(string(orig)) {
			t.Errorf("after undo, thread %s: timerslack_ns %s, want %s", tid, got, strings.TrimSpace(string(orig)))
		}
	}
}

func TestSetTimerSlackNamesMissingProcess(t *testing.T) {
	err := setTimerSlack(t.TempDir(), 1, time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "list threads") {
		t.Fatalf("err = %v, want one naming the thread list", err)
	}
}
