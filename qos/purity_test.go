package qos

import (
	"testing"

	"github.com/sluicehq/sluice/test/purity"
)

// TestPackageIsPure parses every non-test file of the package: the decision
// core must not do I/O, read the clock, sleep, log, draw unseeded random
// numbers or start goroutines (the rules and their own test: test/purity).
func TestPackageIsPure(t *testing.T) { purity.CheckDir(t, ".", 5) }
