package rdt

import (
	"testing"

	"github.com/sluicehq/sluice/test/purity"
)

// TestPackageIsPure: qos imports this package, so it must be as pure as
// qos (no I/O, no clock, no goroutines; the rules: test/purity).
func TestPackageIsPure(t *testing.T) { purity.CheckDir(t, ".", 5) }
