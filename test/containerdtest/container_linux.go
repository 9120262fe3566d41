package containerdtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/api/types/runc/options"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/errdefs"
)

// Container is a running container started by RunContainer.
type Container struct {
	Namespace string
	ID        string
	// CgroupPath is the spec's cgroupsPath, relative to every hierarchy root.
	CgroupPath string
	Container  containerd.Container
	Task       containerd.Task
	// Exited is closed with the task's exit status when it exits.
	Exited <-chan containerd.ExitStatus
}

// RunOption changes how RunContainer creates a container.
type RunOption func(*runConfig)

type runConfig struct {
	labels      map[string]string
	annotations map[string]string
	args        []string
	cgroupPath  string
}

// WithLabels sets the container's containerd labels.
func WithLabels(labels map[string]string) RunOption {
	return func(c *runConfig) { c.labels = labels }
}

// WithAnnotations sets the OCI spec's annotations (where the CRI plugin
// records container type, sandbox id and names).
func WithAnnotations(annotations map[string]string) RunOption {
	return func(c *runConfig) { c.annotations = annotations }
}

// WithArgs sets the command; the default sleeps for an hour.
func WithArgs(args ...string) RunOption {
	return func(c *runConfig) { c.args = args }
}

// WithCgroupPath sets the cgroupfs-style cgroup path. It must lie below
// the instance's CgroupParent so cleanup can remove it.
func WithCgroupPath(path string) RunOption {
	return func(c *runConfig) { c.cgroupPath = path }
}

// RunContainer imports busybox into namespace if needed, then creates and
// starts container id. By default its cgroup is
// <CgroupParent>/<namespace>-<id>. t.Cleanup kills the task (all
// processes), deletes it, and deletes the container with its snapshot.
func (i *Instance) RunContainer(t testing.TB, ctx context.Context, namespace, id string, opts ...RunOption) *Container {
	t.Helper()
	cfg := runConfig{
		args:       []string{"sleep", "3600"},
		cgroupPath: i.CgroupParent + "/" + namespace + "-" + id,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if !strings.HasPrefix(cfg.cgroupPath, i.CgroupParent+"/") {
		t.Fatalf("containerdtest: cgroup path %q is not below the test's parent %q", cfg.cgroupPath, i.CgroupParent)
	}
	img := i.ImportBusybox(t, ctx, namespace)
	ctx = namespaces.WithNamespace(ctx, namespace)

	i.mu.Lock()
	i.shimSockets[shimSocket(i.Address, namespace, id)] = true
	i.mu.Unlock()
	client := i.client()
	specOpts := []oci.SpecOpts{oci.WithImageConfig(img), oci.WithProcessArgs(cfg.args...), oci.WithCgroup(cfg.cgroupPath)}
	if cfg.annotations != nil {
		specOpts = append(specOpts, oci.WithAnnotations(cfg.annotations))
	}
	c, err := client.NewContainer(ctx, id,
		containerd.WithImage(img),
		containerd.WithNewSnapshot(id+"-snapshot", img),
		containerd.WithContainerLabels(cfg.labels),
		containerd.WithRuntime(plugins.RuntimeRuncV2, i.RuntimeOptions()),
		containerd.WithNewSpec(specOpts...),
	)
	if err != nil {
		t.Fatalf("containerdtest: create container %s/%s: %v", namespace, id, err)
	}
	t.Cleanup(func() {
		cl := i.client()
		if cl == nil {
			return // daemon stopped: Start's cleanup kills shims and cgroups
		}
		cctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), namespace), 30*time.Second)
		defer cancel()
		lc, err := cl.LoadContainer(cctx, id)
		if errdefs.IsNotFound(err) {
			return
		}
		if err == nil {
			err = deleteContainer(cctx, lc)
		}
		if err != nil {
			t.Errorf("containerdtest: cleanup %s/%s: %v", namespace, id, err)
		}
	})
	task, err := c.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatalf("containerdtest: create task %s/%s: %v", namespace, id, err)
	}
	exited, err := task.Wait(context.WithoutCancel(ctx))
	if err != nil {
		t.Fatalf("containerdtest: wait task %s/%s: %v", namespace, id, err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatalf("containerdtest: start task %s/%s: %v", namespace, id, err)
	}
	return &Container{Namespace: namespace, ID: id, CgroupPath: cfg.cgroupPath, Container: c, Task: task, Exited: exited}
}

// RuntimeOptions are the runc shim options every container of the
// instance must be created with: runc's default state root
// (/run/containerd/runc/<ns>) is shared by every containerd on the host; a
// private one keeps ids apart.
func (i *Instance) RuntimeOptions() *options.Options {
	return &options.Options{Root: filepath.Join(i.Dir, "runc")}
}

// shimSocket is where the runc v2 shim of container id listens. It mirrors
// containerd's runtime/v2/shim.SocketAddress (1.6 and 1.7), which cannot be
// imported here without go-runc; the root is fixed, whatever the config says.
func shimSocket(address, namespace, id string) string {
	sum := sha256.Sum256([]byte(filepath.Join(address, namespace, id)))
	return filepath.Join("/run/containerd/s", hex.EncodeToString(sum[:]))
}

func (i *Instance) client() *containerd.Client {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.Client
}

// deleteContainer kills the task's processes, deletes the task, then the
// container and its snapshot. ctx carries the namespace.
func deleteContainer(ctx context.Context, c containerd.Container) error {
	var errs []error
	task, err := c.Task(ctx, nil)
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		errs = append(errs, fmt.Errorf("container %s: load task: %w", c.ID(), err))
	default:
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("container %s: delete task: %w", c.ID(), err))
		}
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("container %s: delete: %w", c.ID(), err))
	}
	return errors.Join(errs...)
}

// Kill sends sig to every process of the container's task.
func (c *Container) Kill(ctx context.Context, sig syscall.Signal) error {
	return c.Task.Kill(namespaces.WithNamespace(ctx, c.Namespace), sig, containerd.WithKillAll)
}
