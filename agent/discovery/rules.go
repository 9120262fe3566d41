package discovery

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sluicehq/sluice/qos"
)

// WalkRules lists the cgroups under root (a hierarchy mount such as
// /sys/fs/cgroup/cpu), at most maxDepth levels deep, whose own path matches
// a rule (first match wins). It does not descend into skip (container
// cgroups, relative paths): containers win over rules. A directory that
// vanishes during the walk (a cgroup removed meanwhile) is not an error.
func WalkRules(root string, maxDepth int, rules []qos.ClassRule, skip map[string]bool) ([]Workload, error) {
	if len(rules) == 0 {
		return nil, nil
	}
	var out []Workload
	var walk func(rel string, depth int) error
	walk = func(rel string, depth int) error {
		if skip[rel] {
			return nil
		}
		dir := filepath.Join(root, filepath.FromSlash(rel))
		if r, ok := MatchRule(rules, rel); ok {
			w := Workload{ID: rel, Name: r.Name, Class: r.Class, Priority: r.Priority, CgroupPath: rel, Source: SourceRule}
			if fi, err := os.Stat(dir); err == nil {
				w.StartedAt = fi.ModTime()
			} else if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			out = append(out, w)
		}
		if depth >= maxDepth {
			return nil
		}
		entries, err := os.ReadDir(dir)
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
			if err := walk(path.Join(rel, e.Name()), depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk("/", 0); err != nil {
		return nil, err
	}
	return out, nil
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
