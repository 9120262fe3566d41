//go:build !linux

package kerneltest

import "os/exec"

// dieWithParent has no portable equivalent of Linux's parent-death signal;
// the t.Cleanup of StartChild still kills the child.
func dieWithParent(*exec.Cmd) {}
