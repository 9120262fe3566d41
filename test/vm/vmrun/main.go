// Command vmrun is the `go test -exec` program of the cgroup v2 VM lane: it
// boots a test binary in Debian's kernel under QEMU and exits with the
// test's status. test/vm/run builds it (and the guest /init) and calls it
// as
//
//	vmrun -init PATH -cache DIR [-busybox PATH] -- TEST_BINARY [ARGS...]
//
// or, to fetch the kernel only (test/vm/run -fetch),
//
//	vmrun -fetch -cache DIR
//
// in the package directory go test chose; that directory's testdata/ goes
// into the guest. Its own failures (no kernel, no QEMU, a dynamic test
// binary, a guest that never reported) exit with status 2 and a message
// starting "vmrun:".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/test/vm/bootspec"
	"github.com/sluicehq/sluice/test/vm/lane"
)

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("vmrun", flag.ContinueOnError)
	initPath := fs.String("init", "", "static guest /init binary (test/vm/init)")
	cache := fs.String("cache", "", "kernel cache directory")
	busybox := fs.String("busybox", "", "static busybox to pack as /bin/busybox (optional)")
	memory := fs.Int("memory-mib", 1024, "guest memory in MiB")
	cpus := fs.Int("cpus", 2, "guest CPUs")
	timeout := fs.Duration("timeout", 0, "give up on the guest after this long (default: the test's -test.timeout plus 2m, or 12m)")
	verbose := fs.Bool("v", false, "log kernel fetches and boots")
	fetchOnly := fs.Bool("fetch", false, "only fetch the kernel into -cache (CI can warm the cache first) and print its vmlinux path")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if *fetchOnly && *cache != "" {
		log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "vmrun")
		k, _, err := lane.Fetch(context.Background(), *cache, lane.DefaultModules(), log)
		if err != nil {
			fmt.Fprintf(os.Stderr, "vmrun: %v\n", err)
			return 2
		}
		fmt.Println(k.Vmlinux)
		return 0
	}
	if fs.NArg() < 1 || *initPath == "" || *cache == "" {
		fmt.Fprintln(os.Stderr, "vmrun: usage: vmrun -init PATH -cache DIR [-busybox PATH] -- TEST_BINARY [ARGS...]")
		return 2
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("component", "vmrun")

	args := fs.Args()[1:]
	if *timeout == 0 {
		*timeout = guestTimeout(args)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGQUIT)
	defer stop()
	ctx, cancel := context.WithTimeoutCause(ctx, *timeout, fmt.Errorf("vmrun timeout %v", *timeout))
	defer cancel()

	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmrun: %v\n", err)
		return 2
	}
	start := time.Now()
	cfg := lane.Config{
		TestBinary: fs.Arg(0),
		Args:       args,
		PackageDir: wd,
		Init:       *initPath,
		CacheDir:   *cache,
		Busybox:    *busybox,
		MemoryMiB:  *memory,
		CPUs:       *cpus,
		Env:        os.Environ(),
		Out:        os.Stdout,
		Log:        log,
	}
	status, err := lane.Run(ctx, cfg)
	if errors.Is(err, lane.ErrGuestStalled) {
		// The emulated machine hung (TCG, seen rarely, in different
		// packages each time); the test never finished, so it has no
		// result yet. One more boot gives it one; a second stall fails.
		fmt.Fprintf(os.Stderr, "vmrun: %v; booting the guest once more\n", err)
		status, err = lane.Run(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmrun: %v\n", err)
		return 2
	}
	log.Info("guest done", "status", status, "elapsed", time.Since(start).Round(time.Millisecond))
	if status == bootspec.StatusSetupFailed { // /init printed why
		fmt.Fprintln(os.Stderr, "vmrun: guest setup failed (see the sluice-vm init line above)")
		return 2
	}
	return status
}

// guestTimeout leaves the test its own -test.timeout (go test passes one)
// plus room to boot and power off under emulation.
func guestTimeout(args []string) time.Duration {
	for _, a := range args {
		v, ok := strings.CutPrefix(a, "-test.timeout=")
		if !ok {
			continue
		}
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			return d + 2*time.Minute
		}
	}
	return 12 * time.Minute
}
