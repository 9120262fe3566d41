//go:build !linux

package cgroup

import "errors"

// DetectMode fails: cgroups are Linux-only.
func DetectMode() (Mode, error) {
	return "", errors.New("cgroup mode: cgroups need Linux")
}
