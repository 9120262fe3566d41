package cgroup_test

import (
	"os"
	"testing"

	"github.com/sluicehq/sluice/test/kerneltest"
)

// TestMain lets the test binary run as a kerneltest child (a spinner or a
// memory hog the real-kernel tests put into their cgroups).
func TestMain(m *testing.M) {
	kerneltest.RunChild()
	os.Exit(m.Run())
}
