package discovery

import (
	"time"

	"github.com/sluicehq/sluice/qos"
)

// Source says where a workload was discovered.
const (
	SourceContainerd = "containerd"
	SourceRule       = "rule"
)

// Labels read by discovery.
const (
	LabelClass    = "sluice.io/class"
	LabelPriority = "sluice.io/priority"
)

// Workload is one unit of work the agent samples, classes and may kill.
type Workload struct {
	// ID is the container id (unique within Namespace) or, for a rule
	// workload, its cgroup path.
	ID string
	// Namespace is the containerd namespace; empty for rule workloads.
	Namespace string
	// Name is "<pod namespace>/<pod>/<container>" for Kubernetes
	// containers, the container id for other containers, and the rule's
	// name for rule workloads.
	Name     string
	Class    qos.Class
	Priority int
	// CgroupPath is relative to every hierarchy root, starts with "/" and
	// is never "" or "/" for a container.
	CgroupPath string
	// StartedAt is when the task's init process started (container
	// creation time when that cannot be read); for rule workloads the
	// cgroup directory's modification time.
	StartedAt time.Time
	// Source is SourceContainerd or SourceRule.
	Source string
	// Labels are the container's containerd labels (nil for rule workloads).
	// Read-only: Workloads returns copies.
	Labels map[string]string
}

// Key identifies a workload across snapshots.
func (w Workload) Key() string {
	if w.Source == SourceRule {
		return "rule:" + w.CgroupPath
	}
	return w.Namespace + "/" + w.ID
}

func (w Workload) clone() Workload {
	if w.Labels != nil {
		l := make(map[string]string, len(w.Labels))
		for k, v := range w.Labels {
			l[k] = v
		}
		w.Labels = l
	}
	return w
}
