package agent

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// startWatch runs a policyWatch on path until the test ends.
func startWatch(t *testing.T, path string) (*policyWatch, <-chan struct{}) {
	t.Helper()
	w, err := newPolicyWatch(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- w.run(ctx, changed) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watch ended with %v", err)
		}
	})
	return w, changed
}

// waitChange fails the test unless the watch signals a change. The
// deadline only turns a hang into a failure; nothing is timed.
func waitChange(t *testing.T, changed <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-changed:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: the watch never signalled a change", what)
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPolicyWatchIgnoresBusyNeighbours(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	busy := filepath.Join(dir, "busy.log")
	write(t, path, "a")
	write(t, busy, "")
	w, changed := startWatch(t, path)

	// A log written through a held descriptor and one rewritten whole, over
	// and over: neither raises an event the watch asked for.
	f, err := os.OpenFile(busy, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := range 500 {
		if _, err := f.WriteString("line\n"); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, "state.json"), string(rune('a'+i%26)))
	}
	// state.json was created once above: that create is the one event the
	// directory watch had to deliver, and it named another file.
	write(t, path, "b") // in place: the file watch's IN_CLOSE_WRITE
	waitChange(t, changed, "in-place write after the busy writes")
	// inotify queues events in order, so both are in by now.
	if got := w.wakeups.Load(); got != 2 {
		t.Errorf("the watch read %d events for 1,000 writes beside the policy and one to it; want 2 (state.json's create, the policy's write)", got)
	}
	select {
	case <-changed:
		t.Error("a second change was signalled for one write to the policy")
	default:
	}
}

func TestPolicyWatchSeesEveryWayAPolicyIsReplaced(t *testing.T) {
	t.Run("in place, then write-then-rename, then in place again", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "policy.yaml")
		write(t, path, "a")
		_, changed := startWatch(t, path)
		write(t, path, "b")
		waitChange(t, changed, "in-place write")
		tmp := filepath.Join(dir, ".policy.yaml.swp")
		write(t, tmp, "c")
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		waitChange(t, changed, "editor's rename")
		// The path now names a new inode; its in-place writes count too.
		write(t, path, "d")
		waitChange(t, changed, "in-place write to the renamed-in file")
	})
	t.Run("created where there was none", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "policy.yaml")
		_, changed := startWatch(t, path)
		write(t, path, "a")
		waitChange(t, changed, "create")
	})
	t.Run("ConfigMap ..data swap", func(t *testing.T) {
		// kubelet's layout: policy.yaml -> ..data/policy.yaml, ..data -> a
		// timestamped directory; an update writes a new timestamped
		// directory, points ..data_tmp at it and renames it over ..data.
		dir := t.TempDir()
		mkRev := func(name, text string) {
			if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(dir, name, "policy.yaml"), text)
		}
		mkRev("..2026_12_03_07_00_00.1", "a")
		for _, l := range [][2]string{{"..2026_12_03_07_00_00.1", "..data"}, {"..data/policy.yaml", "policy.yaml"}} {
			if err := os.Symlink(l[0], filepath.Join(dir, l[1])); err != nil {
				t.Fatal(err)
			}
		}
		path := filepath.Join(dir, "policy.yaml")
		_, changed := startWatch(t, path)
		swap := func(rev, text string) {
			mkRev(rev, text)
			if err := os.Symlink(rev, filepath.Join(dir, "..data_tmp")); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
				t.Fatal(err)
			}
		}
		swap("..2026_12_03_07_00_00.2", "b")
		waitChange(t, changed, "first ..data swap")
		if err := os.RemoveAll(filepath.Join(dir, "..2026_12_03_07_00_00.1")); err != nil {
			t.Fatal(err)
		}
		swap("..2026_12_03_07_00_00.3", "c")
		waitChange(t, changed, "second ..data swap")
	})
}
