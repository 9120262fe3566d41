package converge

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
)

// errImagePending means the image is being pulled or imported in the
// background; the container waits for a later pass.
var errImagePending = errors.New("image not ready yet")

// images gets images ready for containers without holding up a pass: a
// missing image is pulled or imported in its own goroutine, and the pass
// that finds it ready launches the container. A failed pull is retried
// after a backoff, not on every pass.
type images struct {
	client      *containerd.Client
	namespace   string
	snapshotter string
	backoff     Backoff
	now         func() time.Time
	// done is called when a background fetch ends, to wake the worker.
	done func()

	ctx context.Context // ends background fetches on Close
	wg  sync.WaitGroup

	mu    sync.Mutex
	fetch map[string]*fetchState // by image reference
}

type fetchState struct {
	running  bool
	err      error
	failures int
	retryAt  time.Time
}

// get returns the unpacked image for s, errImagePending while a fetch runs,
// or the last fetch's error and when it will be retried. ctx carries the
// namespace.
func (m *images) get(ctx context.Context, s Spec) (containerd.Image, time.Time, error) {
	img, err := m.client.GetImage(ctx, s.Image)
	if err == nil {
		ok, err := img.IsUnpacked(ctx, m.snapshotter)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("image %s: check unpacked: %w", s.Image, err)
		}
		if ok {
			return img, time.Time{}, nil
		}
	} else if !errdefs.IsNotFound(err) {
		return nil, time.Time{}, fmt.Errorf("image %s: %w", s.Image, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.fetch[s.Image]
	if st == nil {
		st = &fetchState{}
		m.fetch[s.Image] = st
	}
	switch {
	case st.running:
		return nil, time.Time{}, errImagePending
	case st.err != nil && m.now().Before(st.retryAt):
		return nil, st.retryAt, st.err
	}
	st.running = true
	m.wg.Add(1)
	go m.run(s, st)
	return nil, time.Time{}, errImagePending
}

// present reports whether s's image is in containerd (dry-run planning).
func (m *images) present(ctx context.Context, s Spec) (bool, error) {
	_, err := m.client.GetImage(ctx, s.Image)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

func (m *images) run(s Spec, st *fetchState) {
	defer m.wg.Done()
	ctx := namespaces.WithNamespace(m.ctx, m.namespace)
	err := m.fetchImage(ctx, s)
	m.mu.Lock()
	st.running = false
	st.err = err
	if err != nil {
		st.retryAt = m.now().Add(m.backoff.Delay(st.failures))
		st.failures++
	} else {
		delete(m.fetch, s.Image)
	}
	m.mu.Unlock()
	m.done()
}

// fetchImage pulls s.Image, or imports s.ImageTar when set, and unpacks it.
func (m *images) fetchImage(ctx context.Context, s Spec) error {
	if s.ImageTar == "" {
		if _, err := m.client.Pull(ctx, s.Image, containerd.WithPullUnpack, containerd.WithPullSnapshotter(m.snapshotter)); err != nil {
			return fmt.Errorf("pull %s: %w", s.Image, err)
		}
		return nil
	}
	f, err := os.Open(s.ImageTar)
	if err != nil {
		return fmt.Errorf("import %s: %w", s.Image, err)
	}
	defer f.Close()
	imgs, err := m.client.Import(ctx, f)
	if err != nil {
		return fmt.Errorf("import %s from %s: %w", s.Image, s.ImageTar, err)
	}
	for _, rec := range imgs {
		if rec.Name == s.Image {
			if err := containerd.NewImage(m.client, rec).Unpack(ctx, m.snapshotter); err != nil {
				return fmt.Errorf("import %s: unpack: %w", s.Image, err)
			}
			return nil
		}
	}
	names := make([]string, 0, len(imgs))
	for _, rec := range imgs {
		names = append(names, rec.Name)
	}
	return fmt.Errorf("import %s: %s holds %v, not %s", s.Image, s.ImageTar, names, s.Image)
}

func (m *images) wait() { m.wg.Wait() }
