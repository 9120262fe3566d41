//go:build !linux

package cgroup

import "os"

func readKernelFile(path string) ([]byte, error) { return os.ReadFile(path) }

func noSubdirs(string) bool { return false }
