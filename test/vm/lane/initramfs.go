package lane

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cavaliergopher/cpio"
)

// Entry is one file, directory or symlink of an initramfs.
type Entry struct {
	// Path is the absolute guest path.
	Path string
	// Mode holds the permission bits and, for directories and symlinks,
	// fs.ModeDir or fs.ModeSymlink.
	Mode fs.FileMode
	// Source is the host file holding a regular file's contents; Data is
	// used when Source is empty.
	Source string
	Data   []byte
	// Target is a symlink's target.
	Target string
}

// WriteInitramfs writes entries as an uncompressed cpio "newc" archive,
// the format the kernel unpacks into its initial rootfs. Missing parent
// directories are added; entries are written in path order so parents come
// first and the output is reproducible. Two entries for one path are an
// error. Device nodes are not supported: /init mounts devtmpfs instead.
func WriteInitramfs(w io.Writer, entries []Entry) error {
	byPath := map[string]Entry{}
	for _, e := range entries {
		if !path.IsAbs(e.Path) || path.Clean(e.Path) != e.Path || e.Path == "/" {
			return fmt.Errorf("initramfs entry %q: want a clean absolute path below /", e.Path)
		}
		if _, dup := byPath[e.Path]; dup {
			return fmt.Errorf("initramfs entry %q: given twice", e.Path)
		}
		if t := e.Mode.Type(); t != 0 && t != fs.ModeDir && t != fs.ModeSymlink {
			return fmt.Errorf("initramfs entry %q: unsupported file type %v", e.Path, t)
		}
		byPath[e.Path] = e
	}
	for _, e := range entries {
		for dir := path.Dir(e.Path); dir != "/"; dir = path.Dir(dir) {
			if p, ok := byPath[dir]; ok {
				if !p.Mode.IsDir() {
					return fmt.Errorf("initramfs entry %q: parent %q is not a directory", e.Path, dir)
				}
				continue
			}
			byPath[dir] = Entry{Path: dir, Mode: fs.ModeDir | 0o755}
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	slices.Sort(paths)

	cw := cpio.NewWriter(w)
	for i, p := range paths {
		if err := writeEntry(cw, byPath[p], int64(i+1)); err != nil {
			return fmt.Errorf("initramfs entry %q: %w", p, err)
		}
	}
	if err := cw.Close(); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return nil
}

func writeEntry(cw *cpio.Writer, e Entry, inode int64) error {
	// Distinct inode numbers: the kernel's unpacker treats entries sharing
	// an inode and a link count above one as hard links.
	h := &cpio.Header{Name: strings.TrimPrefix(e.Path, "/"), Mode: cpio.FileMode(e.Mode.Perm()), Links: 1, Inode: inode}
	switch {
	case e.Mode.IsDir():
		h.Mode |= cpio.TypeDir
		h.Links = 2
		return cw.WriteHeader(h)
	case e.Mode&fs.ModeSymlink != 0:
		if e.Target == "" {
			return fmt.Errorf("symlink without a target")
		}
		h.Mode |= cpio.TypeSymlink
		h.Size = int64(len(e.Target))
		if err := cw.WriteHeader(h); err != nil {
			return err
		}
		_, err := io.WriteString(cw, e.Target)
		return err
	}
	h.Mode |= cpio.TypeReg
	if e.Source == "" {
		h.Size = int64(len(e.Data))
		if err := cw.WriteHeader(h); err != nil {
			return err
		}
		_, err := cw.Write(e.Data)
		return err
	}
	f, err := os.Open(e.Source)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("source %s is not a regular file", e.Source)
	}
	h.Size = st.Size()
	if err := cw.WriteHeader(h); err != nil {
		return err
	}
	n, err := io.Copy(cw, f)
	if err == nil && n != h.Size {
		err = fmt.Errorf("source %s changed size while packing (%d, now %d bytes)", e.Source, h.Size, n)
	}
	return err
}

// TreeEntries returns entries that copy the host directory hostDir to the
// guest directory guestDir: regular files, directories and symlinks (kept
// as links). Other file types are an error.
func TreeEntries(hostDir, guestDir string) ([]Entry, error) {
	var out []Entry
	err := filepath.WalkDir(hostDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(hostDir, p)
		if err != nil {
			return err
		}
		gp := path.Join(guestDir, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			out = append(out, Entry{Path: gp, Mode: fs.ModeDir | info.Mode().Perm()})
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out = append(out, Entry{Path: gp, Mode: fs.ModeSymlink | 0o777, Target: target})
		case d.Type().IsRegular():
			out = append(out, Entry{Path: gp, Mode: info.Mode().Perm(), Source: p})
		default:
			return fmt.Errorf("%s: cannot pack file type %v", p, d.Type())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("copy %s into the guest: %w", hostDir, err)
	}
	return out, nil
}
