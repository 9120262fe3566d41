//go:build !linux

package main

import (
	"context"
	"fmt"

	"github.com/sluicehq/sluice/rdt/resctrl"
)

func runReal(ctx context.Context, cfg realConfig) error {
	return fmt.Errorf("refusing the real benchmark: resctrl is Linux only (%w); run with -fake", resctrl.ErrNotSupported)
}
