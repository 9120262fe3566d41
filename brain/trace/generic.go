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
}

// GenericApp is what one instance of an app needs and the rules its
// instances follow.
type GenericApp struct {
	Name     string           `yaml:"name"`
	CPU      MilliCPU         `yaml:"cpu"`
	Memory   Bytes            `yaml:"memory"`
	Disk     Bytes            `yaml:"disk,omitempty"`
	Extended map[string]int64 `yaml:"extended,omitempty"`
	GPU      *GenericGPU      `yaml:"gpu,omitempty"`
	// Curves maps "cpu" or "memory" to curve_points fractions in [0,1] of
	// the app's peak; a point's demand is round(fraction x peak).
	Curves       map[string][]float64  `yaml:"curves,omitempty"`
	Selector     map[string]string     `yaml:"selector,omitempty"`
	AntiAffinity []GenericAntiAffinity `yaml:"anti_affinity,omitempty"`
	// MaxPerHost caps the app's instances per host (0 = no cap).
	MaxPerHost int            `yaml:"max_per_host,omitempty"`
	Spread     *GenericSpread `yaml:"spread,omitempty"`
}

// GenericGPU is either whole devices or a shared fraction of one.
type GenericGPU struct {
	Count       int      `yaml:"count,omitempty"`
	SharedMilli int64    `yaml:"shared_milli,omitempty"`
	Models      []string `yaml:"models,omitempty"`
}

// GenericAntiAffinity: on a host running this app, at most MaxTogether
// instances of App.
type GenericAntiAffinity struct {
	App         string `yaml:"app"`
	MaxTogether int    `yaml:"max_together"`
}

// GenericSpread balances the app's instances across failure domains.
type GenericSpread struct {
	// DomainLabel defaults to the file's domain_label.
	DomainLabel string `yaml:"domain_label,omitempty"`
	MaxSkew     int    `yaml:"max_skew"`
}

// GenericRequest asks for Count instances of App.
type GenericRequest struct {
	App      string `yaml:"app"`
	Count    int    `yaml:"count"`
	Priority int    `yaml:"priority,omitempty"`
	Group    string `yaml:"group,omitempty"`
	Preempt  bool   `yaml:"preempt,omitempty"`
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
	data, err := io.ReadAll(r)
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
	var root yaml.Node
	// The strict decode succeeded, so the node parse cannot fail; the
	// nodes only give validation errors their lines.
	_ = yaml.Unmarshal(data, &root)
	if errs := g.validate(); len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i := range errs {
			errs[i].File = file
			errs[i].Line = lineOf(&root, errs[i].Path)
			msgs[i] = errs[i].Error()
		}
		return nil, fmt.Errorf("%w:\n%s", ErrInvalid, strings.Join(msgs, "\n"))
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

func (g *Generic) validate() []FieldError {
	var errs []FieldError
	bad := func(path, format string, args ...any) {
		errs = append(errs, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if g.Version != GenericVersion {
		bad("version", "got %d, want %d", g.Version, GenericVersion)
	}
	if g.CurvePoints < 0 {
		bad("curve_points", "negative")
	}
	hostNames := map[string]bool{}
	for i, h := range g.Hosts {
		p := fmt.Sprintf("hosts[%d]", i)
		if h.Name == "" {
			bad(p+".name", "empty")
		}
		if h.Count < 0 {
			bad(p+".count", "negative")
		}
		for _, n := range h.Names() {
			if hostNames[n] {
				bad(p+".name", "duplicate host %q", n)
			}
			hostNames[n] = true
		}
		if h.CPU <= 0 {
			bad(p+".cpu", "must be positive")
		}
		if h.Memory <= 0 {
			bad(p+".memory", "must be positive")
		}
		if h.GPUs < 0 {
			bad(p+".gpus", "negative")
		}
		if h.GPUs > 0 && h.GPUModel == "" {
			bad(p+".gpu_model", "empty for a host with gpus")
		}
		badExtended(p, h.Extended, bad)
		if _, ok := h.Labels[g.Domain()]; ok && h.FailureDomain != "" {
			bad(p+".labels", "label %q and failure_domain both set", g.Domain())
		}
	}
	if len(g.Hosts) == 0 {
		bad("hosts", "no hosts")
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
			bad(p+".name", "empty")
		case seenApp[a.Name]:
			bad(p+".name", "duplicate app %q", a.Name)
		}
		seenApp[a.Name] = true
		if a.CPU < 0 {
			bad(p+".cpu", "negative")
		}
		badExtended(p, a.Extended, bad)
		if gpu := a.GPU; gpu != nil {
			switch {
			case gpu.Count < 0:
				bad(p+".gpu.count", "negative")
			case gpu.SharedMilli < 0 || gpu.SharedMilli >= 1000:
				bad(p+".gpu.shared_milli", "%d is outside 1..999", gpu.SharedMilli)
			case gpu.Count > 0 && gpu.SharedMilli > 0:
				bad(p+".gpu", "count and shared_milli both set")
			}
		}
		for _, dim := range sortedKeys(a.Curves) {
			pts := a.Curves[dim]
			cp := p + ".curves." + dim
			if dim != "cpu" && dim != "memory" {
				bad(cp, "curves are for cpu or memory only")
				continue
			}
			if len(pts) != g.CurvePoints {
				bad(cp, "has %d points, curve_points is %d", len(pts), g.CurvePoints)
			}
			for k, f := range pts {
				if math.IsNaN(f) || f < 0 || f > 1 {
					bad(fmt.Sprintf("%s[%d]", cp, k), "%v is outside [0,1]", f)
				}
			}
		}
		for k, aa := range a.AntiAffinity {
			ap := fmt.Sprintf("%s.anti_affinity[%d]", p, k)
			if !apps[aa.App] {
				bad(ap+".app", "unknown app %q", aa.App)
			}
			if aa.MaxTogether < 0 {
				bad(ap+".max_together", "negative")
			}
		}
		if a.MaxPerHost < 0 {
			bad(p+".max_per_host", "negative")
		}
		if a.Spread != nil && a.Spread.MaxSkew < 1 {
			bad(p+".spread.max_skew", "must be at least 1, got %d", a.Spread.MaxSkew)
		}
	}
	for i, r := range g.Requests {
		p := fmt.Sprintf("requests[%d]", i)
		if !apps[r.App] {
			bad(p+".app", "unknown app %q", r.App)
		}
		if r.Count < 1 {
			bad(p+".count", "must be at least 1, got %d", r.Count)
		}
	}
	groups := map[string]bool{}
	for i, q := range g.Quotas {
		p := fmt.Sprintf("quotas[%d]", i)
		switch {
		case q.Group == "":
			bad(p+".group", "empty")
		case groups[q.Group]:
			bad(p+".group", "duplicate group %q", q.Group)
		}
		groups[q.Group] = true
		if q.CPU < 0 {
			bad(p+".cpu", "negative")
		}
		if q.GPUMilli < 0 {
			bad(p+".gpu_milli", "negative")
		}
	}
	return errs
}

func badExtended(p string, ext map[string]int64, bad func(string, string, ...any)) {
	for _, k := range sortedKeys(ext) {
		switch {
		case k == "cpu" || k == "memory" || k == "disk":
			bad(p+".extended."+k, "is a well-known dimension; use the field %s", k)
		case ext[k] < 0:
			bad(p+".extended."+k, "negative")
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
