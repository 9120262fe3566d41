package resctrl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// resctrlMagic is RDTGROUP_SUPER_MAGIC (include/uapi/linux/magic.h).
const resctrlMagic = 0x7655821

func readFile(name string) ([]byte, error) { return os.ReadFile(name) }

// Mount makes sure resctrl is mounted at root (normally /sys/fs/resctrl):
// nothing to do when it is; mounted when /proc/filesystems (under
// procRoot) lists resctrl; otherwise an error wrapping ErrNotSupported
// that names what is missing. A kernel that lists resctrl on a CPU
// without RDT refuses the mount (ENODEV); that is ErrNotSupported too.
func Mount(root, procRoot string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err == nil && st.Type == resctrlMagic {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(procRoot, "filesystems"))
	if err != nil {
		return fmt.Errorf("resctrl: %w", err)
	}
	if !listsResctrl(string(b)) {
		return fmt.Errorf("resctrl: kernel has no resctrl file system (CONFIG_X86_CPU_RESCTRL, not in %s/filesystems): %w", procRoot, ErrNotSupported)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("resctrl: %w", err)
	}
	if err := unix.Mount("resctrl", root, "resctrl", 0, ""); err != nil {
		if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("resctrl: mount %s: %w (the CPU has no RDT): %w", root, err, ErrNotSupported)
		}
		return fmt.Errorf("resctrl: mount %s: %w", root, err)
	}
	return nil
}

func listsResctrl(filesystems string) bool {
	for line := range strings.SplitSeq(filesystems, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[len(f)-1] == "resctrl" {
			return true
		}
	}
	return false
}
