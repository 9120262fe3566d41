package containerdtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/sluicehq/sluice/test/kerneltest"
)

// Instance is one private containerd. Fields are read-only for tests.
type Instance struct {
	// Dir holds the config, root, state, sockets and log; removed at cleanup.
	Dir string
	// Address is the containerd gRPC socket.
	Address string
	// Client is connected to Address. Restart replaces it.
	Client *containerd.Client
	// CgroupParent is the test's unique parent cgroup (relative to every
	// hierarchy root, e.g. "/sluicetest-1a2b3c4d"); containers go below it.
	CgroupParent string

	binary     string
	configPath string
	logPath    string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	images map[string]containerd.Image // by namespace
	// shimSockets are the shim socket files of containers this instance
	// ran; shims put them under /run/containerd/s whatever the config says.
	shimSockets map[string]bool
}

// stopTimeout bounds how long Stop waits for containerd to exit on SIGTERM
// before it sends SIGKILL.
const stopTimeout = 10 * time.Second

// Start starts a private containerd and connects a client. Everything it
// creates is removed in t.Cleanup, also when the test fails; the daemon's
// log is printed when the test failed.
func Start(t testing.TB) *Instance {
	t.Helper()
	bin := kerneltest.RequireContainerd(t)

	// Unix socket paths are limited to 108 bytes, and t.TempDir embeds the
	// test name: a short directory under os.TempDir keeps sockets valid.
	dir, err := os.MkdirTemp("", "ctd-")
	if err != nil {
		t.Fatalf("containerdtest: %v", err)
	}
	inst := &Instance{
		Dir:          dir,
		Address:      filepath.Join(dir, "containerd.sock"),
		CgroupParent: "/sluicetest-" + randomHex(t, 6),
		binary:       bin,
		configPath:   filepath.Join(dir, "config.toml"),
		logPath:      filepath.Join(dir, "containerd.log"),
		images:       map[string]containerd.Image{},
		shimSockets:  map[string]bool{},
	}
	t.Cleanup(func() { inst.cleanup(t) })

	if err := os.WriteFile(inst.configPath, []byte(inst.config()), 0o600); err != nil {
		t.Fatalf("containerdtest: write config: %v", err)
	}
	if err := inst.start(); err != nil {
		t.Fatalf("containerdtest: %v\n%s", err, inst.logTail())
	}
	return inst
}

// config renders a containerd (config version 2, read by 1.6 and 1.7)
// configuration that keeps every path inside Dir and turns CRI off: the
// harness speaks the containerd API, and CRI would try to reach a registry
// for its sandbox image.
func (i *Instance) config() string {
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[debug]
  address = %[5]q
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = %[6]q
`, filepath.Join(i.Dir, "root"), filepath.Join(i.Dir, "state"), i.Address,
		i.Address+".ttrpc", filepath.Join(i.Dir, "debug.sock"), filepath.Join(i.Dir, "opt"))
}

func (i *Instance) start() error {
	logf, err := os.OpenFile(i.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(i.binary, "--config", i.configPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group so a signal to the test's terminal does not reach
	// it before cleanup does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", i.binary, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	i.mu.Lock()
	i.cmd, i.exited = cmd, exited
	i.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-exited:
			cancel() // fail fast instead of waiting for the dial timeout
		case <-ctx.Done():
		}
	}()
	// The client fails at once on "connection refused" (a socket file
	// left by a previous run, or one bound but not yet listening), so wait
	// until the socket accepts connections first.
	if err := waitForSocket(ctx, i.Address, 20*time.Second); err != nil {
		i.stop()
		return err
	}
	client, err := containerd.New(i.Address, containerd.WithTimeout(20*time.Second))
	if err == nil {
		_, err = client.Version(ctx)
		if err != nil {
			client.Close()
		}
	}
	if err != nil {
		i.stop()
		return fmt.Errorf("connect to %s: %w", i.Address, err)
	}
	i.mu.Lock()
	i.Client = client
	i.mu.Unlock()
	return nil
}

// waitForSocket polls until address accepts a connection, ctx ends (the
// daemon exited) or timeout passes.
func waitForSocket(ctx context.Context, address string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.Dial("unix", address)
		if err == nil {
			conn.Close()
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("containerd exited before listening on %s", address)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd not listening on %s after %v: %w", address, timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Stop stops the daemon (SIGTERM, then SIGKILL after a timeout) and closes
// the client. Shims and their containers keep running, as they do when a
// real containerd restarts.
func (i *Instance) Stop(t testing.TB) {
	t.Helper()
	i.stop()
}

// Restart starts the daemon again after Stop on the same address and state,
// and replaces Client with a new connected client.
func (i *Instance) Restart(t testing.TB) {
	t.Helper()
	i.stop()
	if err := i.start(); err != nil {
		t.Fatalf("containerdtest: restart: %v\n%s", err, i.logTail())
	}
}

func (i *Instance) stop() {
	i.mu.Lock()
	cmd, exited, client := i.cmd, i.exited, i.Client
	i.cmd, i.Client = nil, nil
	i.mu.Unlock()
	if client != nil {
		client.Close()
	}
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Running reports whether the daemon is running.
func (i *Instance) Running() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.cmd != nil
}

// LogPath is the daemon's log file.
func (i *Instance) LogPath() string { return i.logPath }

func (i *Instance) logTail() string {
	b, err := os.ReadFile(i.logPath)
	if err != nil {
		return fmt.Sprintf("(no containerd log: %v)", err)
	}
	const max = 16 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return "containerd log (" + i.logPath + "):\n" + string(b)
}

// cleanup runs every step whatever failed before it, and reports each
// failure as a test error: leaking a shim or a cgroup breaks later tests.
func (i *Instance) cleanup(t testing.TB) {
	if t.Failed() {
		t.Log(i.logTail())
	}
	var errs []error
	if i.Running() {
		errs = append(errs, i.removeAllContainers())
	}
	i.stop()
	errs = append(errs, i.killShims())
	errs = append(errs, unmountUnder(i.Dir))
	errs = append(errs, removeCgroupTree(i.CgroupParent))
	i.mu.Lock()
	for s := range i.shimSockets {
		if err := os.Remove(s); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	i.mu.Unlock()
	if err := os.RemoveAll(i.Dir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		t.Errorf("containerdtest: cleanup: %v", err)
	}
}

// removeAllContainers is the safety net behind RunContainer's own cleanup:
// it kills and deletes whatever is left in every namespace, and marks the
// shim sockets of what it deleted for removal.
func (i *Instance) removeAllContainers() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nss, err := i.Client.NamespaceService().List(ctx)
	if err != nil {
		return fmt.Errorf("list namespaces: %w", err)
	}
	var errs []error
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		cs, err := i.Client.Containers(nctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("namespace %s: list containers: %w", ns, err))
			continue
		}
		for _, c := range cs {
			// Containers launched by the code under test, not RunContainer,
			// leave shim sockets too.
			i.mu.Lock()
			i.shimSockets[shimSocket(i.Address, ns, c.ID())] = true
			i.mu.Unlock()
			if err := deleteContainer(nctx, c); err != nil {
				errs = append(errs, fmt.Errorf("namespace %s: %w", ns, err))
			}
		}
	}
	return errors.Join(errs...)
}

// countShims counts running shim processes of this instance's address.
func (i *Instance) countShims() int {
	n := 0
	_ = i.eachShim(func(int) error { n++; return nil })
	return n
}

// killShims kills shim processes started for this instance's address; a
// shim whose task was deleted exits by itself, so this only finds shims of
// a failed cleanup or a killed daemon.
func (i *Instance) killShims() error {
	return i.eachShim(func(pid int) error {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill shim %d: %w", pid, err)
		}
		return nil
	})
}

// eachShim calls fn with the pid of every containerd shim started with
// -address i.Address and joins fn's errors.
func (i *Instance) eachShim(fn func(pid int) error) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		pid := e.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
		if err != nil {
			continue // exited meanwhile
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if !strings.Contains(filepath.Base(args[0]), "containerd-shim") || !hasArgPair(args, "-address", i.Address) {
			continue
		}
		n, err := strconv.Atoi(pid)
		if err != nil {
			continue
		}
		if err := fn(n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func hasArgPair(args []string, flag, value string) bool {
	for k := 0; k+1 < len(args); k++ {
		if args[k] == flag && args[k+1] == value {
			return true
		}
	}
	return false
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("containerdtest: random: %v", err)
	}
	return hex.EncodeToString(b)
}
