package converge

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
)

// kubeletNamespace is the containerd namespace of the CRI plugin, which
// kubelet drives.
const kubeletNamespace = "k8s.io"

// cfsPeriodMicros is the CFS period of a container's CPU cap.
const cfsPeriodMicros = 100_000

// snapshotKey names the root filesystem snapshot of container id.
func snapshotKey(id string) string { return "sluice-" + id }

// create creates s's container (not its task) in cgroupPath, labelled as
// started at startedAt. ctx carries the namespace.
func (c *Converger) create(ctx context.Context, s Spec, img containerd.Image, cgroupPath string, startedAt time.Time) (containerd.Container, error) {
	specOpts := append([]oci.SpecOpts{oci.WithImageConfig(img)}, c.runOpts(s, cgroupPath)...)
	snapshotter, err := c.snapshotter(ctx)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", s.ID, err)
	}
	// A launch that failed after making the snapshot leaves it behind
	// without a container; the key is ours, so it is safe to drop.
	if err := c.cfg.Client.SnapshotService(snapshotter).Remove(ctx, snapshotKey(s.ID)); err != nil && !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("container %s: remove stale snapshot: %w", s.ID, err)
	}
	opts := []containerd.NewContainerOpts{
		containerd.WithImage(img),
		containerd.WithSnapshotter(snapshotter),
		containerd.WithNewSnapshot(snapshotKey(s.ID), img),
		containerd.WithContainerLabels(s.containerLabels(startedAt)),
		containerd.WithRuntime(c.cfg.Runtime, c.cfg.RuntimeOptions),
		containerd.WithNewSpec(specOpts...),
	}
	cont, err := c.cfg.Client.NewContainer(ctx, s.ID, opts...)
	if err != nil {
		return nil, fmt.Errorf("container %s: create: %w", s.ID, err)
	}
	return cont, nil
}

// runOpts are the spec options s asks for beyond its image's config: its
// hostname, cgroup, command, environment, CPU and memory caps, and its
// class's resctrl group when Config.RdtGroup names one.
func (c *Converger) runOpts(s Spec, cgroupPath string) []oci.SpecOpts {
	opts := []oci.SpecOpts{oci.WithHostname(s.ID), oci.WithCgroup(cgroupPath)}
	if len(s.Command) > 0 {
		opts = append(opts, oci.WithProcessArgs(s.Command...))
	}
	if len(s.Env) > 0 {
		opts = append(opts, oci.WithEnv(s.Env))
	}
	if s.MemoryBytes > 0 {
		opts = append(opts, oci.WithMemoryLimit(s.MemoryBytes))
	}
	if s.CPUMilli > 0 {
		opts = append(opts, oci.WithCPUCFS(s.CPUMilli*cfsPeriodMicros/1000, cfsPeriodMicros))
	}
	if c.cfg.RdtGroup != nil {
		// runc puts the container's first task in the group itself, so it
		// never runs a moment in the default group. Only the group name:
		// the schemata is Sluice's to write, and runc refuses to make a
		// group without one.
		if g := c.cfg.RdtGroup(s.Class, s.Priority); g != "" {
			opts = append(opts, oci.WithRdt(g, "", ""))
		}
	}
	return opts
}

// snapshotter is Config.Snapshotter, else the namespace's default (its
// containerd.io/defaults/snapshotter label), else the platform's, as
// containerd resolves it for images and snapshots. ctx carries the
// namespace.
func (c *Converger) snapshotter(ctx context.Context) (string, error) {
	if c.cfg.Snapshotter != "" {
		return c.cfg.Snapshotter, nil
	}
	name, err := c.cfg.Client.GetLabel(ctx, defaults.DefaultSnapshotterNSLabel)
	if err != nil {
		return "", fmt.Errorf("namespace's default snapshotter: %w", err)
	}
	if name == "" {
		name = defaults.DefaultSnapshotter
	}
	return name, nil
}

// startTask creates and starts cont's task with its output kept in its
// log (or discarded without a LogDir) and returns the init pid. A task
// that does not start is deleted again.
func (c *Converger) startTask(ctx context.Context, cont containerd.Container) (uint32, error) {
	stdio := cio.NullIO
	if c.cfg.LogDir != "" {
		stdio = cio.LogFile(c.logPath(cont.ID()))
	}
	t, err := cont.NewTask(ctx, stdio)
	if err != nil {
		return 0, fmt.Errorf("create task: %w", err)
	}
	if err := t.Start(ctx); err != nil {
		if _, derr := t.Delete(ctx, containerd.WithProcessKill); derr != nil {
			err = errors.Join(err, fmt.Errorf("delete task: %w", derr))
		}
		return 0, fmt.Errorf("start task: %w", err)
	}
	return t.Pid(), nil
}

// remove stops container id (SIGTERM to every process, SIGKILL after
// StopTimeout), deletes its task, then the container and its snapshot. The
// caller has checked the container is managed. ctx carries the namespace.
func (c *Converger) remove(ctx context.Context, id string) error {
	cont, err := c.cfg.Client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("container %s: load: %w", id, err)
	}
	labels, err := cont.Labels(ctx)
	if err != nil {
		return fmt.Errorf("container %s: labels: %w", id, err)
	}
	if labels[LabelManagedBy] != ManagedBy {
		// Checked again right before the kill: the listing may be stale.
		return fmt.Errorf("container %s: not launched by sluice, left alone", id)
	}
	t, err := cont.Task(ctx, nil)
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("container %s: load task: %w", id, err)
	default:
		if err := c.stopTask(ctx, t); err != nil {
			return fmt.Errorf("container %s: %w", id, err)
		}
	}
	if err := cont.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("container %s: delete: %w", id, err)
	}
	return nil
}

// stopTask gives the task StopTimeout to end on SIGTERM, then kills and
// deletes it.
func (c *Converger) stopTask(ctx context.Context, t containerd.Task) error {
	st, err := t.Status(ctx)
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("task status: %w", err)
	}
	if err == nil && st.Status == containerd.Running {
		exited, err := t.Wait(ctx)
		if err != nil {
			return fmt.Errorf("wait task: %w", err)
		}
		if err := t.Kill(ctx, syscall.SIGTERM, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("sigterm: %w", err)
		}
		timer := time.NewTimer(c.cfg.StopTimeout)
		select {
		case <-exited:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
		timer.Stop()
	}
	// WithProcessKill sends SIGKILL to whatever is left and waits for it.
	if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete task: %w", err)
	}
	return nil
}

// KubeletManaged reports whether kubelet runs pods through this containerd:
// the CRI plugin's namespace k8s.io exists and holds containers. Such a
// host's containers belong to kubelet, and the converger must be
// configured with Config.KubeletManaged.
func KubeletManaged(ctx context.Context, client *containerd.Client) (bool, error) {
	nss, err := client.NamespaceService().List(ctx)
	if err != nil {
		return false, fmt.Errorf("list namespaces: %w", err)
	}
	for _, ns := range nss {
		if ns != kubeletNamespace {
			continue
		}
		cs, err := client.ContainerService().List(namespaces.WithNamespace(ctx, ns))
		if err != nil {
			return false, fmt.Errorf("namespace %s: list containers: %w", ns, err)
		}
		return len(cs) > 0, nil
	}
	return false, nil
}
