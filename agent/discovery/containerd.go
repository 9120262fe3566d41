package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types/task"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs/pkg/errgrpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// containerdConn is one connection to containerd.
type containerdConn struct {
	client *containerd.Client
}

func (c *containerdConn) close() error { return c.client.Close() }

const backoffMin = 100 * time.Millisecond

func (d *Discoverer) runContainerd(ctx context.Context) {
	backoff := backoffMin
	for {
		synced, err := d.session(ctx)
		if ctx.Err() != nil {
			return
		}
		d.setDisconnected(err)
		if synced {
			backoff = backoffMin
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, d.cfg.ReconnectBackoffMax)
	}
}

// session connects, lists everything, then follows events and resyncs
// until an error. synced says whether a full listing succeeded.
func (d *Discoverer) session(ctx context.Context) (synced bool, err error) {
	client, err := connect(ctx, d.cfg.ContainerdAddress, d.cfg.ConnectTimeout)
	if err != nil {
		return false, err
	}
	conn := &containerdConn{client: client}
	d.mu.Lock()
	d.conn = conn
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		if d.conn == conn {
			d.conn = nil
		}
		d.mu.Unlock()
		conn.close()
	}()

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Subscribe before listing so nothing that happens during the listing
	// is missed.
	events, errs := client.Subscribe(sctx, `topic~="^/containers/"`, `topic~="^/tasks/"`)
	if err := d.syncAll(sctx, client); err != nil {
		return false, err
	}
	d.setConnected()
	resync := time.NewTicker(d.cfg.ResyncInterval)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case err := <-errs:
			if err == nil {
				err = errors.New("closed")
			}
			return true, fmt.Errorf("event stream: %w", err)
		case ev := <-events:
			// Coalesce a burst (a container start is several events) into
			// one listing per namespace.
			dirty := map[string]bool{ev.Namespace: true}
		drain:
			for {
				select {
				case ev := <-events:
					dirty[ev.Namespace] = true
				default:
					break drain
				}
			}
			for ns := range dirty {
				if err := d.syncNamespace(sctx, client, ns); err != nil {
					return true, err
				}
			}
		case <-resync.C:
			if err := d.syncAll(sctx, client); err != nil {
				return true, err
			}
		case <-d.containersStale:
			if err := d.syncAll(sctx, client); err != nil {
				return true, err
			}
		}
	}
}

// connect returns a client that has answered a version request within
// timeout. The v2 client dials lazily (containerd.New never fails on an
// absent daemon), so without the probe an outage would only show as the
// first listing's error.
func connect(ctx context.Context, address string, timeout time.Duration) (*containerd.Client, error) {
	client, err := containerd.New(address, containerd.WithTimeout(timeout))
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", address, err)
	}
	vctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := client.Version(vctx); err != nil {
		client.Close()
		return nil, fmt.Errorf("connect %s: %w", address, errgrpc.ToNative(err))
	}
	return client, nil
}

func (d *Discoverer) setConnected() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.reported {
		d.log.Info("containerd reachable again", "address", d.cfg.ContainerdAddress)
	}
	d.reported = false
	d.status.ContainerdConnected = true
}

// setDisconnected records err; it logs once per transition to the outage,
// not on every retry.
func (d *Discoverer) setDisconnected(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		err = errors.New("disconnected")
	}
	d.status = DiscoveryStatus{ContainerdConnected: false, LastError: err.Error()}
	if !d.reported {
		d.reported = true
		d.log.Warn("containerd unreachable; keeping the last containers seen, retrying", "address", d.cfg.ContainerdAddress, "err", err)
	}
}

func (d *Discoverer) syncAll(ctx context.Context, client *containerd.Client) error {
	nss, err := client.NamespaceService().List(ctx)
	if err != nil {
		return fmt.Errorf("list namespaces: %w", err)
	}
	found := map[string][]Workload{}
	seen := map[string]bool{}
	for _, ns := range nss {
		ws, keys, err := d.listNamespace(ctx, client, ns)
		if err != nil {
			return err
		}
		if len(ws) > 0 {
			found[ns] = ws
		}
		for _, k := range keys {
			seen[k] = true
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.containers = found
	// Forget warnings of containers that are gone, and start times of
	// containers no longer listed.
	for k := range d.warned {
		if key, _, _ := strings.Cut(k, ": "); !seen[key] {
			delete(d.warned, k)
		}
	}
	for k := range d.starts {
		if !containsKey(found, k) {
			delete(d.starts, k)
		}
	}
	d.refreshLocked()
	return nil
}

func containsKey(found map[string][]Workload, key string) bool {
	ns, _, _ := strings.Cut(key, "/")
	for _, w := range found[ns] {
		if w.Key() == key {
			return true
		}
	}
	return false
}

func (d *Discoverer) syncNamespace(ctx context.Context, client *containerd.Client, ns string) error {
	ws, _, err := d.listNamespace(ctx, client, ns)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(ws) == 0 {
		delete(d.containers, ns)
	} else {
		d.containers[ns] = ws
	}
	d.refreshLocked()
	return nil
}

// listNamespace lists the containers of ns whose task is alive, and the
// keys (ns/id) of every container in ns.
func (d *Discoverer) listNamespace(ctx context.Context, client *containerd.Client, ns string) ([]Workload, []string, error) {
	nctx := namespaces.WithNamespace(ctx, ns)
	cs, err := client.ContainerService().List(nctx)
	if err != nil {
		return nil, nil, fmt.Errorf("namespace %s: list containers: %w", ns, err)
	}
	resp, err := client.TaskService().List(nctx, &tasks.ListTasksRequest{})
	if err != nil {
		return nil, nil, fmt.Errorf("namespace %s: list tasks: %w", ns, errgrpc.ToNative(err))
	}
	alive := map[string]*task.Process{}
	for _, p := range resp.Tasks {
		switch p.Status {
		case task.Status_CREATED, task.Status_RUNNING, task.Status_PAUSED, task.Status_PAUSING:
			alive[p.ID] = p
		}
	}

	keys := make([]string, 0, len(cs))
	records := make(map[string]ContainerRecord, len(cs))
	problems := map[string]string{} // by ns/id
	for _, c := range cs {
		keys = append(keys, ns+"/"+c.ID)
		rec := ContainerRecord{Namespace: ns, ID: c.ID, Labels: c.Labels}
		if c.Spec != nil {
			var spec specs.Spec
			if err := json.Unmarshal(c.Spec.GetValue(), &spec); err != nil {
				problems[ns+"/"+c.ID] = fmt.Sprintf("container not listed: decode spec: %v", err)
				continue
			}
			rec.Annotations = spec.Annotations
			if spec.Linux != nil {
				rec.CgroupsPath = spec.Linux.CgroupsPath
				rec.Resources = spec.Linux.Resources
			}
		}
		records[c.ID] = rec
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	rules := d.rules
	var out []Workload
	for _, c := range cs {
		p, ok := alive[c.ID]
		rec, decoded := records[c.ID]
		if !ok || !decoded || rec.IsSandbox() {
			continue
		}
		var sandbox *ContainerRecord
		if id := rec.SandboxID(); id != "" {
			if sb, ok := records[id]; ok {
				sandbox = &sb
			}
		}
		key := ns + "/" + c.ID
		cl, err := ClassifyContainer(rec, sandbox, rules)
		if err != nil {
			d.warnOnceLocked(key, "container not listed: "+err.Error())
			continue
		}
		for _, w := range cl.Warnings {
			d.warnOnceLocked(key, w)
		}
		out = append(out, Workload{
			ID:         c.ID,
			Namespace:  ns,
			Name:       cl.Name,
			Class:      cl.Class,
			Priority:   cl.Priority,
			CgroupPath: cl.CgroupPath,
			StartedAt:  d.startedAtLocked(key, p.Pid, c.CreatedAt),
			Source:     SourceContainerd,
			Labels:     c.Labels,
		})
	}
	for key, p := range problems {
		d.warnOnceLocked(key, p)
	}
	return out, keys, nil
}

// startedAtLocked is the start time of the task's init process, read once
// per pid; the container's creation time when /proc cannot tell (the agent
// in another pid namespace, the process gone meanwhile).
func (d *Discoverer) startedAtLocked(key string, pid uint32, created time.Time) time.Time {
	if s, ok := d.starts[key]; ok && s.pid == pid {
		return s.at
	}
	at := created
	if pid > 0 {
		if p, err := d.proc.Proc(int(pid)); err == nil {
			if st, err := p.Stat(); err == nil {
				if sec, err := st.StartTime(); err == nil {
					at = time.Unix(0, int64(sec*float64(time.Second)))
				}
			}
		}
	}
	d.starts[key] = startAt{pid: pid, at: at}
	return at
}

// KillTask sends sig to every process of container id's task in namespace
// (containerd's kill with all=true). A task that does not exist is an error
// matching errdefs.ErrNotFound (errors.Is); containerd being unreachable is
// an error wrapping ErrNotConnected. Safe for concurrent use.
func (d *Discoverer) KillTask(ctx context.Context, namespace, id string, sig syscall.Signal) error {
	d.mu.Lock()
	conn := d.conn
	d.mu.Unlock()
	if conn == nil {
		return fmt.Errorf("kill task %s/%s: %w", namespace, id, ErrNotConnected)
	}
	_, err := conn.client.TaskService().Kill(namespaces.WithNamespace(ctx, namespace), &tasks.KillRequest{
		ContainerID: id,
		Signal:      uint32(sig),
		All:         true,
	})
	if err != nil {
		return fmt.Errorf("kill task %s/%s: %w", namespace, id, errgrpc.ToNative(err))
	}
	return nil
}
