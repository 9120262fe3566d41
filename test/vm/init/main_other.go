//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "sluice-vm init runs only as PID 1 of a Linux guest")
	os.Exit(1)
}
