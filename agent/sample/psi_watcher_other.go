//go:build !linux

package sample

import (
	"errors"
	"fmt"
	"log/slog"
)

// PSIWatcher needs Linux PSI; elsewhere NewPSIWatcher fails with
// errors.ErrUnsupported.
type PSIWatcher struct{}

// NewPSIWatcher fails: PSI triggers exist only on Linux.
func NewPSIWatcher(procRoot string, triggers []PSITrigger, log *slog.Logger) (*PSIWatcher, error) {
	return nil, fmt.Errorf("psi watcher: %w", errors.ErrUnsupported)
}

// C returns nil.
func (w *PSIWatcher) C() <-chan PSIEvent { return nil }

// Triggers returns nil.
func (w *PSIWatcher) Triggers() []PSITrigger { return nil }

// Close does nothing.
func (w *PSIWatcher) Close() error { return nil }
