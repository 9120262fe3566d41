package lane

import (
	"strings"
	"testing"
)

func TestParseKernelDepends(t *testing.T) {
	out := "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n"
	got, err := ParseKernelDepends([]byte(out))
	if err != nil || got != "linux-image-6.1.0-56-amd64" {
		t.Fatalf("got %q, %v", got, err)
	}
	for _, bad := range []string{
		"",
		"E: No packages found\n",
		"linux-image-amd64\n  Depends: <linux-image-6.1.0-56-amd64>\n",
		"linux-image-amd64\n  Recommends: linux-image-6.1.0-56-amd64\n",
		"linux-image-amd64\n  Depends: linux-image-amd64\n",
		"linux-image-amd64\n  Depends: linux-image-6.1\t0-amd64\n",
	} {
		if got, err := ParseKernelDepends([]byte(bad)); err == nil {
			t.Errorf("ParseKernelDepends(%q) = %q, want an error", bad, got)
		}
	}
}

func TestModulesKeyIgnoresOrderAndSpelling(t *testing.T) {
	a := modulesKey([]string{"null_blk", "sch_fq"})
	if b := modulesKey([]string{"sch_fq", "null-blk", "sch_fq"}); a != b {
		t.Fatalf("same set, different keys %s %s", a, b)
	}
	if c := modulesKey([]string{"sch_fq"}); a == c {
		t.Fatal("different sets share a cache key")
	}
}

func FuzzParseKernelDepends(f *testing.F) {
	f.Add([]byte("linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		pkg, err := ParseKernelDepends(out)
		if err != nil {
			return
		}
		if !strings.HasPrefix(pkg, "linux-image-") || !isDebianName(pkg) || pkg == metaPackage {
			t.Fatalf("accepted %q", pkg)
		}
	})
}
