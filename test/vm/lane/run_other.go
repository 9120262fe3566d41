//go:build !linux

package lane

import (
	"context"
	"errors"
)

// Run needs Linux (flock, Pdeathsig, QEMU's Linux guest tooling).
func Run(ctx context.Context, cfg Config) (int, error) {
	return 0, errors.New("the VM lane runs on Linux hosts only")
}
