package rdt

import (
	"go/parser"
	"go/token"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/purity"
)

// allowedImports is everything the pure model may import: qos imports
// this package, so it must stay as pure as qos (no I/O, no clock, no
// kernel packages). An allow-list, so a new import is a decision.
var allowedImports = map[string]bool{
	"errors": true, "fmt": true, "math": true, "math/bits": true, "slices": true, "maps": true,
	"sort": true, "strconv": true, "strings": true, "time": true, "cmp": true,
}

func forbidden(p string) bool { return !allowedImports[p] }

func TestPackageIsPure(t *testing.T) {
	purity.CheckPackage(t, ".", 5, forbidden)
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
	got := strings.Join(purity.Impurities(fset, f, forbidden), "\n")
	for _, want := range []string{"imports os", "imports io/fs", "imports syscall", "imports log/slog",
		"starts a goroutine", "uses time.Now", "uses time.Sleep"} {
		if !strings.Contains(got, want) {
			t.Errorf("checker missed %q; it reported:\n%s", want, got)
		}
	}
}
