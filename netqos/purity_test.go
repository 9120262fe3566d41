package netqos

import (
	"testing"

	"github.com/sluicehq/sluice/test/purity"
)

// TestPackageIsPure keeps the model importable by the decision core: no
// OS, network, kernel or clock access in the package's non-test files.
func TestPackageIsPure(t *testing.T) { purity.CheckDir(t, ".", 5) }
