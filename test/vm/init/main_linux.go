package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sluicehq/sluice/test/vm/bootspec"
)

const cgroupRoot = "/sys/fs/cgroup"

func main() {
	console := openConsole()
	status := bootspec.StatusSetupFailed
	spec, err := setup(console)
	if err != nil {
		fmt.Fprintf(console, "sluice-vm init: %v\n", err)
	} else {
		status = runTest(console, spec)
	}
	unix.Sync()
	if spec.Token != "" {
		fmt.Fprint(console, bootspec.ExitLine(spec.Token, status)+"\n")
	}
	// Returning from PID 1 would panic the kernel; power off instead, and
	// if that fails too, the panic (panic=-1, -no-reboot) still ends QEMU.
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		fmt.Fprintf(console, "sluice-vm init: power off: %v\n", err)
	}
	os.Exit(1)
}

// openConsole mounts devtmpfs and opens the console. The initramfs holds
// no device nodes (the cpio writer cannot make them), so until then PID 1
// has no stdout at all.
func openConsole() io.Writer {
	_ = os.MkdirAll("/dev", 0o755)
	if err := unix.Mount("devtmpfs", "/dev", "devtmpfs", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		return io.Discard
	}
	f, err := os.OpenFile("/dev/console", os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return io.Discard
	}
	return f
}

func setup(console io.Writer) (bootspec.Spec, error) {
	data, err := os.ReadFile(bootspec.Path)
	if err != nil {
		return bootspec.Spec{}, fmt.Errorf("read spec: %w", err)
	}
	spec, err := bootspec.Decode(data)
	if err != nil {
		return bootspec.Spec{}, err
	}
	mounts := []struct {
		source, target, fstype string
		optional               bool
	}{
		{"proc", "/proc", "proc", false},
		{"sysfs", "/sys", "sysfs", false},
		{"cgroup2", cgroupRoot, "cgroup2", false},
		{"bpf", "/sys/fs/bpf", "bpf", true},
		{"tracefs", "/sys/kernel/tracing", "tracefs", true},
		{"tmpfs", "/run", "tmpfs", false},
	}
	for _, m := range mounts {
		err := os.MkdirAll(m.target, 0o755)
		if err == nil {
			err = unix.Mount(m.source, m.target, m.fstype, unix.MS_NOSUID|unix.MS_NODEV, "")
		}
		if err != nil {
			if m.optional {
				fmt.Fprintf(console, "sluice-vm init: mount %s at %s: %v (continuing)\n", m.fstype, m.target, err)
				continue
			}
			return spec, fmt.Errorf("mount %s at %s: %w", m.fstype, m.target, err)
		}
	}
	if err := enableControllers(spec.Controllers); err != nil {
		return spec, err
	}
	for _, m := range spec.Modules {
		if err := loadModule(m); err != nil {
			return spec, err
		}
	}
	if err := loopbackUp(); err != nil {
		return spec, err
	}
	return spec, nil
}

func enableControllers(controllers []string) error {
	file := cgroupRoot + "/cgroup.subtree_control"
	for _, c := range controllers {
		// One write per controller, so the error names the one refused.
		if err := os.WriteFile(file, []byte("+"+c), 0); err != nil {
			avail, _ := os.ReadFile(cgroupRoot + "/cgroup.controllers")
			return fmt.Errorf("enable +%s in %s (available: %s): %w", c, file, strings.TrimSpace(string(avail)), err)
		}
	}
	return nil
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load module: %w", err)
	}
	defer f.Close()
	// EEXIST: already loaded (or built in), which is what we wanted.
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("load module %s: %w", path, err)
	}
	return nil
}

// loopbackUp sets lo up: the kernel creates it down, and tests that serve
// on 127.0.0.1 expect it up as on any host.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: get flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: set flags: %w", err)
	}
	return nil
}

// heartbeat writes a byte to the second serial port (the host's
// Machine.Heartbeat file) every lane.HeartbeatEvery until stop is closed,
// so the host can tell a stalled guest from a slow test. Without the port
// it does nothing, and the host relies on its timeout.
func heartbeat(stop <-chan struct{}) {
	f, err := os.OpenFile("/dev/ttyS1", os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	t := time.NewTicker(bootspec.HeartbeatEvery)
	defer t.Stop()
	for {
		if _, err := f.Write([]byte{'.'}); err != nil {
			return
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// runTest runs the test binary and returns its exit code, or 128+signal.
func runTest(console io.Writer, spec bootspec.Spec) int {
	stop := make(chan struct{})
	defer close(stop)
	go heartbeat(stop)
	cmd := exec.Command(spec.Program, spec.Args...)
	cmd.Env = spec.Env
	cmd.Dir = spec.Dir
	cmd.Stdout, cmd.Stderr = console, console
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exitErr):
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			fmt.Fprintf(console, "sluice-vm init: test killed by %v\n", ws.Signal())
			return 128 + int(ws.Signal())
		}
		return exitErr.ExitCode()
	default:
		fmt.Fprintf(console, "sluice-vm init: start %s: %v\n", spec.Program, err)
		return bootspec.StatusSetupFailed
	}
}
