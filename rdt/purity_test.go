package rdt

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// allowedImports is everything the pure model may import: qos imports
// this package, so it must stay as pure as qos (no I/O, no clock, no
// kernel packages). An allow-list, so a new import is a decision.
var allowedImports = map[string]bool{
	"errors": true, "fmt": true, "math": true, "math/bits": true, "slices": true, "maps": true,
	"sort": true, "strconv": true, "strings": true, "time": true, "cmp": true,
}

var clockCalls = map[string]bool{"Now": true, "Sleep": true, "Since": true, "Until": true, "After": true,
	"AfterFunc": true, "Tick": true, "NewTicker": true, "NewTimer": true}

func impurities(fset *token.FileSet, f *ast.File) []string {
	var out []string
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if !allowedImports[p] {
			out = append(out, "imports "+p)
		}
		if imp.Name != nil && p == "time" {
			out = append(out, "renames time")
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			out = append(out, fset.Position(n.Pos()).String()+": starts a goroutine")
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok && id.Name == "time" && clockCalls[n.Sel.Name] {
				out = append(out, fset.Position(n.Pos()).String()+": uses time."+n.Sel.Name)
			}
		}
		return true
	})
	return out
}

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
		f, err := parser.ParseFile(fset, name, nil, 0)
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

func TestPurityCheckCatchesImpurity(t *testing.T) {
	src := `package rdt
import ("os"; "io/fs"; "syscall"; "time"; "log/slog")
func f() { go func() {}(); _ = time.Now(); time.Sleep(1); _ = os.Args }
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "bad.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(impurities(fset, f), "\n")
	for _, want := range []string{"imports os", "imports io/fs", "imports syscall", "imports log/slog",
		"starts a goroutine", "uses time.Now", "uses time.Sleep"} {
		if !strings.Contains(got, want) {
			t.Errorf("checker missed %q; it reported:\n%s", want, got)
		}
	}
}
