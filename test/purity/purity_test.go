package purity

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The checker must flag each kind of impurity in a file that has them all,
// flag nothing in a file that only looks like them (a seeded generator, a
// local variable named time, fmt into a builder), and skip test files.
func TestDirFindsEachImpurityAndNothingElse(t *testing.T) {
	problems, files, err := Dir("testdata/mixed")
	if err != nil {
		t.Fatal(err)
	}
	if files != 2 {
		t.Errorf("checked %d files, want 2 (impure.go, pure.go; not the _test.go file)", files)
	}
	want := []string{
		"testdata/mixed/impure.go:5:2: imports github.com/cilium/ebpf",
		"testdata/mixed/impure.go:6:2: imports github.com/containerd/cgroups/v3",
		"testdata/mixed/impure.go:7:2: imports github.com/vishvananda/netlink",
		"testdata/mixed/impure.go:8:2: imports golang.org/x/sys/unix",
		"testdata/mixed/impure.go:9:2: imports log/slog",
		"testdata/mixed/impure.go:11:2: imports net/http",
		"testdata/mixed/impure.go:12:2: imports os",
		"testdata/mixed/impure.go:17:2: starts a goroutine",
		"testdata/mixed/impure.go:18:6: uses time.Now",
		"testdata/mixed/impure.go:19:2: uses time.Sleep",
		"testdata/mixed/impure.go:21:6: uses unseeded math/rand/v2.IntN",
		"testdata/mixed/impure.go:22:2: prints to stdout with fmt.Println",
	}
	if !slices.Equal(problems, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(problems, "\n"), strings.Join(want, "\n"))
	}
}

func TestDirReportsUnparsableSource(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "broken.go"), []byte("package broken\n\nfunc {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Dir(dir); err == nil || !strings.Contains(err.Error(), "broken.go:3") {
		t.Errorf("Dir on a file that does not parse: err %v, want one naming broken.go:3", err)
	}
}
