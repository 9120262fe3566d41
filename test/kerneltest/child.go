package kerneltest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// childEnv carries the workload a re-executed test binary should run
// instead of its tests.
const childEnv = "SLUICE_TEST_CHILD"

// Workloads a child can run (see ChildCommand).
const (
	// WorkloadSpin burns one CPU until killed.
	WorkloadSpin = "spin"
	// WorkloadHogPrefix followed by a number of MiB ("hog:64") allocates
	// and touches that much anonymous memory, then sleeps until killed.
	WorkloadHogPrefix = "hog:"
)

// RunChild must be the first call in the TestMain of a package whose tests
// use StartChild or ChildCommand: in a child it runs the workload and never
// returns; in the test process itself it returns at once.
//
// A child waits for a line on stdin before it does anything (so the parent
// can move it into its cgroups first and every page and CPU second it
// uses is charged there), then prints "ready" once its workload is set up.
func RunChild() {
	w, ok := os.LookupEnv(childEnv)
	if !ok {
		return
	}
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	switch {
	case w == WorkloadSpin:
		fmt.Println("ready")
		for n := uint64(0); ; n++ {
		}
	case strings.HasPrefix(w, WorkloadHogPrefix):
		mib, err := strconv.Atoi(strings.TrimPrefix(w, WorkloadHogPrefix))
		if err != nil || mib < 0 {
			fmt.Fprintf(os.Stderr, "%s=%q: want %s<MiB>\n", childEnv, w, WorkloadHogPrefix)
			os.Exit(2)
		}
		buf := make([]byte, mib<<20)
		for i := 0; i < len(buf); i += 4096 {
			buf[i] = 1
		}
		fmt.Println("ready")
		for {
			time.Sleep(time.Hour)
			buf[0]++ // keep buf alive
		}
	}
	fmt.Fprintf(os.Stderr, "%s=%q: unknown workload\n", childEnv, w)
	os.Exit(2)
}

// ChildCommand returns an unstarted command that re-executes the test
// binary as workload (WorkloadSpin or WorkloadHogPrefix+"<MiB>"), for a test
// that drives the child's start itself (one that expects it to die before
// it is ready); the child waits for a line on its stdin. It dies with the
// test process on Linux.
func ChildCommand(workload string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+workload)
	dieWithParent(cmd)
	return cmd
}

// Child is a running workload started by StartChild.
type Child struct {
	Cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Pid is the child's process id.
func (c *Child) Pid() int { return c.Cmd.Process.Pid }

// Done is closed once the child has exited and been reaped.
func (c *Child) Done() <-chan struct{} { return c.done }

// Err is the child's exit error (*exec.ExitError for a killed child); valid
// once Done is closed.
func (c *Child) Err() error {
	<-c.done
	return c.err
}

// StartChild starts a child running workload, writes its pid to the
// cgroup.procs of every dir (cgroup directories the test created), lets it
// run and waits until it reports ready. A t.Cleanup kills and reaps it;
// register its cgroups before starting it, so that this cleanup runs
// first.
func StartChild(t testing.TB, workload string, dirs ...string) *Child {
	t.Helper()
	cmd := ChildCommand(workload)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child %s: %v", workload, err)
	}
	c := &Child{Cmd: cmd, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
	})
	for _, d := range dirs {
		WriteCgroupFile(t, filepath.Join(d, "cgroup.procs"), strconv.Itoa(cmd.Process.Pid))
	}
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatalf("release child %s: %v", workload, err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("child %s did not start: %q, %v", workload, line, err)
	}
	return c
}

// StartCmd starts cmd, failing the test if it cannot, and registers a
// t.Cleanup that kills and reaps it: for a helper process that is not a
// kerneltest child (a shell loop, a re-executed test binary with its own
// role, a built binary).
func StartCmd(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", strings.Join(cmd.Args, " "), err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}

// SharedTempDir returns a new temporary directory that any user may enter
// and read (mode 0755), removed when the test ends: for binaries a test
// runs as an unprivileged user, which cannot reach into t.TempDir's
// private parent.
func SharedTempDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// CopyExecutable copies the binary from to to with mode 0755, replacing a
// file already at to (removed first, so a copy still running from an
// earlier test keeps its own).
func CopyExecutable(t testing.TB, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(to)
	if err := os.WriteFile(to, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

// WaitFor polls cond every 20 ms until it holds, failing the test with
// what it waited for once bound has passed. bound only stops a test whose
// processes cannot make progress at all: it decides nothing when cond
// holds, so make it generous.
func WaitFor(t testing.TB, what string, bound time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", bound, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
