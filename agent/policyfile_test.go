package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/qos"
)

// A policy path that names an endless device or a huge file is refused
// with the limit named, after reading no more than the limit.
func TestLoadPolicyFileBoundsWhatItReads(t *testing.T) {
	if _, err := LoadPolicyFile("/dev/zero"); err == nil || !strings.Contains(err.Error(), "the policy file limit") {
		t.Errorf("/dev/zero: %v, want the policy file limit named", err)
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, append(qos.DefaultPolicyYAML, make([]byte, MaxPolicyFileBytes)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPolicyFile(big); err == nil || !strings.Contains(err.Error(), "the policy file limit") {
		t.Errorf("a file past the limit: %v", err)
	}
	ok := filepath.Join(t.TempDir(), "ok.yaml")
	if err := os.WriteFile(ok, qos.DefaultPolicyYAML, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPolicyFile(ok); err != nil {
		t.Errorf("the default policy: %v", err)
	}
	if _, err := LoadPolicyFile(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v, want not exist", err)
	}
}
