package kerneltest

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// InNetns runs f on an OS thread switched into the network namespace ns,
// then switches the thread back. Sockets f opens stay in ns. If the thread
// cannot be switched back it panics rather than run other goroutines in
// the wrong namespace.
func InNetns(ns netns.NsHandle, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		return fmt.Errorf("enter netns: %w", err)
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		panic(fmt.Sprintf("kerneltest: switch back to the original netns: %v", err))
	}
	return ferr
}
