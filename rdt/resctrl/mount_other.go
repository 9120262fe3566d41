//go:build !linux

package resctrl

import (
	"fmt"
	"os"
)

func readFile(name string) ([]byte, error) { return os.ReadFile(name) }

// Mount reports ErrNotSupported: resctrl is Linux only.
func Mount(root, procRoot string) error {
	return fmt.Errorf("resctrl: not Linux: %w", ErrNotSupported)
}
