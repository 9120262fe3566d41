package cgroupfs_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/qos/cgroup/cgroupfs"
	"github.com/sluicehq/sluice/qos/cgroup/cgrouptest"
)

func TestDetectFakeHosts(t *testing.T) {
	type want struct {
		mode                         cgroupfs.Mode
		cpu, cpuacct, memory, cpuset string // relative to the root; "." is the root
		unified                      string // "" for none
		coMounted                    bool
		controllers                  []cgroupfs.Controller
	}
	all := []cgroupfs.Controller{cgroupfs.CPU, cgroupfs.CPUAcct, cgroupfs.Memory, cgroupfs.Cpuset}
	for _, tc := range []struct {
		variant cgrouptest.HostVariant
		want    want
	}{
		{cgrouptest.V1Split, want{cgroupfs.ModeV1, "cpu", "cpuacct", "memory", "cpuset", "", false, all}},
		{cgrouptest.V1Combined, want{cgroupfs.ModeV1, "cpu,cpuacct", "cpu,cpuacct", "memory", "cpuset", "", true, all}},
		{cgrouptest.Hybrid, want{cgroupfs.ModeHybrid, "cpu", "cpuacct", "memory", "cpuset", "unified", false, all}},
		{cgrouptest.Unified, want{cgroupfs.ModeV2, ".", ".", ".", ".", ".", true, all}},
	} {
		t.Run(string(tc.variant), func(t *testing.T) {
			h := cgrouptest.NewHost(t, tc.variant, cgrouptest.Options{})
			l, err := cgroupfs.Detect(h.Root)
			if err != nil {
				t.Fatal(err)
			}
			at := func(rel string) string {
				if rel == "" {
					return ""
				}
				return filepath.Join(h.Root, rel)
			}
			w := tc.want
			if l.Mode() != w.mode {
				t.Errorf("mode %v, want %v", l.Mode(), w.mode)
			}
			for c, rel := range map[cgroupfs.Controller]string{cgroupfs.CPU: w.cpu, cgroupfs.CPUAcct: w.cpuacct, cgroupfs.Memory: w.memory, cgroupfs.Cpuset: w.cpuset} {
				if got := l.Hierarchy(c); got != at(rel) {
					t.Errorf("Hierarchy(%s) = %q, want %q", c, got, at(rel))
				}
				dir, ok := l.Dir(c, "/sluice/offline/x")
				if !ok || dir != filepath.Join(at(rel), "sluice/offline/x") {
					t.Errorf("Dir(%s, /sluice/offline/x) = %q, %v", c, dir, ok)
				}
			}
			if got := l.Unified(); got != at(w.unified) {
				t.Errorf("Unified() = %q, want %q", got, at(w.unified))
			}
			dir, ok := l.UnifiedDir("/a")
			if ok != (w.unified != "") || (ok && dir != filepath.Join(at(w.unified), "a")) {
				t.Errorf("UnifiedDir(/a) = %q, %v", dir, ok)
			}
			if got := l.CoMounted(cgroupfs.CPU, cgroupfs.CPUAcct); got != w.coMounted {
				t.Errorf("CoMounted(cpu, cpuacct) = %v, want %v", got, w.coMounted)
			}
			if got := l.Controllers(); !slices.Equal(got, w.controllers) {
				t.Errorf("Controllers() = %v, want %v", got, w.controllers)
			}
			if l.Root() != h.Root {
				t.Errorf("Root() = %q", l.Root())
			}
		})
	}
}

// A v2 root offering only some controllers says so; a v1 host without a
// cpuset mount has no cpuset hierarchy, and Dir says so.
func TestDetectPartialHosts(t *testing.T) {
	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "cgroup.controllers"), "cpu memory pids\n")
	l, err := cgroupfs.Detect(root)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.Controllers(), []cgroupfs.Controller{cgroupfs.CPU, cgroupfs.CPUAcct, cgroupfs.Memory}; !slices.Equal(got, want) {
		t.Errorf("v2 without cpuset: Controllers() = %v, want %v", got, want)
	}

	root = t.TempDir()
	for _, c := range []string{"cpu", "cpuacct", "memory"} {
		mustWrite(t, filepath.Join(root, c, "cgroup.procs"), "")
	}
	if l, err = cgroupfs.Detect(root); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Dir(cgroupfs.Cpuset, "/x"); ok || l.Hierarchy(cgroupfs.Cpuset) != "" {
		t.Errorf("v1 without cpuset: Dir(cpuset) ok, hierarchy %q", l.Hierarchy(cgroupfs.Cpuset))
	}
	if l.Mode() != cgroupfs.ModeV1 || l.Unified() != "" {
		t.Errorf("v1 without unified: %v", l)
	}
}

func TestDetectRejects(t *testing.T) {
	if l, err := cgroupfs.Detect(t.TempDir()); err == nil {
		t.Errorf("Detect(empty dir) = %v, want error", l)
	}
	if l, err := cgroupfs.Detect(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Errorf("Detect(missing dir) = %v, want error", l)
	}
	// A directory without cgroup.procs is not a mount.
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "cpu"), 0o755); err != nil {
		t.Fatal(err)
	}
	if l, err := cgroupfs.Detect(root); err == nil {
		t.Errorf("Detect(dir with an empty cpu dir) = %v, want error", l)
	}
}

func TestDetectSampleFixtures(t *testing.T) {
	for _, tc := range []struct {
		root string
		want cgroupfs.Mode
	}{
		{"../../../agent/sample/testdata/cgroup/v1-split", cgroupfs.ModeHybrid},
		{"../../../agent/sample/testdata/cgroup/v1-combined", cgroupfs.ModeV1},
		{"../../../agent/sample/testdata/cgroup/v2", cgroupfs.ModeV2},
	} {
		l, err := cgroupfs.Detect(tc.root)
		if err != nil || l.Mode() != tc.want {
			t.Errorf("Detect(%s) = %v, %v; want %v", tc.root, l, err, tc.want)
		}
	}
}

func TestJoin(t *testing.T) {
	for _, tc := range []struct{ h, p, want string }{
		{"/sys/fs/cgroup/cpu", "/a/b", "/sys/fs/cgroup/cpu/a/b"},
		{"/sys/fs/cgroup/cpu", "a/b", "/sys/fs/cgroup/cpu/a/b"},
		{"/sys/fs/cgroup/cpu", "/../../etc", "/sys/fs/cgroup/cpu/etc"},
		{"/sys/fs/cgroup/cpu", "/", "/sys/fs/cgroup/cpu"},
		{"/", "/a", "/a"},
	} {
		if got := cgroupfs.Join(tc.h, tc.p); got != tc.want {
			t.Errorf("Join(%q, %q) = %q, want %q", tc.h, tc.p, got, tc.want)
		}
	}
}

func mustWrite(t *testing.T, name, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
