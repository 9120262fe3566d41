//go:build !linux

package lane

import (
	"context"
	"errors"
	"log/slog"
)

// Run needs Linux (flock, Pdeathsig, QEMU's Linux guest tooling).
func Run(ctx context.Context, cfg Config) (int, error) {
	return 0, errors.New("the VM lane runs on Linux hosts only")
}

// Fetch needs Linux (flock, apt, dpkg).
func Fetch(ctx context.Context, cacheDir string, modules []string, log *slog.Logger) (Kernel, bool, error) {
	return Kernel{}, false, errors.New("the VM lane runs on Linux hosts only")
}
