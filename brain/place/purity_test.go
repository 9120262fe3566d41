package place

import (
	"testing"

	"github.com/sluicehq/sluice/test/purity"
)

// TestPackageIsPure holds the placement core to the decision core's rules:
// no I/O, no clock, no goroutines, randomness only from the request's seed
// (the rules and their own test: test/purity).
func TestPackageIsPure(t *testing.T) { purity.CheckDir(t, ".", 5) }
