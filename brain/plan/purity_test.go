package plan

import (
	"testing"

	"github.com/sluicehq/sluice/test/purity"
)

// TestPackageIsPure holds the planner to the placement core's rules: no
// I/O, no clock, no goroutines, randomness only from the given seed.
func TestPackageIsPure(t *testing.T) { purity.CheckDir(t, ".", 7) }
