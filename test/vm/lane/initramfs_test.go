package lane

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cavaliergopher/cpio"
)

type cpioFile struct {
	mode cpio.FileMode
	data string
}

func readCpio(t *testing.T, b []byte) (names []string, files map[string]cpioFile) {
	t.Helper()
	files = map[string]cpioFile{}
	r := cpio.NewReader(bytes.NewReader(b))
	for {
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			return names, files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if h.Mode&cpio.TypeSymlink == cpio.TypeSymlink {
			data = []byte(h.Linkname)
		}
		names = append(names, h.Name)
		files[h.Name] = cpioFile{mode: h.Mode, data: string(data)}
	}
}

func TestWriteInitramfs(t *testing.T) {
	src := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(src, []byte("#!binary"), 0o600); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err := WriteInitramfs(&buf, []Entry{
		{Path: "/sluice/bin/x.test", Mode: 0o755, Source: src},
		{Path: "/init", Mode: 0o700, Data: []byte("init")},
		{Path: "/bin/sh", Mode: fs.ModeSymlink | 0o777, Target: "busybox"},
		{Path: "/proc", Mode: fs.ModeDir | 0o555},
	})
	if err != nil {
		t.Fatal(err)
	}
	names, files := readCpio(t, buf.Bytes())
	want := []string{"bin", "bin/sh", "init", "proc", "sluice", "sluice/bin", "sluice/bin/x.test"}
	if !slices.Equal(names, want) {
		t.Fatalf("entries %v, want %v (parents added, in path order)", names, want)
	}
	for name, w := range map[string]cpioFile{
		"sluice/bin/x.test": {cpio.TypeReg | 0o755, "#!binary"},
		"init":              {cpio.TypeReg | 0o700, "init"},
		"bin/sh":            {cpio.TypeSymlink | 0o777, "busybox"},
		"proc":              {cpio.TypeDir | 0o555, ""},
		"sluice":            {cpio.TypeDir | 0o755, ""},
	} {
		if got := files[name]; got != w {
			t.Errorf("%s: mode %o data %q, want mode %o data %q", name, got.mode, got.data, w.mode, w.data)
		}
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("070701")) {
		t.Errorf("archive does not start with the newc magic: %q", buf.Bytes()[:6])
	}
}

func TestWriteInitramfsRejects(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []Entry
		wantErr string
	}{
		{"relative", []Entry{{Path: "init"}}, "clean absolute path"},
		{"unclean", []Entry{{Path: "/a/../init"}}, "clean absolute path"},
		{"root", []Entry{{Path: "/"}}, "clean absolute path"},
		{"twice", []Entry{{Path: "/init"}, {Path: "/init"}}, "given twice"},
		{"parent is a file", []Entry{{Path: "/a", Data: []byte("x")}, {Path: "/a/b"}}, `parent "/a" is not a directory`},
		{"device", []Entry{{Path: "/dev/console", Mode: fs.ModeDevice | fs.ModeCharDevice}}, "unsupported file type"},
		{"missing source", []Entry{{Path: "/x", Source: "/nonexistent/sluice"}}, "no such file"},
		{"symlink without target", []Entry{{Path: "/x", Mode: fs.ModeSymlink}}, "without a target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteInitramfs(io.Discard, tc.entries)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestTreeEntries(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "f.txt"), []byte("hello"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/f.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	entries, err := TreeEntries(dir, "/sluice/pkg/testdata")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteInitramfs(&buf, entries); err != nil {
		t.Fatal(err)
	}
	_, files := readCpio(t, buf.Bytes())
	if got := files["sluice/pkg/testdata/sub/f.txt"]; got != (cpioFile{cpio.TypeReg | 0o640, "hello"}) {
		t.Errorf("f.txt: %+v", got)
	}
	if got := files["sluice/pkg/testdata/link"]; got != (cpioFile{cpio.TypeSymlink | 0o777, "sub/f.txt"}) {
		t.Errorf("link: %+v", got)
	}
	if got := files["sluice/pkg/testdata/sub"]; got.mode != cpio.TypeDir|0o750 {
		t.Errorf("sub: mode %o", got.mode)
	}
}
