package classify

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sluicehq/sluice/netqos"
	"github.com/sluicehq/sluice/test/kerneltest"
)

// bpffs mounts a bpf file system instance of the test's own (each mount
// is a new instance) and returns a directory on it.
func bpffs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		kerneltest.Missing(t, kerneltest.FeatureBPF, "mount bpffs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return filepath.Join(dir, "netqos")
}

// TestPinnedClassificationOutlivesTheAgent: with a pin directory, a closed
// classifier (an agent that stopped) leaves classification running, and
// the next one adopts the attachment and the tier map without a moment
// unclassified; Remove turns it off.
func TestPinnedClassificationOutlivesTheAgent(t *testing.T) {
	tp := newTopo(t)
	pin := bpffs(t)
	if err := tp.c.Close(); err != nil { // the unpinned one from newTopo
		t.Fatal(err)
	}
	bronze := filepath.Join(tp.cg, "bronze")
	c1, err := Load(Config{PinDir: pin})
	if err != nil {
		t.Fatal(err)
	}
	if err := c1.SetTier(bronze, netqos.Bronze); err != nil {
		t.Fatal(err)
	}
	if err := c1.AttachSockets(tp.cg); err != nil {
		t.Fatal(err)
	}
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	if got := tp.landed(t, bronze, tp.host, 1024); got != netqos.Bronze {
		t.Fatalf("with the agent gone, bronze landed in %s", got)
	}
	c2, err := Load(Config{PinDir: pin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c2.Remove() })
	if err := c2.AttachSockets(tp.cg); err != nil {
		t.Fatal(err)
	}
	// No SetTier: the pinned tier map carried over.
	if got := tp.landed(t, bronze, tp.host, 1024); got != netqos.Bronze {
		t.Fatalf("after adoption, bronze landed in %s", got)
	}
	if err := c2.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := tp.landed(t, bronze, tp.host, 1024); got != netqos.Gold {
		t.Errorf("after Remove, bronze landed in %s, want gold (unclassified)", got)
	}
}
