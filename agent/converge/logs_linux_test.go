package converge_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/agent/converge"
	"github.com/sluicehq/sluice/qos"
)

// A launched container's output is kept by containerd's shim in the log
// directory, rotated to a bounded size, readable by tail, and removed
// with the container.
func TestContainerdConvergeKeepsRotatedLogs(t *testing.T) {
	f := setup(t)
	dir := t.TempDir()
	const max = 4096
	c := f.converger(t, func(c *converge.Config) { c.LogDir, c.LogMaxBytes = dir, max })
	// 2000 numbered lines (about 20 KB) on stdout, then one on stderr,
	// then it idles.
	chatty := f.spec("chatty-0", qos.ClassOffline, converge.RestartAlways, "sh", "-c",
		`i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done; echo to-stderr >&2; exec sleep 3600`)
	applyUntilSettled(t, c, []converge.Spec{chatty})
	waitFor(t, "chatty's output written", func() bool {
		out, _, err := c.Logs("chatty-0", 1<<20)
		return err == nil && bytes.Contains(out, []byte("to-stderr\n")) && bytes.Contains(out, []byte("line-1999\n"))
	})
	// (The shim copies stdout and stderr apart: their lines interleave in
	// no promised order.)

	// A pass rotates whatever is past the bound: the live log is then
	// within it, the rotated one holds the rest of what was written.
	c.Apply(nctx(), []converge.Spec{chatty})
	live, err := os.ReadFile(filepath.Join(dir, "chatty-0.log"))
	if err != nil || len(live) > max {
		t.Fatalf("live log after a pass: %d bytes, %v; want at most %d", len(live), err, max)
	}
	old, err := os.ReadFile(filepath.Join(dir, "chatty-0.log.1"))
	if err != nil {
		t.Fatalf("no rotated log: %v", err)
	}
	all := append(old, live...)
	if !bytes.Contains(all, []byte("line-1999\n")) || !bytes.Contains(all, []byte("to-stderr\n")) {
		t.Fatalf("the last output is in neither log; tail:\n%s", lastLines(all, 3))
	}
	// Reading spans both files; a small read is the tail, flagged.
	tail, more, err := c.Logs("chatty-0", 20)
	if err != nil || !bytes.Equal(tail, all[len(all)-20:]) || !more {
		t.Fatalf("tail of 20 bytes: %q more=%v err=%v, want %q", tail, more, err, all[len(all)-20:])
	}
	whole, more, err := c.Logs("chatty-0", int64(len(all)))
	if err != nil || !bytes.Equal(whole, all) || more {
		t.Fatalf("reading both logs whole: %d bytes, more=%v, err=%v; want %d", len(whole), more, err, len(all))
	}

	for _, bad := range []string{"../etc/passwd", "a/b", "", ".hidden", "nobody-0"} {
		if _, _, err := c.Logs(bad, 100); !errors.Is(err, converge.ErrNoLog) {
			t.Errorf("Logs(%q): %v, want ErrNoLog", bad, err)
		}
	}

	// Dropped from the target: stopped, and its logs go with it.
	applyUntilSettled(t, c, nil)
	if _, err := os.Stat(filepath.Join(dir, "chatty-0.log.1")); !os.IsNotExist(err) {
		t.Errorf("rotated log of a removed container: %v", err)
	}
	if _, _, err := c.Logs("chatty-0", 100); !errors.Is(err, converge.ErrNoLog) {
		t.Errorf("logs of a removed container: %v", err)
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
