package qos

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// forbiddenImports are the I/O, OS and kernel packages the decision core
// must not import (directly; fmt's own use of os is out of our hands).
// Prefixes match sub-packages too.
var forbiddenImportPrefixes = []string{
	"os", "net", "syscall", "io/fs", "io/ioutil", "path/filepath", "unsafe", "runtime", "log", "math/rand",
	"golang.org/x/sys", "github.com/containerd/", "github.com/vishvananda/", "github.com/cilium/ebpf",
	"github.com/prometheus/", "github.com/fsnotify/",
}

// forbiddenTimeCalls read the clock or wait: time must come in the Observation.
var forbiddenTimeCalls = map[string]bool{
	"Now": true, "Sleep": true, "Since": true, "Until": true, "After": true, "AfterFunc": true,
	"Tick": true, "NewTicker": true, "NewTimer": true,
}

// impurities lists why one Go source file is not pure.
func impurities(fset *token.FileSet, f *ast.File) []string {
	var out []string
	timeName := ""
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		for _, bad := range forbiddenImportPrefixes {
			if p == bad || strings.HasPrefix(p, strings.TrimSuffix(bad, "/")+"/") {
				out = append(out, "imports "+p)
			}
		}
		if p == "time" {
			timeName = "time"
			if imp.Name != nil {
				timeName = imp.Name.Name
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			out = append(out, fset.Position(n.Pos()).String()+": starts a goroutine")
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok && timeName != "" && id.Name == timeName && forbiddenTimeCalls[n.Sel.Name] {
				out = append(out, fset.Position(n.Pos()).String()+": uses time."+n.Sel.Name)
			}
		}
		return true
	})
	return out
}

// TestPackageIsPure parses every non-test file of the package: the decision
// core must not do I/O, read the clock, sleep, log or start goroutines.
func TestPackageIsPure(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, p := range impurities(fset, f) {
			t.Errorf("%s: %s", name, p)
		}
	}
	if checked < 5 {
		t.Fatalf("checked only %d files; is the test running in the package directory?", checked)
	}
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
