package lane

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/test/kerneltest"
)

// laneCache is the cache the lane's scripts use, so these tests share its
// kernel instead of fetching another.
func laneCache(t *testing.T) string {
	if d := os.Getenv("SLUICE_VM_CACHE"); d != "" {
		return d
	}
	d, err := filepath.Abs("../.work")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// buildGuest builds a package as a static GOAMD64=v1 binary.
func buildGuest(t testing.TB, pkg, out string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go toolchain not on PATH: %v", err)
	}
	cmd := exec.Command(goBin, "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOAMD64=v1", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
	return out
}

func requireLane(t *testing.T) {
	t.Helper()
	if kerneltest.InVM() {
		t.Skip("no QEMU inside the guest")
	}
	kerneltest.RequireBinary(t, kerneltest.FeatureQEMU, "qemu-system-x86_64")
	kerneltest.RequireBinary(t, kerneltest.FeatureQEMU, "apt-get")
	kerneltest.RequireBinary(t, kerneltest.FeatureQEMU, "xz")
}

// TestLaneRelaysOutputAndStatus boots the real kernel with the real /init
// and a payload that exits 3: the status, the arguments (with spaces and
// quotes, which the kernel command line could not carry), the working
// directory with its testdata, the environment and an unterminated last
// line must all come through.
func TestLaneRelaysOutputAndStatus(t *testing.T) {
	requireLane(t)
	dir := t.TempDir()
	initBin := buildGuest(t, "../init", filepath.Join(dir, "init"))
	prog := buildGuest(t, "./testdata/guestprog", filepath.Join(dir, "guestprog"))
	pkg := filepath.Join(dir, "pkg")
	if err := os.MkdirAll(filepath.Join(pkg, "testdata"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkg, "testdata", "hello.txt"), []byte("hi from the host"), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out bytes.Buffer
	start := time.Now()
	status, err := Run(ctx, Config{
		TestBinary: prog,
		Args:       []string{"3", "two words", `quote"d`, "a=b"},
		PackageDir: pkg,
		Init:       initBin,
		CacheDir:   laneCache(t),
		Env:        []string{"GOTRACEBACK=all"},
		Out:        &out,
		Log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	t.Logf("boot to exit: %v", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("Run: %v\nconsole:\n%s", err, out.String())
	}
	if status != 3 {
		t.Errorf("status %d, want 3", status)
	}
	for _, want := range []string{
		"args=3|two words|quote\"d|a=b\n",
		"cwd=/sluice/pkg in_vm=1 require=root,cgroupv2,cgroupv2-controllers,psi,bpf\n",
		`testdata="hi from the host" err=<nil>` + "\n",
		"no newline before the exit line\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("console lacks %q; got:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "sluice-vm-exit") || strings.Contains(out.String(), "\r") {
		t.Errorf("exit line or carriage returns leaked into the output:\n%q", out.String())
	}
}

// TestLaneReportsMissingExitLine: a guest whose /init dies without the exit
// line (here the payload itself runs as PID 1 and returns, so the kernel
// panics and reboots) is an error, never a status.
func TestLaneReportsMissingExitLine(t *testing.T) {
	requireLane(t)
	dir := t.TempDir()
	prog := buildGuest(t, "./testdata/guestprog", filepath.Join(dir, "guestprog"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out bytes.Buffer
	status, err := Run(ctx, Config{
		TestBinary: prog,
		Init:       prog,
		CacheDir:   laneCache(t),
		Out:        &out,
		Log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if !errors.Is(err, ErrNoExitLine) {
		t.Fatalf("Run = %d, %v; want ErrNoExitLine\nconsole:\n%s", status, err, out.String())
	}
	if !strings.Contains(out.String(), "Attempted to kill init") {
		t.Errorf("the kernel's panic did not reach the console:\n%s", out.String())
	}
}

func TestCheckGuestBinary(t *testing.T) {
	if kerneltest.InVM() {
		t.Skip("no go toolchain inside the guest")
	}
	dir := t.TempDir()
	good := buildGuest(t, "./testdata/emptyprog", filepath.Join(dir, "good"))
	if err := CheckGuestBinary(good); err != nil {
		t.Errorf("static v1 binary refused: %v", err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	v3 := filepath.Join(dir, "v3")
	cmd := exec.Command(goBin, "build", "-o", v3, "./testdata/emptyprog")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOAMD64=v3")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if err := CheckGuestBinary(v3); err == nil || !strings.Contains(err.Error(), "GOAMD64=v1") {
		t.Errorf("GOAMD64=v3 binary: got %v, want a refusal naming GOAMD64=v1", err)
	}
	if dyn, err := exec.LookPath("sh"); err == nil {
		if err := CheckGuestBinary(dyn); err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
			t.Errorf("%s: got %v, want a refusal naming CGO_ENABLED=0", dyn, err)
		}
	}
	if err := CheckGuestBinary(filepath.Join("testdata", "guestprog", "main.go")); err == nil {
		t.Error("a Go source file passed as a binary")
	}
}

// BenchmarkBootToExit measures one guest from QEMU start to power-off with
// a payload that exits at once: the lane's fixed cost per test package
// (kernel already cached; initramfs packing included).
func BenchmarkBootToExit(b *testing.B) {
	if kerneltest.InVM() {
		b.Skip("no QEMU inside the guest")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		b.Skip("qemu-system-x86_64 not installed")
	}
	dir := b.TempDir()
	initBin := buildGuest(b, "../init", filepath.Join(dir, "init"))
	prog := buildGuest(b, "./testdata/guestprog", filepath.Join(dir, "guestprog"))
	cache, err := filepath.Abs("../.work")
	if err != nil {
		b.Fatal(err)
	}
	if d := os.Getenv("SLUICE_VM_CACHE"); d != "" {
		cache = d
	}
	cfg := Config{TestBinary: prog, Args: []string{"0"}, Init: initBin, CacheDir: cache,
		Out: io.Discard, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if _, err := Run(context.Background(), cfg); err != nil { // warms the kernel cache
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if status, err := Run(context.Background(), cfg); err != nil || status != 0 {
			b.Fatalf("Run = %d, %v", status, err)
		}
	}
}
