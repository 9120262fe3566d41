package lane

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/test/vm/bootspec"
)

func TestMachineArgs(t *testing.T) {
	m := Machine{QEMU: "q", Kernel: "/k/vmlinux", Initrd: "/tmp/i.cpio", MemoryMiB: 1024, CPUs: 2, Append: []string{"mitigations=off"}}
	args := m.Args()
	joined := strings.Join(args, " ")
	for _, want := range []string{
		"-accel tcg -cpu qemu64", "-m 1024 -smp 2", "-nodefaults", "-serial stdio", "-net none", "-no-reboot",
		"-kernel /k/vmlinux -initrd /tmp/i.cpio",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("args %q lack %q", joined, want)
		}
	}
	i := slices.Index(args, "-append")
	if i < 0 || args[i+1] != "console=ttyS0 loglevel=1 panic=-1 mitigations=off" {
		t.Errorf("kernel command line: %q", args)
	}
	if strings.Count(joined, "-serial") != 1 {
		t.Errorf("args %q: a second serial port without a heartbeat file", joined)
	}
	m.Heartbeat = "/tmp/hb"
	// ttyS1 comes second: the console stays on ttyS0.
	if joined = strings.Join(m.Args(), " "); !strings.Contains(joined, "-serial stdio") ||
		!strings.HasSuffix(joined, "-serial file:/tmp/hb") {
		t.Errorf("args %q: want the heartbeat file as the second serial port", joined)
	}
}

func TestGuestEnv(t *testing.T) {
	env := GuestEnv([]string{"PATH=/usr/bin", "GOTRACEBACK=all", "SLUICE_REQUIRE=all", "HOME=/home/x", "GODEBUG=x=1"})
	want := []string{"PATH=/bin:/sbin", "HOME=/root", "TMPDIR=/tmp", "SLUICE_IN_VM=1",
		"SLUICE_REQUIRE=root,cgroupv2,cgroupv2-controllers,psi,bpf", "GOTRACEBACK=all", "GODEBUG=x=1"}
	if !slices.Equal(env, want) {
		t.Fatalf("GuestEnv = %q, want %q", env, want)
	}
}

func TestGuestFilesCarryTestdataAndSpec(t *testing.T) {
	pkg := t.TempDir()
	if err := os.MkdirAll(filepath.Join(pkg, "testdata"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkg, "testdata", "x.yaml"), []byte("x: 1"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := Config{TestBinary: "/tmp/go-build1/b001/cgroup.test", Args: []string{"-test.run=V2", "-test.v=true"},
		PackageDir: pkg, Init: "/w/init", Env: []string{"GOTRACEBACK=all"}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	k := Kernel{Modules: []string{"/c/modules/configfs.ko", "/c/modules/null_blk.ko"}}
	entries, spec, err := guestFiles(cfg, k, "abcdefgh12")
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]Entry{}
	for _, e := range entries {
		byPath[e.Path] = e
	}
	if e := byPath["/sluice/pkg/testdata/x.yaml"]; e.Source != filepath.Join(pkg, "testdata", "x.yaml") {
		t.Errorf("testdata not packed: %+v", e)
	}
	if e := byPath["/init"]; e.Source != "/w/init" || e.Mode != 0o755 {
		t.Errorf("/init: %+v", e)
	}
	if e := byPath["/sluice/bin/cgroup.test"]; e.Source != cfg.TestBinary {
		t.Errorf("test binary: %+v", e)
	}
	if e := byPath["/lib/modules/null_blk.ko"]; e.Source != "/c/modules/null_blk.ko" {
		t.Errorf("module: %+v", e)
	}
	decoded, err := bootspec.Decode(byPath[bootspec.Path].Data)
	if err != nil {
		t.Fatal(err)
	}
	if decoded.Program != "/sluice/bin/cgroup.test" || decoded.Dir != "/sluice/pkg" ||
		!slices.Equal(decoded.Args, cfg.Args) || !slices.Equal(decoded.Modules, []string{"/lib/modules/configfs.ko", "/lib/modules/null_blk.ko"}) ||
		!slices.Contains(decoded.Env, "GOTRACEBACK=all") || decoded.Token != "abcdefgh12" {
		t.Errorf("spec in the initramfs: %+v", decoded)
	}
	if !slices.Equal(spec.Controllers, GuestControllers()) {
		t.Errorf("controllers %v", spec.Controllers)
	}
}
