package cgroup

import (
	"fmt"

	"github.com/containerd/cgroups/v3"
)

// DetectMode reports which enforcer the host needs: v2 on a unified
// hierarchy, v1 on legacy and hybrid hosts (where the resource controllers
// live in v1 and the unified mount has none).
func DetectMode() (Mode, error) {
	switch cgroups.Mode() {
	case cgroups.Unified:
		return ModeV2, nil
	case cgroups.Legacy, cgroups.Hybrid:
		return ModeV1, nil
	}
	return "", fmt.Errorf("cgroup mode: no cgroup filesystem mounted at /sys/fs/cgroup")
}
