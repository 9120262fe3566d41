package openbdata

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A checkout with the trace beside it is found without the variable; the
// variable wins when set; a directory without the trace is an error that
// names it.
func TestFind(t *testing.T) {
	top := t.TempDir()
	pkg := filepath.Join(top, "repo", "brain", "sim")
	data := filepath.Join(top, "shared", "data", "openb")
	for _, d := range []string{pkg, data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(top, "repo", "go.mod"), filepath.Join(data, probe)} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(pkg)

	t.Setenv("SLUICE_OPENB_DATA", "")
	if got, err := find(); err != nil || got != filepath.Join(top, "repo", "..", "shared", "data", "openb") {
		t.Errorf("beside the checkout: find() = %q, %v", got, err)
	}
	t.Setenv("SLUICE_OPENB_DATA", pkg)
	if _, err := find(); err == nil || !strings.Contains(err.Error(), pkg) || !strings.Contains(err.Error(), "SLUICE_OPENB_DATA") {
		t.Errorf("variable pointing at a directory without the trace: err %v, want one naming %s and the variable", err, pkg)
	}
	t.Setenv("SLUICE_OPENB_DATA", data)
	if got, err := find(); err != nil || got != data {
		t.Errorf("variable: find() = %q, %v, want %q", got, err, data)
	}
	if err := os.Remove(filepath.Join(data, probe)); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SLUICE_OPENB_DATA", "")
	if _, err := find(); err == nil || !strings.Contains(err.Error(), "beside the checkout") {
		t.Errorf("no trace beside the checkout: err %v", err)
	}
}
