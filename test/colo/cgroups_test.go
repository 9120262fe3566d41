package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTreeWriteReadsBack: every write is read back, failures are joined
// and do not stop the writes after them, and clearing cpu.idle on a kernel
// without it (before 5.15) is not an error.
func TestTreeWriteReadsBack(t *testing.T) {
	root := t.TempDir()
	tr := tree{root: root, base: "/b"}
	dir := filepath.Join(root, "cpu", "/b/offline")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cpu.shares"), []byte("1024"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := tr.write([]cgWrite{
		{"cpu", tr.offline(), "cpu.idle", "0"},                 // absent: skipped
		{"cpu", tr.offline(), "cpu.idle", "1"},                 // absent and wanted: error
		{"memory", tr.offline(), "memory.limit_in_bytes", "1"}, // no such hierarchy: error
		{"cpu", tr.offline(), "cpu.shares", "2"},               // a plain file: written after the failures
	})
	if err == nil || strings.Count(err.Error(), "\n") != 1 || !strings.Contains(err.Error(), "cpu.idle = 1") || !strings.Contains(err.Error(), "memory.limit_in_bytes = 1") {
		t.Fatalf("err = %v; want the two failed writes joined", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "cpu.shares")); string(b) != "2" {
		t.Fatalf("cpu.shares = %q after failures before it; want 2", b)
	}
}
