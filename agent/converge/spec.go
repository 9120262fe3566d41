package converge

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/pkg/identifiers"

	"github.com/sluicehq/sluice/agent/discovery"
	"github.com/sluicehq/sluice/qos"
)

// Labels the converger puts on every container it launches. Discovery reads
// the class and priority ones; the others let a restarted converger tell
// its containers from everyone else's and notice a changed spec.
const (
	LabelClass     = discovery.LabelClass
	LabelPriority  = discovery.LabelPriority
	LabelManagedBy = "sluice.io/managed-by"
	LabelJob       = "sluice.io/job"
	LabelReplica   = "sluice.io/replica"
	// LabelSpec is a digest of the Spec the container was created from; a
	// different digest means the container must be replaced.
	LabelSpec = "sluice.io/spec"
	// LabelRestarts counts restarts, kept on the container so that a
	// restarted agent reports and backs off where the last one stopped.
	LabelRestarts = "sluice.io/restarts"
	// LabelCrashStreak counts restarts since the task last ran for
	// Backoff.ResetAfter; the backoff grows with it.
	LabelCrashStreak = "sluice.io/crash-streak"
	// LabelStartedAt is when the current task was started (RFC 3339).
	LabelStartedAt = "sluice.io/started-at"

	// ManagedBy is LabelManagedBy's value. Containers without it are never
	// touched.
	ManagedBy = "sluice"

	reservedLabelPrefix = "sluice.io/"
)

// RestartPolicy says what happens when a container's task exits.
type RestartPolicy string

const (
	// RestartAlways restarts after every exit (services).
	RestartAlways RestartPolicy = "always"
	// RestartOnFailure restarts after a non-zero exit status only (batch).
	RestartOnFailure RestartPolicy = "on-failure"
	// RestartNever leaves the exited container as it is.
	RestartNever RestartPolicy = "never"
)

// Spec is one container the brain wants on this host.
type Spec struct {
	// ID is the stable name the brain gave the replica; it is the
	// containerd container id (containerd's identifier rules: letters,
	// digits, and . _ - between them, at most 76 characters).
	ID      string `json:"id"`
	Job     string `json:"job"`
	Replica int    `json:"replica"`
	// Image is the image reference. When ImageTar is set and the image is
	// not in containerd yet, the archive (OCI layout or docker save tar) is
	// imported and must contain Image; otherwise Image is pulled.
	Image    string `json:"image"`
	ImageTar string `json:"imageTar,omitempty"`
	// Command replaces the image's entrypoint and command when not empty.
	Command []string `json:"command,omitempty"`
	// Env entries are KEY=VALUE and override the image's.
	Env []string `json:"env,omitempty"`
	// CPUMilli caps the container's CPU in milli-CPUs (0: no cap of its
	// own; the class parent's cap still holds).
	CPUMilli int64 `json:"cpuMilli,omitempty"`
	// MemoryBytes is the container's memory limit (0: no limit of its own).
	MemoryBytes uint64    `json:"memoryBytes,omitempty"`
	Class       qos.Class `json:"class"`
	Priority    int       `json:"priority"`
	// Labels are extra container labels; keys under sluice.io/ are the
	// converger's own and are refused.
	Labels  map[string]string `json:"labels,omitempty"`
	Restart RestartPolicy     `json:"restart"`
}

// Validate reports every problem of s at once, each naming its field.
func (s Spec) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, a...)))
	}
	if err := identifiers.Validate(s.ID); err != nil {
		bad("id", "%v", err)
	}
	if strings.TrimSpace(s.Image) == "" {
		bad("image", "empty")
	}
	if s.Replica < 0 {
		bad("replica", "negative (%d)", s.Replica)
	}
	if s.CPUMilli < 0 {
		bad("cpuMilli", "negative (%d)", s.CPUMilli)
	}
	if _, err := qos.ParseClass(string(s.Class)); err != nil {
		bad("class", "%v", err)
	}
	switch s.Restart {
	case RestartAlways, RestartOnFailure, RestartNever:
	default:
		bad("restart", "unknown policy %q (want always, on-failure or never)", s.Restart)
	}
	for i, e := range s.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			bad(fmt.Sprintf("env[%d]", i), "%q is not KEY=VALUE", e)
		}
	}
	for k := range s.Labels {
		if strings.HasPrefix(k, reservedLabelPrefix) {
			bad("labels."+k, "keys under %s are set by sluice", reservedLabelPrefix)
		}
	}
	return errors.Join(errs...)
}

// digest is a short hash of everything that shapes the container; two
// specs with the same digest give the same container.
func (s Spec) digest() string {
	b, err := json.Marshal(s)
	if err != nil {
		// A Spec holds only strings, numbers and string maps.
		panic(fmt.Sprintf("converge: encode spec: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// containerLabels are the labels of the container launched for s at
// startedAt.
func (s Spec) containerLabels(startedAt time.Time) map[string]string {
	l := make(map[string]string, len(s.Labels)+9)
	for k, v := range s.Labels {
		l[k] = v
	}
	l[LabelClass] = string(s.Class)
	l[LabelPriority] = strconv.Itoa(s.Priority)
	l[LabelManagedBy] = ManagedBy
	l[LabelJob] = s.Job
	l[LabelReplica] = strconv.Itoa(s.Replica)
	l[LabelSpec] = s.digest()
	l[LabelRestarts] = "0"
	l[LabelCrashStreak] = "0"
	l[LabelStartedAt] = startedAt.UTC().Format(time.RFC3339Nano)
	return l
}

// Backoff is the delay between restarts of a crashing container: Min
// after the first exit, doubling per restart of a crash streak, never above
// Max. A task that ran for ResetAfter before it exited ends the streak, so
// a service that crashes once a day restarts after Min, not Max.
type Backoff struct {
	Min, Max   time.Duration
	ResetAfter time.Duration
}

// Delay is the wait before the next restart after streak earlier ones.
func (b Backoff) Delay(streak int) time.Duration {
	d := b.Min
	for i := 0; i < streak && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// exit is how a container's last task ended.
type exit struct {
	code      uint32
	startedAt time.Time // zero when unknown
	exitedAt  time.Time
	streak    int // restarts in the current crash streak
}

// restartAt decides whether an exited container is started again, when,
// and the crash streak after that restart: never for RestartNever or a
// clean exit under RestartOnFailure, else after the streak's backoff
// counted from the exit.
func restartAt(policy RestartPolicy, e exit, b Backoff) (at time.Time, streak int, again bool) {
	switch {
	case policy == RestartNever:
		return time.Time{}, e.streak, false
	case policy == RestartOnFailure && e.code == 0:
		return time.Time{}, e.streak, false
	}
	streak = e.streak
	if !e.startedAt.IsZero() && e.exitedAt.Sub(e.startedAt) >= b.ResetAfter {
		streak = 0
	}
	return e.exitedAt.Add(b.Delay(streak)), streak + 1, true
}

// SiblingParents places online and system containers beside the policy's
// offline parent, in siblings named after their class: "/sluice/offline"
// gives "/sluice/online" and "/sluice/system". An offline parent directly
// under the root ("/batch") gives "/online" and "/system".
func SiblingParents(offlineParent string) map[qos.Class]string {
	offline := path.Clean("/" + offlineParent)
	dir := path.Dir(offline)
	return map[qos.Class]string{
		qos.ClassOffline: offline,
		qos.ClassOnline:  path.Join(dir, string(qos.ClassOnline)),
		qos.ClassSystem:  path.Join(dir, string(qos.ClassSystem)),
	}
}
