package discovery

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/sluicehq/sluice/qos"
	"github.com/sluicehq/sluice/test/kerneltest"
)

// fakeCgroupTree makes directories (with a cgroup.procs file, like a real
// hierarchy) for each path under a temp root.
func fakeCgroupTree(t *testing.T, paths ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, p := range append([]string{"/"}, paths...) {
		dir := filepath.Join(root, p)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func paths(ws []Workload) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.CgroupPath)
	}
	return out
}

func TestWalkRules(t *testing.T) {
	root := fakeCgroupTree(t,
		"/system.slice/sshd.service",
		"/system.slice/batch.service",
		"/system.slice/batch.service/worker",
		"/batch/job1/step1",
		"/batch/job2",
		"/kubepods/besteffort/pod1/ctr1/nested",
		"/a/b/c/d/e/deep",
	)
	rules := []qos.ClassRule{
		{Name: "batch-svc", Cgroup: "/system.slice/batch.service", Class: qos.ClassOffline, Priority: 3},
		{Name: "daemons", Cgroup: "/system.slice/*", Class: qos.ClassSystem, Priority: 50},
		{Name: "jobs", Cgroup: "/batch/*", Class: qos.ClassOffline, Priority: 1},
		{Name: "steps", Cgroup: "/batch/*/step*", Class: qos.ClassOffline, Priority: 2},
		{Name: "kube", Cgroup: "/kubepods/besteffort/*/*", Class: qos.ClassOffline},
		{Name: "kube-nested", Cgroup: "/kubepods/besteffort/*/*/*", Class: qos.ClassOffline},
		{Name: "deep", Cgroup: "/a/b/c/d/e/*", Class: qos.ClassOffline},
		{Name: "slice", Cgroup: "/a/b", Class: qos.ClassSystem},
	}
	skip := map[string]bool{"/kubepods/besteffort/pod1/ctr1": true}
	got, err := WalkRules(root, 4, rules, skip)
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]Workload{}
	for _, w := range got {
		byPath[w.CgroupPath] = w
		if w.Source != SourceRule || w.ID != w.CgroupPath || w.StartedAt.IsZero() {
			t.Errorf("%s: bad workload %+v", w.CgroupPath, w)
		}
	}
	want := map[string]struct {
		rule  string
		class qos.Class
		prio  int
	}{
		"/system.slice/sshd.service":  {"daemons", qos.ClassSystem, 50},
		"/system.slice/batch.service": {"batch-svc", qos.ClassOffline, 3}, // first match wins
		"/batch/job1":                 {"jobs", qos.ClassOffline, 1},
		"/batch/job1/step1":           {"steps", qos.ClassOffline, 2}, // own rule: listed under a listed parent
		"/batch/job2":                 {"jobs", qos.ClassOffline, 1},
		"/a/b":                        {"slice", qos.ClassSystem, 0},
	}
	for p, w := range want {
		g, ok := byPath[p]
		if !ok {
			t.Errorf("%s not listed", p)
			continue
		}
		if g.Name != w.rule || g.Class != w.class || g.Priority != w.prio {
			t.Errorf("%s: got rule %s class %s prio %d, want %s %s %d", p, g.Name, g.Class, g.Priority, w.rule, w.class, w.prio)
		}
	}
	// Not listed: a child of a listed cgroup without its own rule, the
	// container's cgroup and what is below it, anything past MaxDepth.
	for _, p := range []string{"/system.slice/batch.service/worker", "/kubepods/besteffort/pod1/ctr1", "/kubepods/besteffort/pod1/ctr1/nested", "/a/b/c/d/e/deep"} {
		if _, ok := byPath[p]; ok {
			t.Errorf("%s listed, should not be", p)
		}
	}
	if len(got) != len(want) {
		t.Errorf("listed %v, want exactly %d", paths(got), len(want))
	}

	deep, err := WalkRules(root, 6, rules, skip)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(paths(deep), " "), "/a/b/c/d/e/deep") {
		t.Errorf("depth 6 walk missed /a/b/c/d/e/deep: %v", paths(deep))
	}

	if _, err := WalkRules(filepath.Join(root, "missing"), 4, rules, nil); err == nil {
		t.Error("missing root: no error")
	}
}

func TestMergeContainersWin(t *testing.T) {
	containers := map[string][]Workload{
		"b": {{ID: "c2", Namespace: "b", CgroupPath: "/kubepods/pod1/c2", Source: SourceContainerd, Labels: map[string]string{"k": "v"}}},
		"a": {{ID: "c1", Namespace: "a", CgroupPath: "/batch/c1", Source: SourceContainerd}},
	}
	rules := []Workload{
		{ID: "/batch", CgroupPath: "/batch", Source: SourceRule},           // a parent of a container: kept
		{ID: "/batch/c1", CgroupPath: "/batch/c1", Source: SourceRule},     // the container itself: dropped
		{ID: "/batch/c1/x", CgroupPath: "/batch/c1/x", Source: SourceRule}, // below a container: dropped
		{ID: "/batch/c10", CgroupPath: "/batch/c10", Source: SourceRule},   // a sibling sharing a prefix: kept
	}
	got := merge(containers, rules)
	want := []string{"/batch/c1", "/kubepods/pod1/c2", "/batch", "/batch/c10"}
	if !reflect.DeepEqual(paths(got), want) {
		t.Errorf("merge = %v, want %v", paths(got), want)
	}
	got[1].Labels["k"] = "changed"
	if containers["b"][0].Labels["k"] != "v" {
		t.Error("merge shares label maps with its input")
	}
}

// syncBuffer is an io.Writer for a slog handler that tests read.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runDiscoverer runs d until stop is called or the test ends. stop
// cancels Run's context (ctx), waits for Run to return and closes d; it
// may be called more than once.
func runDiscoverer(t *testing.T, d *Discoverer) (ctx context.Context, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
			d.Close()
		}
	}
	t.Cleanup(stop)
	return ctx, stop
}

// waitFor polls cond until it holds or the deadline passes; the deadline
// only bounds a hang, it decides nothing when cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	kerneltest.WaitFor(t, what, 30*time.Second, cond)
}

func TestDiscovererRulesOnlyHotReload(t *testing.T) {
	root := fakeCgroupTree(t, "/system.slice/a.service", "/batch/j1")
	d, err := New(Config{
		CgroupRoot:     root,
		Rules:          []qos.ClassRule{{Name: "daemons", Cgroup: "/system.slice/*", Class: qos.ClassSystem}},
		ResyncInterval: time.Hour, // only SetRules may trigger the second walk
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	runDiscoverer(t, d)

	waitFor(t, "the daemons rule workload", func() bool {
		return reflect.DeepEqual(paths(d.Workloads()), []string{"/system.slice/a.service"})
	})
	if err := d.SetRules([]qos.ClassRule{{Name: "bad", Cgroup: "batch/*", Class: qos.ClassOffline}}); err == nil || !strings.Contains(err.Error(), `rule 0 ("bad")`) {
		t.Errorf("invalid rules: err %v", err)
	}
	if err := d.SetRules([]qos.ClassRule{{Name: "jobs", Cgroup: "/batch/*", Class: qos.ClassOffline, Priority: 4}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the jobs rule workload after hot reload", func() bool {
		ws := d.Workloads()
		return len(ws) == 1 && ws[0].CgroupPath == "/batch/j1" && ws[0].Class == qos.ClassOffline && ws[0].Priority == 4
	})
	if st := d.Status(); st.ContainerdConnected {
		t.Errorf("status %+v: connected without containerd", st)
	}
}

func TestNewRejectsInvalidRules(t *testing.T) {
	_, err := New(Config{Rules: []qos.ClassRule{{Name: "x", Cgroup: "/[", Class: qos.ClassOffline}}}, nil)
	if err == nil || !strings.Contains(err.Error(), `rule 0 ("x")`) {
		t.Errorf("err %v, want one naming rule 0", err)
	}
}

func TestDiscovererWithoutContainerdKeepsRules(t *testing.T) {
	root := fakeCgroupTree(t, "/batch/j1")
	logs := &syncBuffer{}
	d, err := New(Config{
		ContainerdAddress:   filepath.Join(t.TempDir(), "nothing-listens.sock"),
		CgroupRoot:          root,
		Rules:               []qos.ClassRule{{Name: "jobs", Cgroup: "/batch/*", Class: qos.ClassOffline}},
		ConnectTimeout:      50 * time.Millisecond,
		ReconnectBackoffMax: 50 * time.Millisecond,
	}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := runDiscoverer(t, d)
	waitFor(t, "the rule workload", func() bool { return len(d.Workloads()) == 1 })
	waitFor(t, "a connection error in Status", func() bool {
		return strings.HasPrefix(d.Status().LastError, "connect ")
	})
	if st := d.Status(); st.ContainerdConnected {
		t.Errorf("status %+v", st)
	}
	if err := d.KillTask(ctx, "ns", "id", 9); !errors.Is(err, ErrNotConnected) {
		t.Errorf("KillTask = %v, want ErrNotConnected", err)
	}
	stop()
	if n := strings.Count(logs.String(), "containerd unreachable"); n != 1 {
		t.Errorf("want one outage warning however many attempts failed, got %d:\n%s", n, logs)
	}
}

// countingFS counts the directories a walk lists.
type countingFS struct {
	fstest.MapFS
	listed map[string]int
}

func (c countingFS) ReadDir(name string) ([]fs.DirEntry, error) {
	c.listed[name]++
	return c.MapFS.ReadDir(name)
}

// mapTree is an in-memory hierarchy holding the directories at paths
// (absolute, as cgroup paths are written) and their parents.
func mapTree(paths ...string) fstest.MapFS {
	m := fstest.MapFS{}
	for _, p := range paths {
		m[strings.TrimPrefix(p, "/")] = &fstest.MapFile{Mode: fs.ModeDir | 0o755}
	}
	return m
}

// plainWalk is what walkRules lists, found by listing every directory to
// maxDepth: the reference the pruned walk must agree with.
func plainWalk(t *testing.T, fsys fs.FS, maxDepth int, rules []qos.ClassRule, skip map[string]bool) []string {
	t.Helper()
	var out []string
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		rel := "/" + name
		if name == "." {
			rel = "/"
		}
		if skip[rel] {
			return fs.SkipDir
		}
		if _, ok := MatchRule(rules, rel); ok {
			out = append(out, rel)
		}
		if rel != "/" && strings.Count(rel, "/") >= maxDepth {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestWalkRulesPrunedAgreesWithPlainWalk draws random trees, patterns and
// skips and checks that the walk, which lists only directories a rule
// could match below, lists exactly what a walk of every directory finds.
func TestWalkRulesPrunedAgreesWithPlainWalk(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 7))
	names := []string{"a", "b", "ab", "x.slice", "y.service"}
	parts := []string{"*", "a", "b", "?", "a*", "*.slice", "x.slice", "ab", "*b", "[ab]", "[^a]*"}
	for trial := range 400 {
		var dirs []string
		for range 1 + rng.IntN(40) {
			p := ""
			for range 1 + rng.IntN(6) {
				p += "/" + names[rng.IntN(len(names))]
			}
			dirs = append(dirs, p)
		}
		var rules []qos.ClassRule
		for i := range 1 + rng.IntN(3) {
			pat := ""
			for range 1 + rng.IntN(5) {
				part := parts[rng.IntN(len(parts))]
				if strings.Contains(part, "[") && rng.IntN(4) > 0 {
					part = "*" // classes are rarer, so most trials prune
				}
				pat += "/" + part
			}
			rules = append(rules, qos.ClassRule{Name: strconv.Itoa(i), Cgroup: pat, Class: qos.ClassOffline})
		}
		skip := map[string]bool{}
		if rng.IntN(2) == 0 {
			d := dirs[rng.IntN(len(dirs))]
			skip[d[:strings.LastIndex(d, "/")+1]+names[rng.IntN(len(names))]] = true
		}
		fsys := mapTree(dirs...)
		maxDepth := 1 + rng.IntN(5)
		ws, err := walkRules(fsys, maxDepth, rules, skip)
		if err != nil {
			t.Fatal(err)
		}
		got := paths(ws)
		slices.Sort(got)
		if want := plainWalk(t, fsys, maxDepth, rules, skip); !slices.Equal(got, want) {
			t.Fatalf("trial %d: rules %v, depth %d, skip %v, tree %v:\nwalk lists  %v\nevery dir:  %v", trial, rules, maxDepth, skip, dirs, got, want)
		}
	}
}

// TestWalkRulesListsOnlyWhereRulesReach checks which directories the
// walk lists: with the default rules (/system.slice/*, /init.scope) only
// the root and /system.slice, not a Kubernetes subtree or the services'
// own children; a pattern with a character class lists everything.
func TestWalkRulesListsOnlyWhereRulesReach(t *testing.T) {
	tree := mapTree("/system.slice/sshd.service/child", "/init.scope", "/kubepods/besteffort/pod1/ctr1", "/kubepods/burstable/pod2/ctr2")
	rules := qos.DefaultPolicy().Rules
	c := countingFS{tree, map[string]int{}}
	ws, err := walkRules(c, 4, rules, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := paths(ws); !slices.Equal(got, []string{"/init.scope", "/system.slice/sshd.service"}) {
		t.Errorf("listed workloads %v, want /init.scope and /system.slice/sshd.service", got)
	}
	listed := slices.Sorted(maps.Keys(c.listed))
	if !slices.Equal(listed, []string{".", "system.slice"}) {
		t.Errorf("directories read: %v, want only . and system.slice", listed)
	}

	c = countingFS{tree, map[string]int{}}
	rules = append(rules, qos.ClassRule{Name: "class", Cgroup: "/kube[p]ods/*", Class: qos.ClassOffline})
	if _, err := walkRules(c, 4, rules, nil); err != nil {
		t.Fatal(err)
	}
	if len(c.listed) != 10 {
		t.Errorf("with a character class the walk read %d directories (%v), want all 10 to depth 4", len(c.listed), slices.Sorted(maps.Keys(c.listed)))
	}
}
