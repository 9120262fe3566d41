package trace

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/brain/place"
)

// Class is a QoS class: who yields to whom on a shared host.
type Class string

// The three classes; an empty class means ClassOnline.
const (
	ClassSystem  Class = "system"
	ClassOnline  Class = "online"
	ClassOffline Class = "offline"
)

// Or returns c, or ClassOnline when c is empty.
func (c Class) Or() Class {
	if c == "" {
		return ClassOnline
	}
	return c
}

// RestartPolicy says when an agent restarts a container that exited.
type RestartPolicy string

// Restart policies; an empty policy means RestartAlways.
const (
	RestartAlways    RestartPolicy = "always"
	RestartOnFailure RestartPolicy = "on-failure"
	RestartNever     RestartPolicy = "never"
)

// Or returns r, or RestartAlways when r is empty.
func (r RestartPolicy) Or() RestartPolicy {
	if r == "" {
		return RestartAlways
	}
	return r
}

// MaxJobFileBytes bounds a job file submitted to a brain.
const MaxJobFileBytes = 1 << 20

// maxNameLen bounds job and app names: they become etcd keys, container
// names and label values.
const maxNameLen = 63

// ValidName checks a job name: 1..63 characters of [a-z0-9-], starting
// and ending with a letter or digit (a DNS label, so it is safe in etcd
// keys, container IDs and labels).
func ValidName(name string) error {
	if name == "" {
		return errors.New("empty")
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("%d characters, at most %d", len(name), maxNameLen)
	}
	for i, r := range name {
		ok := (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || (r == '-' && i > 0 && i < len(name)-1)
		if !ok {
			return fmt.Errorf("%q: want lower-case letters, digits and inner '-'", name)
		}
	}
	return nil
}

// validateRun checks what a running instance needs.
func (a GenericApp) validateRun(ps *problems, p string) {
	switch a.Class {
	case "", ClassSystem, ClassOnline, ClassOffline:
	default:
		ps.add(p+".class", "%q: want system, online or offline", a.Class)
	}
	switch a.Restart {
	case "", RestartAlways, RestartOnFailure, RestartNever:
	default:
		ps.add(p+".restart", "%q: want always, on-failure or never", a.Restart)
	}
	for k, arg := range a.Command {
		if strings.ContainsRune(arg, 0) {
			ps.add(fmt.Sprintf("%s.command[%d]", p, k), "contains a NUL byte")
		}
	}
	for _, k := range sortedKeys(a.Env) {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			ps.add(p+".env", "name %q: empty or holds '=' or NUL", k)
		}
		if strings.ContainsRune(a.Env[k], 0) {
			ps.add(p+".env."+k, "contains a NUL byte")
		}
	}
}

// Job is a named group of identical instances a brain keeps running: one
// request of a generic file with its app. The same words mean the same in
// a simulation and in a submission.
type Job struct {
	// Name is the request's name, default the app's.
	Name     string     `json:"name"`
	App      GenericApp `json:"app"`
	Count    int        `json:"count"`
	Priority int        `json:"priority,omitempty"`
	Group    string     `json:"group,omitempty"`
	Preempt  bool       `json:"preempt,omitempty"`
	// CurvePoints and DomainLabel are the file's, which the app's curves
	// and spread refer to.
	CurvePoints int    `json:"curve_points,omitempty"`
	DomainLabel string `json:"domain_label,omitempty"`
	// Update says how replicas are replaced when the spec changes.
	Update UpdatePolicy `json:"update,omitzero"`
}

// Update policy defaults.
const (
	DefaultMaxUnavailable = 1
	DefaultUpdateTimeout  = 5 * time.Minute
)

// UpdatePolicy is how a brain rolls a changed job spec out: it replaces at
// most MaxUnavailable replicas at a time and takes the next ones only once
// the new ones are reported running; a batch not running within Timeout
// pauses the rollout with the reason. Zero values mean the defaults.
type UpdatePolicy struct {
	MaxUnavailable int      `yaml:"max_unavailable,omitempty" json:"max_unavailable,omitempty"`
	Timeout        Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// MaxUnavailableOr is MaxUnavailable or its default.
func (u UpdatePolicy) MaxUnavailableOr() int {
	if u.MaxUnavailable <= 0 {
		return DefaultMaxUnavailable
	}
	return u.MaxUnavailable
}

// TimeoutOr is Timeout or its default.
func (u UpdatePolicy) TimeoutOr() time.Duration {
	if u.Timeout <= 0 {
		return DefaultUpdateTimeout
	}
	return time.Duration(u.Timeout)
}

// DecodeJobs reads a job file: a generic file whose hosts, when present,
// are for simulation only. Every request becomes one job; every job must
// name an image and have a valid name. Errors carry path and line as
// DecodeGeneric's do; input over MaxJobFileBytes is refused.
func DecodeJobs(r io.Reader, file string) ([]Job, error) {
	var jobs []Job
	_, err := decodeGeneric(r, file, MaxJobFileBytes, false, func(g *Generic) []FieldError {
		var errs []FieldError
		jobs, errs = g.Jobs()
		return errs
	})
	if err != nil {
		return nil, err
	}
	return jobs, nil
}

// Jobs turns every request into a job, reporting requests that cannot be
// submitted (no image, a name that is not a DNS label, two jobs of one name).
func (g *Generic) Jobs() ([]Job, []FieldError) {
	var ps problems
	if len(g.Requests) == 0 {
		ps.add("requests", "no requests: nothing to submit")
	}
	apps := map[string]GenericApp{}
	for _, a := range g.Apps {
		apps[a.Name] = a
	}
	seen := map[string]bool{}
	var jobs []Job
	for i, r := range g.Requests {
		p := fmt.Sprintf("requests[%d]", i)
		a := apps[r.App]
		name := r.Name
		if name == "" {
			name = r.App
			if err := ValidName(name); err != nil {
				ps.add(p+".app", "app name as job name: %v (give the request a name)", err)
			}
		}
		if seen[name] {
			ps.add(p, "job %q requested twice (give each request its own name)", name)
		}
		seen[name] = true
		if a.Image == "" {
			ps.add(p+".app", "app %q has no image: a submitted job needs one", r.App)
		}
		if len(r.On) > 0 {
			ps.add(p+".on", "existing placements are for simulation only; a brain knows where its jobs run")
		}
		jobs = append(jobs, Job{
			Name: name, App: a, Count: r.Count, Priority: r.Priority, Group: r.Group, Preempt: r.Preempt,
			CurvePoints: g.CurvePoints, DomainLabel: g.Domain(), Update: r.Update,
		})
	}
	return jobs, ps
}

// Validate checks a job that did not come from a file (an API message);
// problems are reported at once with paths relative to the job.
func (j Job) Validate() error {
	var ps problems
	if err := ValidName(j.Name); err != nil {
		ps.add("name", "%v", err)
	}
	if j.Count < 0 {
		ps.add("count", "negative")
	}
	if j.App.Image == "" {
		ps.add("app.image", "empty")
	}
	if j.CurvePoints < 0 {
		ps.add("curve_points", "negative")
	}
	if j.Update.MaxUnavailable < 0 {
		ps.add("update.max_unavailable", "negative")
	}
	if j.Update.Timeout < 0 {
		ps.add("update.timeout", "negative")
	}
	// Anti-affinity may name apps of other jobs, so every name is known here.
	all := map[string]bool{}
	for _, aa := range j.App.AntiAffinity {
		all[aa.App] = true
	}
	j.App.validate(&ps, "app", j.CurvePoints, all)
	if len(ps) > 0 {
		return fieldErrors(ps, "job "+j.Name, nil)
	}
	return nil
}

// fieldErrors joins problems into one error wrapping ErrInvalid.
func fieldErrors(errs []FieldError, file string, lineOf func(string) int) error {
	msgs := make([]string, len(errs))
	for i := range errs {
		errs[i].File = file
		if lineOf != nil {
			errs[i].Line = lineOf(errs[i].Path)
		}
		msgs[i] = errs[i].Error()
	}
	return fmt.Errorf("%w:\n%s", ErrInvalid, strings.Join(msgs, "\n"))
}

// Demand is one instance's peak demand in place's units.
func (a GenericApp) Demand() place.Resources {
	r := place.Resources{place.DimCPU: int64(a.CPU), place.DimMemory: int64(a.Memory)}
	if a.Disk > 0 {
		r[place.DimDisk] = int64(a.Disk)
	}
	for k, v := range a.Extended {
		r[k] = v
	}
	return r
}

// GPURequest is one instance's GPU need.
func (a GenericApp) GPURequest() place.GPURequest {
	if a.GPU == nil {
		return place.GPURequest{}
	}
	return place.GPURequest{Count: a.GPU.Count, SharedMilli: a.GPU.SharedMilli, Models: a.GPU.Models}
}

// CurveDemand turns the app's fractional curves into absolute ones.
func (a GenericApp) CurveDemand() map[string][]int64 {
	if len(a.Curves) == 0 {
		return nil
	}
	peak := map[string]int64{"cpu": int64(a.CPU), "memory": int64(a.Memory)}
	out := make(map[string][]int64, len(a.Curves))
	for dim, pts := range a.Curves {
		c := make([]int64, len(pts))
		for i, f := range pts {
			c[i] = int64(f*float64(peak[dim]) + 0.5)
		}
		out[dim] = c
	}
	return out
}

// Rules are the app's placement rules in place's terms; domainLabel is the
// file's default failure-domain label.
func (a GenericApp) Rules(domainLabel string) ([]place.AntiAffinity, []place.Spread) {
	var aas []place.AntiAffinity
	for _, aa := range a.AntiAffinity {
		limit := aa.MaxTogether
		if aa.App == a.Name {
			// max_together counts every instance on the host; place's
			// same-app rule counts the others next to one.
			limit--
		}
		aas = append(aas, place.AntiAffinity{App: a.Name, Other: aa.App, MaxOther: limit})
	}
	if a.MaxPerHost > 0 {
		aas = append(aas, place.AntiAffinity{App: a.Name, Other: a.Name, MaxOther: a.MaxPerHost - 1})
	}
	var spreads []place.Spread
	if a.Spread != nil {
		label := a.Spread.DomainLabel
		if label == "" {
			label = domainLabel
		}
		if label == "" {
			label = DefaultDomainLabel
		}
		spreads = append(spreads, place.Spread{App: a.Name, DomainLabel: label, MaxSkew: a.Spread.MaxSkew})
	}
	return aas, spreads
}

// ReplicaID names replica i of a job: "<job>-<i>".
func ReplicaID(job string, i int) string { return job + "-" + strconv.Itoa(i) }

// Request is replica i's placement request.
func (j Job) Request(i int) place.Request {
	return place.Request{
		ID:       ReplicaID(j.Name, i),
		App:      j.App.Name,
		Group:    j.Group,
		Priority: j.Priority,
		Demand:   j.App.Demand(),
		Curves:   j.App.CurveDemand(),
		GPU:      j.App.GPURequest(),
		Selector: j.App.Selector,
		Preempt:  j.Preempt,
	}
}

// SortJobs orders jobs by name.
func SortJobs(jobs []Job) {
	sort.Slice(jobs, func(a, b int) bool { return jobs[a].Name < jobs[b].Name })
}
