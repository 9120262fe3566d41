package qos

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/purity"
)

// forbiddenImports are the I/O, OS and kernel packages the decision core
// must not import (directly; fmt's own use of os is out of our hands).
// Prefixes match sub-packages too.
var forbiddenImportPrefixes = []string{
	"os", "net", "syscall", "io/fs", "io/ioutil", "path/filepath", "unsafe", "runtime", "log", "math/rand",
	"golang.org/x/sys", "github.com/containerd/", "github.com/vishvananda/", "github.com/cilium/ebpf",
	"github.com/prometheus/", "github.com/fsnotify/",
}

// forbidden says whether the decision core may not import p.
func forbidden(p string) bool {
	for _, bad := range forbiddenImportPrefixes {
		if p == bad || strings.HasPrefix(p, strings.TrimSuffix(bad, "/")+"/") {
			return true
		}
	}
	return false
}

// impurities lists why one Go source file is not pure.
func impurities(fset *token.FileSet, f *ast.File) []string {
	return purity.Impurities(fset, f, forbidden)
}

// TestPackageIsPure parses every non-test file of the package: the decision
// core must not do I/O, read the clock, sleep, log or start goroutines.
func TestPackageIsPure(t *testing.T) {
	purity.CheckPackage(t, ".", 5, forbidden)
}

// TestPurityCheckCatchesImpurity keeps the checker honest: it must flag
// each kind of impurity in a sample that has them all.
func TestPurityCheckCatchesImpurity(t *testing.T) {
	src := `package qos
import (
	"os"
	clock "time"
	"log/slog"
	"golang.org/x/sys/unix"
	"github.com/containerd/cgroups/v3"
	"github.com/vishvananda/netlink"
	"github.com/cilium/ebpf"
	"net/http"
)
func f() {
	go func() {}()
	_ = clock.Now()
	clock.Sleep(1)
	_ = os.Args
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "bad.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(impurities(fset, f), "\n")
	for _, want := range []string{"imports os", "imports log/slog", "imports golang.org/x/sys/unix",
		"imports github.com/containerd/cgroups/v3", "imports github.com/vishvananda/netlink",
		"imports github.com/cilium/ebpf", "imports net/http", "starts a goroutine", "uses time.Now", "uses time.Sleep"} {
		if !strings.Contains(got, want) {
			t.Errorf("checker missed %q; it reported:\n%s", want, got)
		}
	}
	clean := `package qos
import ("time"; "fmt"; "gopkg.in/yaml.v3"; "embed")
var _ = time.Duration(0)
func g(t time.Time) time.Time { return t.Add(time.Second) }
`
	if f, err = parser.ParseFile(fset, "good.go", clean, 0); err != nil {
		t.Fatal(err)
	}
	if got := impurities(fset, f); len(got) != 0 {
		t.Errorf("checker flags pure code: %v", got)
	}
}
