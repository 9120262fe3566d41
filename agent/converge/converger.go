package converge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types/task"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/errdefs/pkg/errgrpc"

	"github.com/sluicehq/sluice/qos"
)

// Intent kinds of the converger's results (qos.IntentResult.Intent); the
// Target is the container id.
const (
	// IntentContainer: the container already is what its spec says (or, for
	// an exited one, what its restart policy says).
	IntentContainer = "container"
	// IntentLaunch: create and start a container that is not there, or
	// start one whose task is missing.
	IntentLaunch = "container-launch"
	// IntentRestart: start an exited container again (restart policy).
	IntentRestart = "container-restart"
	// IntentReplace: stop and remove a container whose spec changed, and
	// launch it anew.
	IntentReplace = "container-replace"
	// IntentStop: stop and remove a container no longer targeted.
	IntentStop = "container-stop"
)

// StatusPending is the status of an intent that waits: for its image to be
// pulled or imported, or for its restart backoff. Err says which.
const StatusPending qos.ResultStatus = "pending"

// ErrKubeletManaged is the error of every result on a host whose
// containers kubelet manages: the converger launches and stops nothing.
var ErrKubeletManaged = errors.New("kubelet manages this host's containers; sluice launches nothing")

// Config wires a Converger.
type Config struct {
	// Client is connected to containerd. Required.
	Client *containerd.Client
	// Namespace is the containerd namespace Sluice's containers live in.
	// Default "sluice". Containers of other namespaces are never listed.
	Namespace string
	// Parents maps each class to its parent cgroup (relative to every
	// hierarchy root, e.g. the policy's OfflineParent for offline); a
	// container's cgroup is <parent>/<id>. A spec whose class has no parent
	// fails.
	Parents map[qos.Class]string
	// DryRun plans and reports but changes nothing (no pulls either).
	DryRun bool
	// KubeletManaged: kubelet owns this host's pods (see KubeletManaged);
	// every spec is reported unsupported and nothing is launched or stopped.
	KubeletManaged bool
	// Runtime and RuntimeOptions select the shim; default runc v2 with its
	// default options.
	Runtime        string
	RuntimeOptions any
	// Snapshotter unpacks images and holds root filesystems; "" is
	// containerd's default.
	Snapshotter string
	// Backoff spaces restarts of a crashing container and retries of a
	// failed image fetch. Default 1s doubling up to 5m, reset by 10m of
	// running.
	Backoff Backoff
	// StopTimeout is how long a stopped container gets between SIGTERM and
	// SIGKILL. Default 10s.
	StopTimeout time.Duration
	// Interval is how often Run converges without being woken. Default 2s.
	Interval time.Duration
	// Now is the clock for backoffs; default time.Now.
	Now func() time.Time
	// RdtGroup, when set, names the resctrl group a new container of a
	// class and priority starts in (OCI linux.intelRdt.closID; "" leaves
	// it unset): agent.Resctrl.GroupFor. Set it only when resctrl was
	// probed present: runc refuses intelRdt on a host without it.
	RdtGroup func(class qos.Class, priority int) string
	// LogDir, an absolute directory, keeps each launched container's
	// output in <LogDir>/<id>.log, rotated past LogMaxBytes (logs.go); ""
	// discards it.
	LogDir string
	// LogMaxBytes bounds a container's live log; with the rotated one, its
	// output takes at most about twice this on disk. Default
	// DefaultLogMaxBytes.
	LogMaxBytes int64
}

// ContainerState is one targeted container as the agent reports it.
type ContainerState struct {
	ID      string    `json:"id"`
	Job     string    `json:"job"`
	Replica int       `json:"replica"`
	Class   qos.Class `json:"class"`
	Phase   Phase     `json:"phase"`
	// Pid is the task's init process while it runs.
	Pid        uint32    `json:"pid,omitempty"`
	ExitCode   uint32    `json:"exitCode,omitempty"`
	ExitedAt   time.Time `json:"exitedAt,omitzero"`
	Restarts   int       `json:"restarts"`
	CgroupPath string    `json:"cgroupPath,omitempty"`
	// LastError is the last failure to converge this container ("" after
	// a success).
	LastError string `json:"lastError,omitempty"`
	// NextAttempt is when a waiting restart (backoff) or a failed image
	// fetch is tried again; zero when nothing waits.
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
}

// Phase is where a targeted container is.
type Phase string

const (
	// PhaseAbsent: not created (dry-run, kubelet-managed host, invalid
	// spec, or a failed launch).
	PhaseAbsent Phase = "absent"
	// PhasePending: waiting for its image or its restart backoff.
	PhasePending Phase = "pending"
	PhaseRunning Phase = "running"
	// PhaseExited: exited and not restarted (restart policy).
	PhaseExited Phase = "exited"
)

// Converger makes the containers of its namespace that carry the
// sluice.io/managed-by=sluice label match the targeted specs. Containers
// without that label are never stopped, replaced or restarted, whatever
// their id. Safe for concurrent use; passes are serialised.
type Converger struct {
	cfg    Config
	log    *slog.Logger
	images *images
	cancel context.CancelFunc

	pass sync.Mutex // one pass at a time
	// logged is each container's last logged result (intent, status,
	// error), so passes log transitions only; guarded by pass.
	logged map[string]string

	mu      sync.Mutex
	target  []Spec
	hasTgt  bool
	states  map[string]ContainerState
	results []qos.IntentResult
	// due is the earliest NextAttempt of the last pass (zero: none).
	due  time.Time
	wake chan struct{}
}

// New returns a converger; Close ends its background image fetches.
func New(cfg Config, log *slog.Logger) (*Converger, error) {
	if cfg.Client == nil {
		return nil, errors.New("converge: no containerd client")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "sluice"
	}
	if err := identifiers.Validate(cfg.Namespace); err != nil {
		return nil, fmt.Errorf("converge: namespace: %w", err)
	}
	if cfg.Namespace == kubeletNamespace {
		return nil, fmt.Errorf("converge: namespace %s belongs to kubelet's CRI plugin", kubeletNamespace)
	}
	cfg.Parents = maps.Clone(cfg.Parents)
	for class, p := range cfg.Parents {
		if _, err := qos.ParseClass(string(class)); err != nil {
			return nil, fmt.Errorf("converge: parent of %q: %w", class, err)
		}
		if !path.IsAbs(p) || path.Clean(p) == "/" {
			return nil, fmt.Errorf("converge: parent of %s: %q is not an absolute cgroup path below the root", class, p)
		}
	}
	if cfg.Runtime == "" {
		cfg.Runtime = plugins.RuntimeRuncV2
	}
	if cfg.Backoff.Min <= 0 {
		cfg.Backoff.Min = time.Second
	}
	if cfg.Backoff.Max < cfg.Backoff.Min {
		cfg.Backoff.Max = max(5*time.Minute, cfg.Backoff.Min)
	}
	if cfg.Backoff.ResetAfter <= 0 {
		cfg.Backoff.ResetAfter = 10 * time.Minute
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LogDir != "" {
		if !filepath.IsAbs(cfg.LogDir) {
			return nil, fmt.Errorf("converge: log dir %q: not absolute (containerd's shim opens it)", cfg.LogDir)
		}
		if err := os.MkdirAll(cfg.LogDir, 0o750); err != nil {
			return nil, fmt.Errorf("converge: log dir: %w", err)
		}
	}
	if cfg.LogMaxBytes <= 0 {
		cfg.LogMaxBytes = DefaultLogMaxBytes
	}
	bg, cancel := context.WithCancel(context.Background())
	c := &Converger{
		cfg:    cfg,
		log:    log.With("component", "converge"),
		cancel: cancel,
		states: map[string]ContainerState{},
		logged: map[string]string{},
		wake:   make(chan struct{}, 1),
	}
	c.images = &images{
		client:      cfg.Client,
		namespace:   cfg.Namespace,
		snapshotter: cfg.Snapshotter,
		backoff:     cfg.Backoff,
		now:         cfg.Now,
		done:        c.Wake,
		ctx:         bg,
		fetch:       map[string]*fetchState{},
	}
	return c, nil
}

// Close stops background image fetches and waits for them.
func (c *Converger) Close() {
	c.cancel()
	c.images.wait()
}

// SetTarget replaces the containers Run converges to and wakes it. It
// never blocks. Until the first SetTarget, Run changes nothing (an agent
// without a target must not stop what an earlier agent launched).
func (c *Converger) SetTarget(specs []Spec) {
	c.mu.Lock()
	c.target, c.hasTgt = slices.Clone(specs), true
	c.mu.Unlock()
	c.Wake()
}

// Wake makes Run converge now rather than at its next interval.
func (c *Converger) Wake() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run converges to the last target every Interval, when SetTarget or a
// finished image fetch wakes it, when a task of its namespace exits, and
// when a restart backoff or an image retry falls due. It returns when ctx
// ends.
func (c *Converger) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go c.watchExits(ctx)
	timer := time.NewTimer(c.cfg.Interval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-c.wake:
		}
		c.mu.Lock()
		specs, ok := c.target, c.hasTgt
		c.mu.Unlock()
		if ok {
			c.Apply(ctx, specs)
		}
		c.mu.Lock()
		wait := c.cfg.Interval
		if !c.due.IsZero() {
			wait = min(wait, max(c.due.Sub(c.cfg.Now()), 0))
		}
		c.mu.Unlock()
		timer.Reset(wait)
	}
}

// watchExits wakes Run when a task of the namespace exits, so a crashed
// container is seen without waiting for the interval. The interval still
// catches what a broken event stream misses.
func (c *Converger) watchExits(ctx context.Context) {
	filter := fmt.Sprintf(`topic=="/tasks/exit",namespace==%q`, c.cfg.Namespace)
	for ctx.Err() == nil {
		events, errs := c.cfg.Client.Subscribe(ctx, filter)
	stream:
		for {
			select {
			case <-ctx.Done():
				return
			case <-events:
				c.Wake()
			case <-errs:
				break stream
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(c.cfg.Interval):
		}
	}
}

// States lists the targeted containers as the last pass left them, by id.
func (c *Converger) States() []ContainerState {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ContainerState, 0, len(c.states))
	for _, s := range c.states {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b ContainerState) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Results are the last pass's results.
func (c *Converger) Results() []qos.IntentResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.results)
}

// logTransitions logs the results of each container whose results
// (intent, status, error) differ from the last pass's: a container that
// fails the same way every pass is logged once. Called with pass held.
func (c *Converger) logTransitions(ctx context.Context, results []qos.IntentResult) {
	keys := make(map[string]string, len(results))
	for _, r := range results {
		// A target named twice has two results: they change together.
		keys[r.Target] += r.Intent + "|" + string(r.Status) + "|" + r.Err + "\n"
	}
	for _, r := range results {
		if c.logged[r.Target] == keys[r.Target] {
			continue
		}
		level := slog.LevelInfo
		if r.Status == qos.ResultFailed {
			level = slog.LevelWarn
		}
		c.log.Log(ctx, level, "container "+r.Intent, "id", r.Target, "status", r.Status, "err", r.Err)
	}
	c.logged = keys
}

// observed is one container of the namespace with its task.
type observed struct {
	rec  containers.Container
	task *task.Process // nil: no task
}

func (o observed) managed() bool { return o.rec.Labels[LabelManagedBy] == ManagedBy }

// count reads a counter label; a missing or mangled one counts as 0.
func (o observed) count(label string) int {
	n, _ := strconv.Atoi(o.rec.Labels[label])
	return max(n, 0)
}

// lastExit is how the container's stopped task ended.
func (o observed) lastExit() exit {
	e := exit{code: o.task.ExitStatus, streak: o.count(LabelCrashStreak)}
	if o.task.ExitedAt != nil {
		e.exitedAt = o.task.ExitedAt.AsTime()
	}
	if t, err := time.Parse(time.RFC3339Nano, o.rec.Labels[LabelStartedAt]); err == nil {
		e.startedAt = t
	}
	return e
}

// Apply converges once to specs and returns one result per spec (in
// order) followed by one per managed container it stops. It never waits
// for an image: a missing one is fetched in the background and the
// container reported StatusPending. A container that is stopped waits up to
// StopTimeout. Invalid specs fail with every problem named and leave any
// container of their id as it is.
func (c *Converger) Apply(ctx context.Context, specs []Spec) []qos.IntentResult {
	c.pass.Lock()
	defer c.pass.Unlock()
	now := c.cfg.Now()
	results := make([]qos.IntentResult, 0, len(specs))
	states := make(map[string]ContainerState, len(specs))
	result := func(intent, id string, status qos.ResultStatus, err error) {
		r := qos.IntentResult{Intent: intent, Target: id, Status: status, At: now}
		if err != nil {
			r.Err = err.Error()
		}
		results = append(results, r)
	}
	defer func() {
		c.logTransitions(ctx, results)
		ids := make([]string, len(specs))
		for i, s := range specs {
			ids[i] = s.ID
		}
		if err := c.rotateLogs(ids); err != nil {
			c.log.Warn("container logs not rotated", "err", err)
		}
		var due time.Time
		for _, st := range states {
			if !st.NextAttempt.IsZero() && (due.IsZero() || st.NextAttempt.Before(due)) {
				due = st.NextAttempt
			}
		}
		c.mu.Lock()
		c.states, c.results, c.due = states, results, due
		c.mu.Unlock()
	}()

	if c.cfg.KubeletManaged {
		for _, s := range specs {
			result(IntentLaunch, s.ID, qos.ResultUnsupported, ErrKubeletManaged)
			states[s.ID] = ContainerState{ID: s.ID, Job: s.Job, Replica: s.Replica, Class: s.Class, Phase: PhaseAbsent, LastError: ErrKubeletManaged.Error()}
		}
		return results
	}

	nctx := namespaces.WithNamespace(ctx, c.cfg.Namespace)
	seen, err := c.list(nctx)
	if err != nil {
		err = fmt.Errorf("namespace %s: %w", c.cfg.Namespace, err)
		for _, s := range specs {
			result(IntentContainer, s.ID, qos.ResultFailed, err)
		}
		// Keep the last states: the containers did not change because the
		// converger cannot see them.
		c.mu.Lock()
		states = c.states
		c.mu.Unlock()
		return results
	}

	targeted := map[string]bool{}
	for _, s := range specs {
		if targeted[s.ID] {
			result(IntentContainer, s.ID, qos.ResultFailed, fmt.Errorf("container %s: targeted twice; the first spec wins", s.ID))
			continue
		}
		targeted[s.ID] = true
		st := ContainerState{ID: s.ID, Job: s.Job, Replica: s.Replica, Class: s.Class, Phase: PhaseAbsent}
		intent, status, err := c.converge(nctx, s, seen[s.ID], now, &st)
		if err != nil {
			st.LastError = err.Error()
		}
		states[s.ID] = st
		result(intent, s.ID, status, err)
	}

	ids := make([]string, 0, len(seen))
	for id, o := range seen {
		if !targeted[id] && o.managed() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	results = append(results, c.stopAll(nctx, ids, now)...)
	return results
}

// maxParallelStops bounds how many containers are stopped at once: each
// may take StopTimeout, and a deleted job stops all its replicas together.
const maxParallelStops = 8

// stopAll stops and removes the managed containers ids, several at once,
// and returns their results in ids' order.
func (c *Converger) stopAll(ctx context.Context, ids []string, now time.Time) []qos.IntentResult {
	out := make([]qos.IntentResult, len(ids))
	sem := make(chan struct{}, maxParallelStops)
	var wg sync.WaitGroup
	for i, id := range ids {
		out[i] = qos.IntentResult{Intent: IntentStop, Target: id, Status: qos.ResultApplied, At: now}
		if c.cfg.DryRun {
			out[i].Status = qos.ResultDryRun
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := c.remove(ctx, id)
			if err == nil {
				err = c.removeLogs(id)
			}
			if err != nil {
				out[i].Status, out[i].Err = qos.ResultFailed, err.Error()
			}
		}()
	}
	wg.Wait()
	return out
}

// list reads every container of the namespace and its task in two calls.
func (c *Converger) list(ctx context.Context) (map[string]observed, error) {
	cs, err := c.cfg.Client.ContainerService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	resp, err := c.cfg.Client.TaskService().List(ctx, &tasks.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", errgrpc.ToNative(err))
	}
	out := make(map[string]observed, len(cs))
	for _, rec := range cs {
		out[rec.ID] = observed{rec: rec}
	}
	for _, p := range resp.Tasks {
		if o, ok := out[p.ID]; ok {
			o.task = p
			out[p.ID] = o
		}
	}
	return out, nil
}

// converge brings one targeted container to its spec and fills st.
func (c *Converger) converge(ctx context.Context, s Spec, o observed, now time.Time, st *ContainerState) (string, qos.ResultStatus, error) {
	if o.managed() {
		// What is there now, also when the spec below is refused.
		st.Restarts = o.count(LabelRestarts)
		if o.task != nil && o.task.Status == task.Status_RUNNING {
			st.Phase, st.Pid = PhaseRunning, o.task.Pid
		}
	}
	if err := s.Validate(); err != nil {
		return IntentContainer, qos.ResultFailed, fmt.Errorf("container %s: invalid spec: %w", s.ID, err)
	}
	parent, ok := c.cfg.Parents[s.Class]
	if !ok {
		return IntentContainer, qos.ResultFailed, fmt.Errorf("container %s: no parent cgroup for class %s", s.ID, s.Class)
	}
	st.CgroupPath = path.Join(parent, s.ID)
	exists := o.rec.ID != ""
	if exists && !o.managed() {
		return IntentContainer, qos.ResultFailed, fmt.Errorf("container %s: exists without label %s=%s: not launched by sluice, left alone", s.ID, LabelManagedBy, ManagedBy)
	}
	switch {
	case !exists:
		return c.launch(ctx, s, st, IntentLaunch, "")
	case o.rec.Labels[LabelSpec] != s.digest():
		return c.launch(ctx, s, st, IntentReplace, s.ID)
	case o.task == nil || o.task.Status == task.Status_CREATED:
		return c.startExisting(ctx, s, o, st, IntentLaunch, o.count(LabelCrashStreak))
	case o.task.Status != task.Status_STOPPED:
		st.Phase, st.Pid = PhaseRunning, o.task.Pid
		return IntentContainer, qos.ResultUnchanged, nil
	}
	// Exited.
	e := o.lastExit()
	st.Phase, st.ExitCode, st.ExitedAt = PhaseExited, e.code, e.exitedAt
	at, streak, again := restartAt(s.Restart, e, c.cfg.Backoff)
	switch {
	case !again:
		return IntentContainer, qos.ResultUnchanged, nil
	case c.cfg.DryRun:
		return IntentRestart, qos.ResultDryRun, nil
	case now.Before(at):
		st.Phase, st.NextAttempt = PhasePending, at
		return IntentRestart, StatusPending, fmt.Errorf("container %s: exited with status %d; restart %d backs off until %s", s.ID, st.ExitCode, st.Restarts+1, at.Format(time.RFC3339Nano))
	}
	return c.startExisting(ctx, s, o, st, IntentRestart, streak)
}

// launch creates and starts s's container; replacing names an existing
// container to remove once the new image is ready.
func (c *Converger) launch(ctx context.Context, s Spec, st *ContainerState, intent, replacing string) (string, qos.ResultStatus, error) {
	if c.cfg.DryRun {
		present, err := c.images.present(ctx, s)
		if err != nil {
			return intent, qos.ResultFailed, fmt.Errorf("container %s: %w", s.ID, err)
		}
		if !present {
			return intent, qos.ResultDryRun, fmt.Errorf("container %s: image %s would be fetched first", s.ID, s.Image)
		}
		return intent, qos.ResultDryRun, nil
	}
	img, retryAt, err := c.images.get(ctx, s)
	st.NextAttempt = retryAt
	if errors.Is(err, errImagePending) {
		st.Phase = PhasePending
		return intent, StatusPending, fmt.Errorf("container %s: waiting for image %s", s.ID, s.Image)
	}
	if err != nil {
		return intent, qos.ResultFailed, fmt.Errorf("container %s: %w", s.ID, err)
	}
	if replacing != "" {
		if err := c.remove(ctx, replacing); err != nil {
			return intent, qos.ResultFailed, fmt.Errorf("replace: %w", err)
		}
		st.Restarts = 0
	}
	cont, err := c.create(ctx, s, img, st.CgroupPath, c.cfg.Now())
	if err != nil {
		return intent, qos.ResultFailed, err
	}
	pid, err := c.startTask(ctx, cont)
	if err != nil {
		return intent, qos.ResultFailed, fmt.Errorf("container %s: %w", s.ID, err)
	}
	st.Phase, st.Pid = PhaseRunning, pid
	return intent, qos.ResultApplied, nil
}

// startExisting starts the task of a container that has none, a created
// one, or an exited one (after deleting the dead task); streak is the crash
// streak to record.
func (c *Converger) startExisting(ctx context.Context, s Spec, o observed, st *ContainerState, intent string, streak int) (string, qos.ResultStatus, error) {
	if c.cfg.DryRun {
		return intent, qos.ResultDryRun, nil
	}
	cont, err := c.cfg.Client.LoadContainer(ctx, s.ID)
	if err != nil {
		return intent, qos.ResultFailed, fmt.Errorf("container %s: load: %w", s.ID, err)
	}
	if o.task != nil && o.task.Status == task.Status_STOPPED {
		t, err := cont.Task(ctx, nil)
		if err != nil {
			return intent, qos.ResultFailed, fmt.Errorf("container %s: load task: %w", s.ID, err)
		}
		if _, err := t.Delete(ctx); err != nil {
			return intent, qos.ResultFailed, fmt.Errorf("container %s: delete exited task: %w", s.ID, err)
		}
	}
	restarts := st.Restarts
	if intent == IntentRestart {
		restarts++
	}
	labels := map[string]string{
		LabelRestarts:    strconv.Itoa(restarts),
		LabelCrashStreak: strconv.Itoa(streak),
		LabelStartedAt:   c.cfg.Now().UTC().Format(time.RFC3339Nano),
	}
	if _, err := cont.SetLabels(ctx, labels); err != nil {
		return intent, qos.ResultFailed, fmt.Errorf("container %s: record start: %w", s.ID, err)
	}
	st.Restarts = restarts
	pid, err := c.startTask(ctx, cont)
	if err != nil {
		return intent, qos.ResultFailed, fmt.Errorf("container %s: %w", s.ID, err)
	}
	st.Phase, st.Pid, st.ExitCode, st.ExitedAt = PhaseRunning, pid, 0, time.Time{}
	return intent, qos.ResultApplied, nil
}
