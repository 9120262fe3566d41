// Package purity checks that a package is a pure core: no forbidden
// imports, no goroutines, no clock reads or sleeps. The pure packages'
// tests (qos, rdt) call it with their own import rules.
package purity

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

// clockCalls read the clock or wait: time must come in as data.
var clockCalls = map[string]bool{
	"Now": true, "Sleep": true, "Since": true, "Until": true, "After": true, "AfterFunc": true,
	"Tick": true, "NewTicker": true, "NewTimer": true,
}

// Impurities lists why one Go source file is not pure: each import for
// which forbidden says true, each go statement, each clock call (also
// through a renamed time import).
func Impurities(fset *token.FileSet, f *ast.File, forbidden func(importPath string) bool) []string {
	var out []string
	timeName := ""
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if forbidden(p) {
			out = append(out, "imports "+p)
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
			if id, ok := n.X.(*ast.Ident); ok && timeName != "" && id.Name == timeName && clockCalls[n.Sel.Name] {
				out = append(out, fset.Position(n.Pos()).String()+": uses time."+n.Sel.Name)
			}
		}
		return true
	})
	return out
}

// CheckPackage parses every non-test Go file in dir and reports each
// impurity as a test error. Fewer than minFiles files is a failure: the
// test is probably not running in the package directory.
func CheckPackage(t testing.TB, dir string, minFiles int, forbidden func(string) bool) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
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
		for _, p := range Impurities(fset, f, forbidden) {
			t.Errorf("%s: %s", name, p)
		}
	}
	if checked < minFiles {
		t.Fatalf("checked only %d files; is the test running in the package directory?", checked)
	}
}
