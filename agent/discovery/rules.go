package discovery

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/sluicehq/sluice/qos"
)

// WalkRules lists the cgroups under root (a hierarchy mount such as
// /sys/fs/cgroup/cpu), at most maxDepth levels deep, whose own path matches
// a rule (first match wins). It does not descend into skip (container
// cgroups, relative paths): containers win over rules. A directory that
// vanishes during the walk (a cgroup removed meanwhile) is not an error.
//
// It lists only the directories below which some rule could still match
// (see rulePrefixes), so a host's large subtrees no rule names (kubepods,
// a workload's own children) cost nothing at each resync.
func WalkRules(root string, maxDepth int, rules []qos.ClassRule, skip map[string]bool) ([]Workload, error) {
	return walkRules(os.DirFS(root), maxDepth, rules, skip)
}

// walkRules is WalkRules over fsys, whose root is the hierarchy's.
func walkRules(fsys fs.FS, maxDepth int, rules []qos.ClassRule, skip map[string]bool) ([]Workload, error) {
	if len(rules) == 0 {
		return nil, nil
	}
	prefixes := newRulePrefixes(rules)
	var out []Workload
	// segs are rel's names below the root, for prefixes.
	var walk func(rel string, segs []string) error
	walk = func(rel string, segs []string) error {
		if skip[rel] {
			return nil
		}
		name := "."
		if rel != "/" {
			name = rel[1:]
		}
		if r, ok := MatchRule(rules, rel); ok {
			w := Workload{ID: rel, Name: r.Name, Class: r.Class, Priority: r.Priority, CgroupPath: rel, Source: SourceRule}
			if fi, err := fs.Stat(fsys, name); err == nil {
				w.StartedAt = fi.ModTime()
			} else if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			out = append(out, w)
		}
		if len(segs) >= maxDepth || !prefixes.mayMatchBelow(segs) {
			return nil
		}
		entries, err := fs.ReadDir(fsys, name)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && rel != "/" {
				return nil
			}
			return fmt.Errorf("walk cgroups: %w", err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			// A full slice: each child appends to its own copy.
			if err := walk(path.Join(rel, e.Name()), append(segs[:len(segs):len(segs)], e.Name())); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk("/", nil); err != nil {
		return nil, err
	}
	return out, nil
}

// rulePrefixes tells which directories the rule walk must list. In
// path.Match, '*' and '?' never match '/', so a pattern without a
// character class or an escape matches '/' only with a literal '/': it
// matches paths with as many names as it has, each name by its own part.
// Below a directory, a match is possible only if some such pattern is
// longer and its first parts match the directory's names. A character
// class may match '/' (and an escape hides what it escapes), so one
// pattern holding '[' or '\' makes the walk list everything, as a plain
// walk would.
type rulePrefixes struct {
	all      bool
	patterns [][]string // each pattern's parts, split at '/'
}

func newRulePrefixes(rules []qos.ClassRule) rulePrefixes {
	var p rulePrefixes
	for _, r := range rules {
		if strings.ContainsAny(r.Cgroup, `[\`) {
			return rulePrefixes{all: true}
		}
		var parts []string
		if rest := strings.TrimPrefix(r.Cgroup, "/"); rest != "" {
			parts = strings.Split(rest, "/")
		}
		p.patterns = append(p.patterns, parts)
	}
	return p
}

// mayMatchBelow reports whether a rule could match a cgroup below the
// directory whose names under the root are segs.
func (p rulePrefixes) mayMatchBelow(segs []string) bool {
	if p.all {
		return true
	}
next:
	for _, parts := range p.patterns {
		if len(parts) <= len(segs) {
			continue
		}
		for i, s := range segs {
			if ok, _ := path.Match(parts[i], s); !ok {
				continue next
			}
		}
		return true
	}
	return false
}

// merge lists containers first, then the rule workloads that are neither a
// container's cgroup nor below one, each group in a stable order.
func merge(containers map[string][]Workload, rules []Workload) []Workload {
	var out []Workload
	owned := map[string]bool{}
	for _, ws := range containers {
		for _, w := range ws {
			out = append(out, w.clone())
			owned[w.CgroupPath] = true
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Key() < out[b].Key() })
	for _, w := range rules {
		if underAny(w.CgroupPath, owned) {
			continue
		}
		out = append(out, w.clone())
	}
	return out
}

// underAny reports whether p or one of its ancestors is in set.
func underAny(p string, set map[string]bool) bool {
	for {
		if set[p] {
			return true
		}
		if p == "/" || p == "" {
			return false
		}
		i := strings.LastIndexByte(p, '/')
		if i <= 0 {
			p = "/"
		} else {
			p = p[:i]
		}
	}
}
