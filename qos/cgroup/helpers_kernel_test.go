package cgroup_test

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

	"github.com/sluicehq/sluice/test/kerneltest"
)

// helperEnv makes the test binary a helper process instead of running
// tests: "spin" burns CPU, "hog:<MiB>" allocates and touches memory. Both
// wait for a line on stdin first (so the parent can move them into their
// cgroups before they run or charge memory), then print "ready".
const helperEnv = "SLUICE_CGROUP_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		runHelper(mode)
		return
	}
	os.Exit(m.Run())
}

func runHelper(mode string) {
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	switch {
	case mode == "spin":
		fmt.Println("ready")
		for x := 0; ; x++ {
			_ = x
		}
	case strings.HasPrefix(mode, "hog:"):
		mib, _ := strconv.Atoi(strings.TrimPrefix(mode, "hog:"))
		buf := make([]byte, mib<<20)
		for i := 0; i < len(buf); i += 4096 {
			buf[i] = 1
		}
		fmt.Println("ready")
		for {
			time.Sleep(time.Hour)
			buf[0]++
		}
	}
	os.Exit(2)
}

// helper is a running helper process.
type helper struct {
	cmd  *exec.Cmd
	done chan error
}

func (h *helper) pid() int { return h.cmd.Process.Pid }

// startHelper starts a helper, puts it into cgroup dirs (absolute host
// paths of cgroups the test created) and lets it run.
func startHelper(t *testing.T, mode string, dirs ...string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, done: make(chan error, 1)}
	go func() { h.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-h.done
	})
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
			t.Fatalf("move helper into %s: %v", d, err)
		}
	}
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("helper %s did not start: %q, %v", mode, line, err)
	}
	return h
}

// cpuStatField reads one field of a v1 or v2 cpu.stat.
func cpuStatField(t *testing.T, p, field string) int64 {
	t.Helper()
	for _, line := range strings.Split(kerneltest.ReadCgroupFile(t, p), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == field {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("%s: no %s", p, field)
	return 0
}
