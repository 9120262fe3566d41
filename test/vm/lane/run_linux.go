package lane

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/sluicehq/sluice/test/vm/bootspec"
)

// Guest paths.
const (
	guestBinDir  = "/sluice/bin"
	guestPkgDir  = "/sluice/pkg"
	guestModDir  = "/lib/modules"
	guestBusybox = "/bin/busybox"
)

// Run boots cfg.TestBinary in the VM and returns its exit status.
func Run(ctx context.Context, cfg Config) (int, error) {
	if cfg.QEMU == "" {
		cfg.QEMU = "qemu-system-x86_64"
	}
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = 1024
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 2
	}
	if cfg.Modules == nil {
		cfg.Modules = DefaultModules()
	}
	for _, b := range []string{cfg.TestBinary, cfg.Init} {
		if err := CheckGuestBinary(b); err != nil {
			return 0, err
		}
	}
	qemu, err := exec.LookPath(cfg.QEMU)
	if err != nil {
		return 0, fmt.Errorf("%s not found (Debian package qemu-system-x86): %w", cfg.QEMU, err)
	}
	k, _, err := Fetch(ctx, cfg.CacheDir, cfg.Modules, cfg.Log)
	if err != nil {
		return 0, err
	}

	token := rand.Text()
	token = strings.ToLower(token)
	entries, spec, err := guestFiles(cfg, k, token)
	if err != nil {
		return 0, err
	}
	tmp, err := os.MkdirTemp("", "sluice-vm-")
	if err != nil {
		return 0, fmt.Errorf("initramfs: %w", err)
	}
	defer os.RemoveAll(tmp)
	initrd := filepath.Join(tmp, "initramfs.cpio")
	f, err := os.Create(initrd)
	if err != nil {
		return 0, fmt.Errorf("initramfs: %w", err)
	}
	werr := WriteInitramfs(f, entries)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return 0, werr
	}
	cfg.Log.Debug("booting", "kernel", k.Package, "program", spec.Program, "args", spec.Args)
	m := Machine{QEMU: qemu, Kernel: k.Vmlinux, Initrd: initrd, MemoryMiB: cfg.MemoryMiB, CPUs: cfg.CPUs,
		Heartbeat: filepath.Join(tmp, "heartbeat")}
	return Boot(ctx, m, token, cfg.Out)
}

func guestFiles(cfg Config, k Kernel, token string) ([]Entry, bootspec.Spec, error) {
	program := path.Join(guestBinDir, filepath.Base(cfg.TestBinary))
	spec := bootspec.Spec{
		Version:     bootspec.Version,
		Token:       token,
		Program:     program,
		Args:        cfg.Args,
		Dir:         guestPkgDir,
		Env:         GuestEnv(cfg.Env),
		Controllers: GuestControllers(),
	}
	entries := []Entry{
		{Path: "/init", Mode: 0o755, Source: cfg.Init},
		{Path: program, Mode: 0o755, Source: cfg.TestBinary},
		{Path: guestPkgDir, Mode: fs.ModeDir | 0o755},
	}
	for _, d := range []string{"/proc", "/sys", "/dev", "/tmp", "/run", "/root"} {
		entries = append(entries, Entry{Path: d, Mode: fs.ModeDir | 0o755})
	}
	for _, m := range k.Modules {
		p := path.Join(guestModDir, filepath.Base(m))
		entries = append(entries, Entry{Path: p, Mode: 0o644, Source: m})
		spec.Modules = append(spec.Modules, p)
	}
	if cfg.PackageDir != "" {
		td := filepath.Join(cfg.PackageDir, "testdata")
		if st, err := os.Stat(td); err == nil && st.IsDir() {
			tree, err := TreeEntries(td, path.Join(guestPkgDir, "testdata"))
			if err != nil {
				return nil, spec, err
			}
			entries = append(entries, tree...)
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, spec, fmt.Errorf("testdata: %w", err)
		}
	}
	if cfg.Busybox != "" {
		if err := CheckGuestBinary(cfg.Busybox); err != nil {
			// Only tests that need a shell suffer, and they say so
			// (kerneltest.RequireBinary); the rest still run.
			cfg.Log.Warn("leaving busybox out of the guest", "err", err)
		} else {
			bb, err := busyboxEntries(cfg.Busybox)
			if err != nil {
				return nil, spec, err
			}
			entries = append(entries, bb...)
		}
	}
	var buf strings.Builder
	if err := bootspec.Encode(&buf, spec); err != nil {
		return nil, spec, err
	}
	entries = append(entries, Entry{Path: bootspec.Path, Mode: 0o644, Data: []byte(buf.String())})
	return entries, spec, nil
}

// busyboxEntries packs a static busybox and a symlink per applet it lists.
func busyboxEntries(bin string) ([]Entry, error) {
	out, err := exec.Command(bin, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", bin, err)
	}
	entries := []Entry{{Path: guestBusybox, Mode: 0o755, Source: bin}}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.ContainsRune(applet, '/') {
			continue
		}
		entries = append(entries, Entry{Path: path.Join("/bin", applet), Mode: fs.ModeSymlink | 0o777, Target: "busybox"})
	}
	return entries, nil
}
