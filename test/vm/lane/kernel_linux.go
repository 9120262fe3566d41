package lane

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// FetchTimings says where a cold fetch spent its time.
type FetchTimings struct {
	Download, Unpack, Decompress, Modules time.Duration
}

// Fetch returns the kernel cached under cacheDir with modules (and their
// dependencies), fetching it from the Debian archive first when the cache
// lacks it. Concurrent callers (go test runs packages in parallel) share
// one fetch through a lock file. cold reports whether this call fetched.
func Fetch(ctx context.Context, cacheDir string, modules []string, log *slog.Logger) (k Kernel, cold bool, err error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Kernel{}, false, fmt.Errorf("kernel cache: %w", err)
	}
	unlock, err := lockFile(filepath.Join(cacheDir, "lock"))
	if err != nil {
		return Kernel{}, false, err
	}
	defer unlock()
	// Holding the lock, any fetch-* directory is a dead fetcher's
	// (hundreds of MiB of unpacked package): remove it.
	if stale, err := filepath.Glob(filepath.Join(cacheDir, "fetch-*")); err == nil {
		for _, d := range stale {
			if err := os.RemoveAll(d); err != nil {
				log.Warn("cannot remove a stale fetch directory", "dir", d, "err", err)
			}
		}
	}

	pkg, err := resolveKernelPackage(ctx, log)
	if err != nil {
		return Kernel{}, false, err
	}
	dir := filepath.Join(cacheDir, "kernel", pkg+"-"+modulesKey(modules))
	if k, err := loadKernel(dir); err == nil {
		return k, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		log.Warn("kernel cache entry unusable, fetching again", "dir", dir, "err", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return Kernel{}, false, fmt.Errorf("kernel cache: %w", err)
	}
	var t FetchTimings
	k, err = fetchKernel(ctx, cacheDir, dir, pkg, modules, &t, log)
	if err != nil {
		return Kernel{}, false, err
	}
	log.Info("kernel fetched", "package", pkg, "download", t.Download, "unpack", t.Unpack,
		"decompress", t.Decompress, "modules", t.Modules)
	return k, true, nil
}

func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kernel cache lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("kernel cache lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing drops the lock
}

const kernelMeta = "kernel.json"

func loadKernel(dir string) (Kernel, error) {
	data, err := os.ReadFile(filepath.Join(dir, kernelMeta))
	if err != nil {
		return Kernel{}, err
	}
	var k Kernel
	if err := json.Unmarshal(data, &k); err != nil {
		return Kernel{}, fmt.Errorf("%s: %w", filepath.Join(dir, kernelMeta), err)
	}
	k.Vmlinux = filepath.Join(dir, k.Vmlinux)
	for i := range k.Modules {
		k.Modules[i] = filepath.Join(dir, k.Modules[i])
	}
	for _, p := range append([]string{k.Vmlinux}, k.Modules...) {
		if _, err := os.Stat(p); err != nil {
			return Kernel{}, fmt.Errorf("kernel cache: %w", err)
		}
	}
	return k, nil
}

// resolveKernelPackage asks apt which versioned kernel package the
// metapackage depends on; on a machine that never ran apt-get update the
// question has no answer, so update once and ask again.
func resolveKernelPackage(ctx context.Context, log *slog.Logger) (string, error) {
	out, err := command(ctx, "", "apt-cache", "depends", metaPackage)
	if err == nil {
		if pkg, perr := ParseKernelDepends(out); perr == nil {
			return pkg, nil
		}
	}
	log.Info("apt knows no kernel package yet; running apt-get update")
	if _, err := command(ctx, "", "apt-get", "update", "-qq"); err != nil {
		return "", err
	}
	out, err = command(ctx, "", "apt-cache", "depends", metaPackage)
	if err != nil {
		return "", err
	}
	return ParseKernelDepends(out)
}

func fetchKernel(ctx context.Context, cacheDir, dir, pkg string, modules []string, t *FetchTimings, log *slog.Logger) (Kernel, error) {
	tmp, err := os.MkdirTemp(cacheDir, "fetch-")
	if err != nil {
		return Kernel{}, fmt.Errorf("kernel cache: %w", err)
	}
	defer os.RemoveAll(tmp)

	start := time.Now()
	if _, err := command(ctx, tmp, "apt-get", "download", pkg); err != nil {
		log.Info("apt-get download failed; running apt-get update and retrying", "err", err)
		if _, err := command(ctx, "", "apt-get", "update", "-qq"); err != nil {
			return Kernel{}, err
		}
		if _, err := command(ctx, tmp, "apt-get", "download", pkg); err != nil {
			return Kernel{}, err
		}
	}
	debs, err := filepath.Glob(filepath.Join(tmp, pkg+"_*.deb"))
	if err != nil || len(debs) != 1 {
		return Kernel{}, fmt.Errorf("apt-get download %s: want one .deb in %s, found %d", pkg, tmp, len(debs))
	}
	t.Download = time.Since(start)

	start = time.Now()
	root := filepath.Join(tmp, "root")
	if _, err := command(ctx, "", "dpkg", "-x", debs[0], root); err != nil {
		return Kernel{}, err
	}
	t.Unpack = time.Since(start)

	images, err := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if err != nil || len(images) != 1 {
		return Kernel{}, fmt.Errorf("%s: want one boot/vmlinuz-*, found %d", filepath.Base(debs[0]), len(images))
	}
	release := strings.TrimPrefix(filepath.Base(images[0]), "vmlinuz-")

	out := filepath.Join(tmp, "out")
	if err := os.MkdirAll(filepath.Join(out, "modules"), 0o755); err != nil {
		return Kernel{}, fmt.Errorf("kernel cache: %w", err)
	}
	start = time.Now()
	img, err := os.ReadFile(images[0])
	if err != nil {
		return Kernel{}, fmt.Errorf("kernel: %w", err)
	}
	payload, err := ParseBzImage(img)
	if err != nil {
		return Kernel{}, fmt.Errorf("%s: %w", images[0], err)
	}
	vmlinux, err := unxz(ctx, payload.XZ)
	if err != nil {
		return Kernel{}, fmt.Errorf("%s: %w", images[0], err)
	}
	if err := checkVmlinux(payload, vmlinux); err != nil {
		return Kernel{}, fmt.Errorf("%s: %w", images[0], err)
	}
	if err := os.WriteFile(filepath.Join(out, "vmlinux"), vmlinux, 0o644); err != nil {
		return Kernel{}, fmt.Errorf("kernel cache: %w", err)
	}
	t.Decompress = time.Since(start)

	start = time.Now()
	order, err := packModules(ctx, filepath.Join(root, "lib", "modules", release), modules, filepath.Join(out, "modules"))
	if err != nil {
		return Kernel{}, err
	}
	t.Modules = time.Since(start)

	k := Kernel{Package: pkg, Deb: filepath.Base(debs[0]), Release: release, Vmlinux: "vmlinux"}
	for _, name := range order {
		k.Modules = append(k.Modules, filepath.Join("modules", name+".ko"))
	}
	meta, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return Kernel{}, fmt.Errorf("kernel cache: %w", err)
	}
	if err := os.WriteFile(filepath.Join(out, kernelMeta), meta, 0o644); err != nil {
		return Kernel{}, fmt.Errorf("kernel cache: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return Kernel{}, fmt.Errorf("kernel cache: %w", err)
	}
	// The rename publishes the entry whole: a crash leaves no half entry.
	if err := os.Rename(out, dir); err != nil {
		return Kernel{}, fmt.Errorf("kernel cache: %w", err)
	}
	return loadKernel(dir)
}

// packModules resolves modules and their dependencies under modDir (a
// lib/modules/<release> tree) and writes each, uncompressed, to outDir as
// <name>.ko. It returns the load order. Reading modinfo ourselves replaces
// depmod: the package ships no modules.dep, and this needs no kmod.
func packModules(ctx context.Context, modDir string, modules []string, outDir string) ([]string, error) {
	paths := map[string]string{}
	err := filepath.WalkDir(filepath.Join(modDir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n := d.Name(); !d.IsDir() && (strings.HasSuffix(n, ".ko") || strings.HasSuffix(n, ".ko.xz")) {
			paths[ModuleName(n)] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kernel modules: %w", err)
	}
	builtinData, err := os.ReadFile(filepath.Join(modDir, "modules.builtin"))
	if err != nil {
		return nil, fmt.Errorf("kernel modules: %w", err)
	}
	builtin := ParseModulesBuiltin(builtinData)

	known := map[string]Module{}
	files := map[string][]byte{}
	queue := make([]string, len(modules))
	for i, m := range modules {
		queue[i] = ModuleName(m)
	}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if _, ok := known[name]; ok || builtin[name] {
			continue
		}
		p, ok := paths[name]
		if !ok {
			continue // LoadOrder names who needed it
		}
		ko, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("kernel modules: %w", err)
		}
		if strings.HasSuffix(p, ".xz") {
			if ko, err = unxz(ctx, ko); err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
		}
		m, err := ReadModule(ko)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if m.Name != name {
			return nil, fmt.Errorf("%s: modinfo names it %s", p, m.Name)
		}
		known[name], files[name] = m, ko
		queue = append(queue, m.Depends...)
	}
	order, err := LoadOrder(modules, known, builtin)
	if err != nil {
		return nil, err
	}
	for _, name := range order {
		if err := os.WriteFile(filepath.Join(outDir, name+".ko"), files[name], 0o644); err != nil {
			return nil, fmt.Errorf("kernel modules: %w", err)
		}
	}
	return order, nil
}

func command(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, truncate(stderr.Bytes(), 500))
	}
	return out, nil
}
