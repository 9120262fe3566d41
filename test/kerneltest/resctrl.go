package kerneltest

import (
	"errors"
	"testing"

	"github.com/sluicehq/sluice/rdt/resctrl"
)

// FeatureResctrl is the SLUICE_REQUIRE name of a host with RDT and resctrl.
const FeatureResctrl = "resctrl"

// ResctrlRoot is where resctrl is mounted on the hosts Sluice targets.
const ResctrlRoot = "/sys/fs/resctrl"

// RequireResctrl needs root and a resctrl mount (mounting it when the
// kernel has it), and returns the mount point.
func RequireResctrl(t testing.TB) string {
	t.Helper()
	RequireRoot(t)
	if err := resctrl.Mount(ResctrlRoot, "/proc"); err != nil {
		if errors.Is(err, resctrl.ErrNotSupported) {
			Missing(t, FeatureResctrl, "%v", err)
		}
		t.Fatal(err)
	}
	return ResctrlRoot
}
