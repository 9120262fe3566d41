package purity

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// forbiddenImports are the I/O, OS, kernel and logging packages a pure core
// must not import directly (fmt's own use of os is out of its hands). Each
// path also forbids the packages below it ("os" forbids "os/exec").
func forbiddenImports() []string {
	return []string{
		"os", "net", "syscall", "io/fs", "io/ioutil", "path/filepath", "unsafe", "runtime", "log",
		"golang.org/x/sys", "github.com/containerd", "github.com/vishvananda", "github.com/cilium/ebpf",
		"github.com/prometheus", "github.com/fsnotify", "go.etcd.io",
	}
}

// clockCalls read the clock or wait: time must come in as a parameter.
func clockCalls() map[string]bool {
	return map[string]bool{
		"Now": true, "Sleep": true, "Since": true, "Until": true, "After": true, "AfterFunc": true,
		"Tick": true, "NewTicker": true, "NewTimer": true,
	}
}

// seededRand is what a pure core may use of math/rand and math/rand/v2:
// the types and the constructors of a generator from an explicit seed.
// Everything else at package level draws from the global, unseeded source.
func seededRand() map[string]bool {
	return map[string]bool{
		"Rand": true, "Source": true, "New": true, "NewSource": true, "NewPCG": true, "PCG": true,
		"NewChaCha8": true, "ChaCha8": true, "NewZipf": true, "Zipf": true,
	}
}

// stdoutCalls print to the process's standard output.
func stdoutCalls() map[string]bool {
	return map[string]bool{"Print": true, "Printf": true, "Println": true}
}

// Problems lists why one parsed Go file is not pure, each as
// "file:line:col: what it does".
func Problems(fset *token.FileSet, f *ast.File) []string {
	var out []string
	// local names of the packages whose calls are checked
	names := map[string]string{}
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		for _, bad := range forbiddenImports() {
			if p == bad || strings.HasPrefix(p, bad+"/") {
				out = append(out, fmt.Sprintf("%s: imports %s", fset.Position(imp.Pos()), p))
			}
		}
		switch p {
		case "time", "math/rand", "math/rand/v2", "fmt":
			name := p[strings.LastIndex(p, "/")+1:]
			if p == "math/rand/v2" {
				name = "rand"
			}
			if imp.Name != nil {
				name = imp.Name.Name
			}
			names[name] = p
		}
	}
	clock, seeded, stdout := clockCalls(), seededRand(), stdoutCalls()
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			out = append(out, fmt.Sprintf("%s: starts a goroutine", fset.Position(n.Pos())))
		case *ast.SelectorExpr:
			id, ok := n.X.(*ast.Ident)
			if !ok || id.Obj != nil { // a local variable, not a package
				return true
			}
			switch sel := n.Sel.Name; names[id.Name] {
			case "time":
				if clock[sel] {
					out = append(out, fmt.Sprintf("%s: uses time.%s", fset.Position(n.Pos()), sel))
				}
			case "math/rand", "math/rand/v2":
				if !seeded[sel] {
					out = append(out, fmt.Sprintf("%s: uses unseeded %s.%s", fset.Position(n.Pos()), names[id.Name], sel))
				}
			case "fmt":
				if stdout[sel] {
					out = append(out, fmt.Sprintf("%s: prints to stdout with fmt.%s", fset.Position(n.Pos()), sel))
				}
			}
		}
		return true
	})
	return out
}

// Dir checks every non-test Go file in dir and returns the problems found
// and how many files it checked.
func Dir(dir string) (problems []string, files int, err error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, 0, fmt.Errorf("purity %s: %w", dir, err)
	}
	fset := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			return nil, 0, fmt.Errorf("purity: %w", err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			return nil, 0, fmt.Errorf("purity: %w", err)
		}
		files++
		problems = append(problems, Problems(fset, f)...)
	}
	return problems, files, nil
}

// CheckDir fails t once for each problem in dir's non-test Go files, and
// when fewer than minFiles were checked (a test run from another directory
// would otherwise pass by checking nothing).
func CheckDir(t testing.TB, dir string, minFiles int) {
	t.Helper()
	problems, files, err := Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("not pure: %s", p)
	}
	if files < minFiles {
		t.Fatalf("checked only %d files in %s, want at least %d; is the test running in the package directory?", files, dir, minFiles)
	}
}
