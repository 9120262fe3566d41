//go:build !linux

package killer

import (
	"errors"
	"syscall"
)

func signal(int, syscall.Signal) error { return errors.New("signalling needs Linux") }
