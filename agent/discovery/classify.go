package discovery

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sluicehq/sluice/qos"
)

// Labels and annotations the Kubernetes CRI path leaves on containerd
// containers (containerd pkg/cri: buildLabels adds io.cri-containerd.kind;
// the io.kubernetes.cri.* keys are OCI spec annotations; the
// io.kubernetes.pod.* and io.kubernetes.container.name labels come from
// kubelet's CRI container config).
const (
	labelCRIKind          = "io.cri-containerd.kind"
	labelPodName          = "io.kubernetes.pod.name"
	labelPodNamespace     = "io.kubernetes.pod.namespace"
	labelContainerName    = "io.kubernetes.container.name"
	annotationContainerTy = "io.kubernetes.cri.container-type"
	annotationSandboxID   = "io.kubernetes.cri.sandbox-id"
	criKindSandbox        = "sandbox"
)

// PodQOS is a Kubernetes pod QoS class.
type PodQOS string

const (
	QOSGuaranteed PodQOS = "Guaranteed"
	QOSBurstable  PodQOS = "Burstable"
	QOSBestEffort PodQOS = "BestEffort"
)

// ContainerRecord is what containerd records about a container, reduced to
// what classification needs. Spec fields come from the container's OCI spec.
type ContainerRecord struct {
	Namespace   string
	ID          string
	Labels      map[string]string
	Annotations map[string]string
	// CgroupsPath is the spec's raw linux.cgroupsPath.
	CgroupsPath string
	Resources   *specs.LinuxResources
}

// IsSandbox reports whether the record is a CRI pod sandbox ("pause").
func (r ContainerRecord) IsSandbox() bool {
	return r.Labels[labelCRIKind] == criKindSandbox || r.Annotations[annotationContainerTy] == criKindSandbox
}

// IsKubernetes reports whether the record was created through CRI for a pod.
func (r ContainerRecord) IsKubernetes() bool {
	return r.Labels[labelPodName] != "" || r.Labels[labelCRIKind] != "" || r.Annotations[annotationContainerTy] != ""
}

// SandboxID is the CRI sandbox the container belongs to ("" outside CRI).
func (r ContainerRecord) SandboxID() string { return r.Annotations[annotationSandboxID] }

// Classification is a container's class and priority with the reason and
// any warnings about labels that were ignored.
type Classification struct {
	Class      qos.Class
	Priority   int
	CgroupPath string
	Name       string
	// Reason says which step decided the class, e.g. "label sluice.io/class".
	Reason   string
	Warnings []string
}

// ClassifyContainer classes one container (see the package doc for the
// order of decisions). sandbox is the pod sandbox's record for a Kubernetes
// container, nil otherwise. An unusable cgroups path is an error: the
// container can be neither sampled nor enforced.
func ClassifyContainer(rec ContainerRecord, sandbox *ContainerRecord, rules []qos.ClassRule) (Classification, error) {
	cgPath, err := NormalizeCgroupsPath(rec.CgroupsPath)
	if err != nil {
		return Classification{}, fmt.Errorf("container %s/%s: %w", rec.Namespace, rec.ID, err)
	}
	c := Classification{CgroupPath: cgPath, Name: rec.ID}
	if rec.IsKubernetes() && rec.Labels[labelPodName] != "" {
		c.Name = rec.Labels[labelPodNamespace] + "/" + rec.Labels[labelPodName] + "/" + rec.Labels[labelContainerName]
	}

	class, ok, warn := labelClass(rec.Labels, "container")
	c.Warnings = appendWarn(c.Warnings, warn)
	c.Reason = "label " + LabelClass
	if !ok && sandbox != nil {
		class, ok, warn = labelClass(sandbox.Labels, "pod sandbox")
		c.Warnings = appendWarn(c.Warnings, warn)
		c.Reason = "pod label " + LabelClass
	}
	var rule *qos.ClassRule
	if !ok && rec.IsKubernetes() {
		q := PodQOSClass(cgPath, rec.Resources)
		class, ok = qosToClass(q), true
		c.Reason = "pod QoS " + string(q)
	}
	if !ok {
		if r, matched := MatchRule(rules, cgPath); matched {
			rule, class, ok = &r, r.Class, true
			c.Reason = fmt.Sprintf("rule %q", r.Name)
		}
	}
	if !ok {
		class, c.Reason = qos.ClassOnline, "default (unclassified work is online)"
	}
	c.Class = class

	prio, ok, warn := labelPriority(rec.Labels, "container")
	c.Warnings = appendWarn(c.Warnings, warn)
	if !ok && sandbox != nil {
		prio, ok, warn = labelPriority(sandbox.Labels, "pod sandbox")
		c.Warnings = appendWarn(c.Warnings, warn)
	}
	if !ok && rule != nil {
		prio = rule.Priority
	}
	c.Priority = prio
	return c, nil
}

func appendWarn(ws []string, w string) []string {
	if w == "" {
		return ws
	}
	return append(ws, w)
}

// labelClass reads sluice.io/class; ok is false when absent or invalid
// (then warn says why).
func labelClass(labels map[string]string, whose string) (qos.Class, bool, string) {
	v, present := labels[LabelClass]
	if !present {
		return "", false, ""
	}
	c, err := qos.ParseClass(strings.TrimSpace(v))
	if err != nil {
		return "", false, fmt.Sprintf("%s label %s: %v; falling back to the default rules", whose, LabelClass, err)
	}
	return c, true, ""
}

// labelPriority reads sluice.io/priority; an invalid value is a warning and
// priority 0 (ok true: the label decided, wrongly spelled or not, so a pod
// label does not override it).
func labelPriority(labels map[string]string, whose string) (int, bool, string) {
	v, present := labels[LabelPriority]
	if !present {
		return 0, false, ""
	}
	p, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, true, fmt.Sprintf("%s label %s=%q: not an integer; using priority 0", whose, LabelPriority, v)
	}
	return p, true, ""
}

func qosToClass(q PodQOS) qos.Class {
	if q == QOSBestEffort {
		return qos.ClassOffline
	}
	return qos.ClassOnline
}

// PodQOSClass recovers a Kubernetes pod's QoS class from what the CRI
// plugin records. Neither kubelet nor containerd stores the QoS class
// itself, but kubelet puts every pod under a QoS-specific parent cgroup and
// the CRI plugin derives each container's cgroups path from it
// (pkg/cri/server getCgroupsPath): cgroupfs "/kubepods/besteffort/pod<uid>/<id>",
// "/kubepods/burstable/pod<uid>/<id>", "/kubepods/pod<uid>/<id>" (Guaranteed);
// systemd "kubepods-besteffort-pod<uid>.slice:cri-containerd:<id>" and so on,
// which NormalizeCgroupsPath expands to the same shape. The kubelet option
// --cgroup-root may put "kubepods" below another parent, so the segment is
// searched anywhere in the path.
//
// Only when the path does not say (a non-standard kubelet cgroup layout) do
// the spec's resources decide: no memory limit, no CPU quota and the
// minimum CPU shares kubelet gives a container without a CPU request (2)
// are what a BestEffort container gets; anything else is treated as
// Burstable (online), as Guaranteed and Burstable cannot be told apart from
// one container's spec and are classed the same.
func PodQOSClass(cgroupPath string, res *specs.LinuxResources) PodQOS {
	segs := strings.Split(strings.Trim(cgroupPath, "/"), "/")
	for i, s := range segs {
		if s != "kubepods" && s != "kubepods.slice" {
			continue
		}
		if i+1 >= len(segs) {
			break
		}
		switch next := segs[i+1]; {
		case next == "besteffort" || next == "kubepods-besteffort.slice":
			return QOSBestEffort
		case next == "burstable" || next == "kubepods-burstable.slice":
			return QOSBurstable
		case strings.HasPrefix(next, "pod") || strings.HasPrefix(next, "kubepods-pod"):
			return QOSGuaranteed
		}
		break
	}
	if res == nil {
		return QOSBestEffort
	}
	noMem := res.Memory == nil || res.Memory.Limit == nil || *res.Memory.Limit <= 0
	noQuota := res.CPU == nil || res.CPU.Quota == nil || *res.CPU.Quota <= 0
	minShares := res.CPU == nil || res.CPU.Shares == nil || *res.CPU.Shares <= 2
	if noMem && noQuota && minShares {
		return QOSBestEffort
	}
	return QOSBurstable
}

// MatchRule returns the first rule whose glob (path.Match syntax) matches
// cgroupPath.
func MatchRule(rules []qos.ClassRule, cgroupPath string) (qos.ClassRule, bool) {
	for _, r := range rules {
		if ok, _ := path.Match(r.Cgroup, cgroupPath); ok {
			return r, true
		}
	}
	return qos.ClassRule{}, false
}

// ValidateRules reports every problem in rules at once: a pattern that is
// not absolute or not a valid glob, an unknown class.
func ValidateRules(rules []qos.ClassRule) error {
	var errs []string
	for i, r := range rules {
		where := fmt.Sprintf("rule %d (%q)", i, r.Name)
		if !strings.HasPrefix(r.Cgroup, "/") {
			errs = append(errs, fmt.Sprintf("%s: cgroup %q: must start with '/'", where, r.Cgroup))
		} else if _, err := path.Match(r.Cgroup, ""); err != nil {
			errs = append(errs, fmt.Sprintf("%s: cgroup %q: %v", where, r.Cgroup, err))
		}
		if _, err := qos.ParseClass(string(r.Class)); err != nil {
			errs = append(errs, fmt.Sprintf("%s: class: %v", where, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid class rules: %s", strings.Join(errs, "; "))
	}
	return nil
}
