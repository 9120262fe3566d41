package netqos

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPure keeps the model importable by the decision core: no OS, network,
// kernel or clock access in the package's non-test files.
func TestPure(t *testing.T) {
	bad := []string{"os", "net", "syscall", "io/fs", "io/ioutil", "path/filepath", "unsafe", "runtime", "log",
		"math/rand", "golang.org/x/sys", "github.com/vishvananda/", "github.com/cilium/ebpf", "github.com/prometheus/"}
	clock := map[string]bool{"Now": true, "Sleep": true, "Since": true, "Until": true, "After": true,
		"AfterFunc": true, "Tick": true, "NewTicker": true, "NewTimer": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for _, b := range bad {
				if p == b || strings.HasPrefix(p, strings.TrimSuffix(b, "/")+"/") {
					t.Errorf("%s imports %s", name, p)
				}
			}
		}
		for fn := range clock {
			if strings.Contains(string(src), "time."+fn+"(") {
				t.Errorf("%s calls time.%s", name, fn)
			}
		}
	}
}
