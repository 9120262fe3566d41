//go:build !linux

package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluicehq/sluice/rdt/resctrl"
)

type realConfig struct {
	Root     string
	Slices   int
	Requests int
	Stress   string
	Target   time.Duration
	Log      *slog.Logger
}

func runReal(ctx context.Context, cfg realConfig) error {
	return fmt.Errorf("refusing the real benchmark: resctrl is Linux only (%w); run with -fake", resctrl.ErrNotSupported)
}
