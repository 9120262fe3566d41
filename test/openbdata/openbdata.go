// Package openbdata finds the openb cluster trace (Alibaba's GPU cluster
// node and pod lists) for the tests that replay it. The trace is not in
// the repository: it ships beside the checkout, in ../shared/data/openb,
// or wherever SLUICE_OPENB_DATA names.
package openbdata

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/test/kerneltest"
)

// Feature is the name SLUICE_REQUIRE uses to declare the trace present: a
// test that cannot find it then fails instead of skipping.
const Feature = "openb"

// probe is a file every copy of the trace has.
const probe = "openb_node_list_gpu_node.csv"

// Dir returns the directory holding the openb CSV files: SLUICE_OPENB_DATA
// when set, else data/openb in the shared directory beside the checkout
// (the repository root's ../shared). When neither holds the trace, t is
// skipped with the reason, or failed when SLUICE_REQUIRE declares openb.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := find()
	if err != nil {
		kerneltest.Missing(t, Feature, "%v", err)
	}
	return dir
}

func find() (string, error) {
	dir := os.Getenv("SLUICE_OPENB_DATA")
	from := "SLUICE_OPENB_DATA"
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", fmt.Errorf("openb trace: %w", err)
		}
		root, err := repoRoot(wd)
		if err != nil {
			return "", fmt.Errorf("openb trace: %w (set SLUICE_OPENB_DATA)", err)
		}
		dir = filepath.Join(root, "..", "shared", "data", "openb")
		from = "beside the checkout"
	}
	if _, err := os.Stat(filepath.Join(dir, probe)); err != nil {
		return "", fmt.Errorf("openb trace not in %s (%s; set SLUICE_OPENB_DATA to the directory with %s): %w", dir, from, probe, err)
	}
	return dir, nil
}

// repoRoot is the nearest directory at or above dir holding go.mod (go
// test runs each test in its package's directory).
func repoRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("no go.mod at or above " + dir)
		}
	}
}
