package trace

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// GenericVersion is the only version of the generic format.
const GenericVersion = 1

// Generic is a hand-written cluster: hosts, apps, requests and group
// quotas. See the package documentation for the format.
type Generic struct {
	Version int `yaml:"version"`
	// CurvePoints is the length of every demand curve (e.g. 96 = a day in
	// 15-minute steps); 0 when no app has curves.
	CurvePoints int `yaml:"curve_points,omitempty"`
	// DomainLabel is the host label that names failure domains; hosts'
	// failure_domain sets it. Default "failure_domain".
	DomainLabel string `yaml:"domain_label,omitempty"`
	// Lending lets groups borrow quota other groups leave unused.
	Lending  bool             `yaml:"lending,omitempty"`
	Hosts    []GenericHost    `yaml:"hosts"`
	Apps     []GenericApp     `yaml:"apps"`
	Requests []GenericRequest `yaml:"requests"`
	Quotas   []GenericQuota   `yaml:"quotas,omitempty"`
	Profile  *GenericProfile  `yaml:"profile,omitempty"`
}

// GenericHost is one host, or Count identical hosts named Name-0..Name-(Count-1).
type GenericHost struct {
	Name          string            `yaml:"name"`
	Count         int               `yaml:"count,omitempty"`
	CPU           MilliCPU          `yaml:"cpu"`
	Memory        Bytes             `yaml:"memory"`
	Disk          Bytes             `yaml:"disk,omitempty"`
	GPUs          int               `yaml:"gpus,omitempty"`
	GPUModel      string            `yaml:"gpu_model,omitempty"`
	Extended      map[string]int64  `yaml:"extended,omitempty"`
	Labels        map[string]string `yaml:"labels,omitempty"`
	FailureDomain string            `yaml:"failure_domain,omitempty"`
	// Cost is what one host of this shape costs in a planning objective,
	// in any unit shared by the file's hosts; 0 means 1 (UnitCost).
	Cost float64 `yaml:"cost,omitempty"`
}

// UnitCost is the host's cost in the objective: Cost, or 1 when unset.
func (h GenericHost) UnitCost() float64 {
	if h.Cost == 0 {
		return 1
	}
	return h.Cost
}

// GenericApp is what one instance of an app needs and the rules its
// instances follow.
type GenericApp struct {
	Name     string           `yaml:"name" json:"name"`
	CPU      MilliCPU         `yaml:"cpu" json:"cpu"`
	Memory   Bytes            `yaml:"memory" json:"memory"`
	Disk     Bytes            `yaml:"disk,omitempty" json:"disk,omitempty"`
	Extended map[string]int64 `yaml:"extended,omitempty" json:"extended,omitempty"`
	GPU      *GenericGPU      `yaml:"gpu,omitempty" json:"gpu,omitempty"`
	// Curves maps "cpu" or "memory" to curve_points fractions in [0,1] of
	// the app's peak; a point's demand is round(fraction x peak).
	Curves       map[string]Curve      `yaml:"curves,omitempty" json:"curves,omitempty"`
	Selector     map[string]string     `yaml:"selector,omitempty" json:"selector,omitempty"`
	AntiAffinity []GenericAntiAffinity `yaml:"anti_affinity,omitempty" json:"anti_affinity,omitempty"`
	// MaxPerHost caps the app's instances per host (0 = no cap).
	MaxPerHost int            `yaml:"max_per_host,omitempty" json:"max_per_host,omitempty"`
	Spread     *GenericSpread `yaml:"spread,omitempty" json:"spread,omitempty"`
	// Class is the QoS class every instance runs in: system, online or
	// offline (default online). The brain places offline instances against
	// what hosts lend, the others against their requests.
	Class Class `yaml:"class,omitempty" json:"class,omitempty"`
	// What only a running instance needs; the simulator ignores it, the
	// brain requires Image.
	Image   string            `yaml:"image,omitempty" json:"image,omitempty"`
	Command []string          `yaml:"command,omitempty" json:"command,omitempty"`
	Env     map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
	Restart RestartPolicy     `yaml:"restart,omitempty" json:"restart,omitempty"`
}

// GenericGPU is either whole devices or a shared fraction of one.
type GenericGPU struct {
	Count       int      `yaml:"count,omitempty" json:"count,omitempty"`
	SharedMilli int64    `yaml:"shared_milli,omitempty" json:"shared_milli,omitempty"`
	Models      []string `yaml:"models,omitempty" json:"models,omitempty"`
}

// GenericAntiAffinity: on a host running this app, at most MaxTogether
// instances of App. When App is the app itself the count includes every
// instance on the host, so max_together N caps the app at N per host (as
// max_per_host: N does) and must be at least 1.
type GenericAntiAffinity struct {
	App         string `yaml:"app" json:"app"`
	MaxTogether int    `yaml:"max_together" json:"max_together"`
}

// GenericSpread balances the app's instances across failure domains.
type GenericSpread struct {
	// DomainLabel defaults to the file's domain_label.
	DomainLabel string `yaml:"domain_label,omitempty" json:"domain_label,omitempty"`
	MaxSkew     int    `yaml:"max_skew" json:"max_skew"`
}

// GenericRequest asks for Count instances of App.
type GenericRequest struct {
	// Name names the job the request becomes when submitted to a brain;
	// default the app's name.
	Name     string `yaml:"name,omitempty"`
	App      string `yaml:"app"`
	Count    int    `yaml:"count"`
	Priority int    `yaml:"priority,omitempty"`
	Group    string `yaml:"group,omitempty"`
	Preempt  bool   `yaml:"preempt,omitempty"`
	// On lists existing placements: the hosts the request's first len(On)
	// instances run on now (a host may repeat). The simulator starts from
	// them and places the rest.
	On []string `yaml:"on,omitempty"`
	// Update says how a brain replaces the job's replicas when its spec
	// changes; the simulator ignores it.
	Update UpdatePolicy `yaml:"update,omitempty"`
}

// GenericQuota caps a group; unset dimensions are not capped.
type GenericQuota struct {
	Group    string   `yaml:"group"`
	CPU      MilliCPU `yaml:"cpu,omitempty"`
	Memory   Bytes    `yaml:"memory,omitempty"`
	GPUMilli int64    `yaml:"gpu_milli,omitempty"`
}

// DefaultDomainLabel is the failure-domain label when the file names none.
const DefaultDomainLabel = "failure_domain"

// FieldError is one problem at a path in a generic file.
type FieldError struct {
	File string
	Line int // 0 when unknown
	Path string
	Msg  string
}

func (e FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Path, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Path, e.Msg)
}

// ErrInvalid is wrapped by every error about a generic file's content.
var ErrInvalid = errors.New("invalid generic trace")

// DecodeGeneric reads a generic file strictly: unknown fields, type
// mismatches and invalid values are errors; every validation problem is
// reported at once, each with its path and line. file names the source.
func DecodeGeneric(r io.Reader, file string) (*Generic, error) {
	return decodeGeneric(r, file, MaxGenericBytes, true, nil)
}

// MaxGenericBytes bounds a generic file the simulator reads (curves of a
// few thousand apps fit).
const MaxGenericBytes = 64 << 20

// decodeGeneric decodes and validates; then, on a valid file, runs check,
// whose problems get lines too.
func decodeGeneric(r io.Reader, file string, maxBytes int64, needHosts bool, check func(*Generic) []FieldError) (*Generic, error) {
	data, err := ReadAll(r, maxBytes)
	if errors.Is(err, ErrLimit) {
		return nil, fmt.Errorf("%s: %w: %w", file, ErrInvalid, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	var g Generic
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&g); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("%s: %w: empty file", file, ErrInvalid)
		}
		return nil, fmt.Errorf("%s: %w: %w", file, ErrInvalid, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, fmt.Errorf("%s: %w: more than one document", file, ErrInvalid)
	}
	g.normalize()
	errs := g.validate(needHosts)
	if len(errs) == 0 && check != nil {
		errs = check(&g)
	}
	if len(errs) > 0 {
		var root yaml.Node
		// The strict decode succeeded, so the node parse cannot fail; the
		// nodes only give errors their lines, and a large file's node tree
		// costs hundreds of MB, so only a bad file pays for it.
		_ = yaml.Unmarshal(data, &root)
		return nil, fieldErrors(errs, file, func(path string) int { return lineOf(&root, path) })
	}
	return &g, nil
}

// EncodeGeneric writes g in the form DecodeGeneric reads.
func EncodeGeneric(w io.Writer, g *Generic) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(g); err != nil {
		return fmt.Errorf("encode generic trace: %w", err)
	}
	return enc.Close()
}

// normalize drops empty collections, so "extended: {}" and no extended
// mean the same and a round trip is exact.
func (g *Generic) normalize() {
	g.Hosts = nilIfEmpty(g.Hosts)
	g.Apps = nilIfEmpty(g.Apps)
	g.Requests = nilIfEmpty(g.Requests)
	g.Quotas = nilIfEmpty(g.Quotas)
	for i := range g.Requests {
		g.Requests[i].On = nilIfEmpty(g.Requests[i].On)
	}
	for i := range g.Hosts {
		h := &g.Hosts[i]
		h.Extended = nilIfEmptyMap(h.Extended)
		h.Labels = nilIfEmptyMap(h.Labels)
	}
	for i := range g.Apps {
		a := &g.Apps[i]
		a.Extended = nilIfEmptyMap(a.Extended)
		a.Selector = nilIfEmptyMap(a.Selector)
		a.Curves = nilIfEmptyMap(a.Curves)
		for k, v := range a.Curves {
			a.Curves[k] = nilIfEmpty(v)
		}
		a.AntiAffinity = nilIfEmpty(a.AntiAffinity)
		a.Command = nilIfEmpty(a.Command)
		a.Env = nilIfEmptyMap(a.Env)
		if a.GPU != nil {
			a.GPU.Models = nilIfEmpty(a.GPU.Models)
		}
	}
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func nilIfEmptyMap[K comparable, V any](m map[K]V) map[K]V {
	if len(m) == 0 {
		return nil
	}
	return m
}

// Domain returns the failure-domain label in effect.
func (g *Generic) Domain() string {
	if g.DomainLabel == "" {
		return DefaultDomainLabel
	}
	return g.DomainLabel
}

// problems collects validation errors, each at its path.
type problems []FieldError

func (ps *problems) add(path, format string, args ...any) {
	*ps = append(*ps, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// validate checks the whole file; needHosts is false for a file submitted
// to a brain, whose hosts are the registered ones.
func (g *Generic) validate(needHosts bool) []FieldError {
	var ps problems
	if g.Version != GenericVersion {
		ps.add("version", "got %d, want %d", g.Version, GenericVersion)
	}
	if g.CurvePoints < 0 {
		ps.add("curve_points", "negative")
	}
	hostNames := g.validateHosts(&ps)
	if needHosts && len(g.Hosts) == 0 {
		ps.add("hosts", "no hosts")
	}
	apps := map[string]bool{}
	for _, a := range g.Apps {
		apps[a.Name] = true
	}
	seenApp := map[string]bool{}
	for i, a := range g.Apps {
		p := fmt.Sprintf("apps[%d]", i)
		switch {
		case a.Name == "":
			ps.add(p+".name", "empty")
		case seenApp[a.Name]:
			ps.add(p+".name", "duplicate app %q", a.Name)
		}
		seenApp[a.Name] = true
		a.validate(&ps, p, g.CurvePoints, apps)
	}
	g.validateRequests(&ps, apps, hostNames)
	g.validateQuotas(&ps)
	return ps
}

// validateHosts checks the hosts and returns every host name.
func (g *Generic) validateHosts(ps *problems) map[string]bool {
	hostNames := map[string]bool{}
	for i, h := range g.Hosts {
		p := fmt.Sprintf("hosts[%d]", i)
		if h.Name == "" {
			ps.add(p+".name", "empty")
		}
		if h.Count < 0 {
			ps.add(p+".count", "negative")
		}
		for _, n := range h.Names() {
			if hostNames[n] {
				ps.add(p+".name", "duplicate host %q", n)
			}
			hostNames[n] = true
		}
		if h.CPU <= 0 {
			ps.add(p+".cpu", "must be positive")
		}
		if h.Memory <= 0 {
			ps.add(p+".memory", "must be positive")
		}
		if h.GPUs < 0 {
			ps.add(p+".gpus", "negative")
		}
		if h.GPUs > 0 && h.GPUModel == "" {
			ps.add(p+".gpu_model", "empty for a host with gpus")
		}
		badExtended(ps, p, h.Extended)
		if _, ok := h.Labels[g.Domain()]; ok && h.FailureDomain != "" {
			ps.add(p+".labels", "label %q and failure_domain both set", g.Domain())
		}
		if h.Cost < 0 || math.IsNaN(h.Cost) || math.IsInf(h.Cost, 0) {
			ps.add(p+".cost", "%v: want a finite cost >= 0 (0 means 1)", h.Cost)
		}
	}
	return hostNames
}

// validate checks one app at path p; apps names every app in the file.
func (a GenericApp) validate(ps *problems, p string, curvePoints int, apps map[string]bool) {
	if a.CPU < 0 {
		ps.add(p+".cpu", "negative")
	}
	if a.Memory < 0 {
		ps.add(p+".memory", "negative")
	}
	badExtended(ps, p, a.Extended)
	if gpu := a.GPU; gpu != nil {
		switch {
		case gpu.Count < 0:
			ps.add(p+".gpu.count", "negative")
		case gpu.SharedMilli < 0 || gpu.SharedMilli >= 1000:
			ps.add(p+".gpu.shared_milli", "%d is outside 1..999", gpu.SharedMilli)
		case gpu.Count > 0 && gpu.SharedMilli > 0:
			ps.add(p+".gpu", "count and shared_milli both set")
		}
	}
	a.validateCurves(ps, p, curvePoints)
	for k, aa := range a.AntiAffinity {
		ap := fmt.Sprintf("%s.anti_affinity[%d]", p, k)
		if !apps[aa.App] {
			ps.add(ap+".app", "unknown app %q", aa.App)
		}
		switch {
		case aa.MaxTogether < 0:
			ps.add(ap+".max_together", "negative")
		case aa.App == a.Name && aa.MaxTogether == 0:
			ps.add(ap+".max_together", "0 for the app itself: the count includes the instance, so 0 would forbid %q everywhere (1 = one per host)", a.Name)
		}
	}
	if a.MaxPerHost < 0 {
		ps.add(p+".max_per_host", "negative")
	}
	if a.Spread != nil && a.Spread.MaxSkew < 1 {
		ps.add(p+".spread.max_skew", "must be at least 1, got %d", a.Spread.MaxSkew)
	}
	a.validateRun(ps, p)
}

func (a GenericApp) validateCurves(ps *problems, p string, curvePoints int) {
	for _, dim := range sortedKeys(a.Curves) {
		pts := a.Curves[dim]
		cp := p + ".curves." + dim
		if dim != "cpu" && dim != "memory" {
			ps.add(cp, "curves are for cpu or memory only")
			continue
		}
		if len(pts) != curvePoints {
			ps.add(cp, "has %d points, curve_points is %d", len(pts), curvePoints)
		}
		for k, f := range pts {
			if math.IsNaN(f) || f < 0 || f > 1 {
				ps.add(fmt.Sprintf("%s[%d]", cp, k), "%v is outside [0,1]", f)
			}
		}
	}
}

// validateRequests checks requests against the file's apps and hosts.
// Existing placements are checked for names and numbers here; whether they
// fit their hosts and keep the rules is the simulator's check (it needs
// the placement core's arithmetic).
func (g *Generic) validateRequests(ps *problems, apps, hosts map[string]bool) {
	names := map[string]bool{}
	for i, r := range g.Requests {
		p := fmt.Sprintf("requests[%d]", i)
		if !apps[r.App] {
			ps.add(p+".app", "unknown app %q", r.App)
		}
		if r.Count < 1 {
			ps.add(p+".count", "must be at least 1, got %d", r.Count)
		}
		if len(r.On) > r.Count && r.Count >= 1 {
			ps.add(p+".on", "%d existing placements for a count of %d", len(r.On), r.Count)
		}
		for k, h := range r.On {
			if !hosts[h] {
				ps.add(fmt.Sprintf("%s.on[%d]", p, k), "unknown host %q", h)
			}
		}
		if r.Update.MaxUnavailable < 0 {
			ps.add(p+".update.max_unavailable", "negative")
		}
		if r.Update.Timeout < 0 {
			ps.add(p+".update.timeout", "negative")
		}
		if r.Name != "" {
			if err := ValidName(r.Name); err != nil {
				ps.add(p+".name", "%v", err)
			}
			if names[r.Name] {
				ps.add(p+".name", "duplicate request name %q", r.Name)
			}
			names[r.Name] = true
		}
	}
}

func (g *Generic) validateQuotas(ps *problems) {
	groups := map[string]bool{}
	for i, q := range g.Quotas {
		p := fmt.Sprintf("quotas[%d]", i)
		switch {
		case q.Group == "":
			ps.add(p+".group", "empty")
		case groups[q.Group]:
			ps.add(p+".group", "duplicate group %q", q.Group)
		}
		groups[q.Group] = true
		if q.CPU < 0 {
			ps.add(p+".cpu", "negative")
		}
		if q.GPUMilli < 0 {
			ps.add(p+".gpu_milli", "negative")
		}
	}
}

func badExtended(ps *problems, p string, ext map[string]int64) {
	for _, k := range sortedKeys(ext) {
		switch {
		case k == "cpu" || k == "memory" || k == "disk":
			ps.add(p+".extended."+k, "is a well-known dimension; use the field %s", k)
		case ext[k] < 0:
			ps.add(p+".extended."+k, "negative")
		}
	}
}

// Names lists the host names the entry stands for.
func (h GenericHost) Names() []string {
	if h.Count <= 1 {
		return []string{h.Name}
	}
	out := make([]string, h.Count)
	for i := range out {
		out[i] = h.Name + "-" + strconv.Itoa(i)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// lineOf finds the line of a path like "apps[2].curves.cpu[5]" in a parsed
// document, falling back to the deepest node found.
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, part := range splitPath(path) {
		var next *yaml.Node
		if idx, err := strconv.Atoi(part); err == nil {
			if n.Kind == yaml.SequenceNode && idx < len(n.Content) {
				next = n.Content[idx]
			}
		} else if n.Kind == yaml.MappingNode {
			for k := 0; k+1 < len(n.Content); k += 2 {
				if n.Content[k].Value == part {
					line = n.Content[k].Line
					next = n.Content[k+1]
					break
				}
			}
		}
		if next == nil {
			return line
		}
		n = next
		line = n.Line
	}
	return line
}

func splitPath(path string) []string {
	var parts []string
	for _, seg := range strings.Split(path, ".") {
		name, rest, _ := strings.Cut(seg, "[")
		if name != "" {
			parts = append(parts, name)
		}
		for rest != "" {
			idx, after, _ := strings.Cut(rest, "]")
			parts = append(parts, idx)
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return parts
}
