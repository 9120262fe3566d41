package converge

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sluicehq/sluice/qos"
)

func validSpec() Spec {
	return Spec{ID: "web-0", Job: "web", Image: "docker.io/library/busybox:latest", Class: qos.ClassOnline, Priority: 5, Restart: RestartAlways}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	if err := validSpec().Validate(); err != nil {
		t.Fatalf("valid spec: %v", err)
	}
	s := Spec{
		ID:       "bad/id",
		Replica:  -1,
		CPUMilli: -5,
		Class:    "gold",
		Restart:  "sometimes",
		Env:      []string{"OK=1", "NOEQUALS", "=v"},
		Labels:   map[string]string{"sluice.io/class": "system", "team": "x"},
	}
	err := s.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"id:", "image: empty", "replica: negative", "cpuMilli: negative", "class:", `restart: unknown policy "sometimes"`, "env[1]:", "env[2]:", "labels.sluice.io/class:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "env[0]") || strings.Contains(err.Error(), "labels.team") {
		t.Errorf("valid fields reported:\n%v", err)
	}
}

func TestContainerLabels(t *testing.T) {
	s := validSpec()
	s.Replica = 3
	s.Labels = map[string]string{"team": "search"}
	started := time.Date(2026, 12, 3, 7, 0, 0, 5, time.FixedZone("x", 3600))
	l := s.containerLabels(started)
	want := map[string]string{
		LabelClass: "online", LabelPriority: "5", LabelManagedBy: ManagedBy,
		LabelJob: "web", LabelReplica: "3", LabelRestarts: "0", LabelCrashStreak: "0",
		LabelStartedAt: "2026-12-03T06:00:00.000000005Z", "team": "search",
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("label %s = %q, want %q", k, l[k], v)
		}
	}
	if l[LabelSpec] != s.digest() || len(l[LabelSpec]) != 16 {
		t.Errorf("spec label %q, digest %q", l[LabelSpec], s.digest())
	}
}

func TestDigestFollowsEveryField(t *testing.T) {
	base := validSpec()
	if base.digest() != validSpec().digest() {
		t.Fatal("digest is not stable")
	}
	changes := map[string]func(*Spec){
		"image":    func(s *Spec) { s.Image = "other:1" },
		"tar":      func(s *Spec) { s.ImageTar = "/x.tar" },
		"command":  func(s *Spec) { s.Command = []string{"sleep", "1"} },
		"env":      func(s *Spec) { s.Env = []string{"A=1"} },
		"cpu":      func(s *Spec) { s.CPUMilli = 500 },
		"memory":   func(s *Spec) { s.MemoryBytes = 1 << 20 },
		"class":    func(s *Spec) { s.Class = qos.ClassOffline },
		"priority": func(s *Spec) { s.Priority = 1 },
		"labels":   func(s *Spec) { s.Labels = map[string]string{"a": "b"} },
		"restart":  func(s *Spec) { s.Restart = RestartNever },
	}
	for name, change := range changes {
		s := validSpec()
		change(&s)
		if s.digest() == base.digest() {
			t.Errorf("%s: digest unchanged", name)
		}
	}
}

func TestBackoffDoublesToMax(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 10 * time.Second}
	want := []time.Duration{1, 2, 4, 8, 10, 10}
	for n, w := range want {
		if got := b.Delay(n); got != w*time.Second {
			t.Errorf("Delay(%d) = %v, want %v", n, got, w*time.Second)
		}
	}
	if got := b.Delay(1 << 20); got != 10*time.Second {
		t.Errorf("Delay(huge) = %v", got)
	}
}

func TestRestartAt(t *testing.T) {
	exited := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := Backoff{Min: time.Second, Max: time.Minute, ResetAfter: 10 * time.Minute}
	cases := []struct {
		name     string
		policy   RestartPolicy
		code     uint32
		ran      time.Duration // 0: start unknown
		streak   int
		again    bool
		after    time.Duration
		newStrek int
	}{
		{"first crash", RestartAlways, 1, time.Second, 0, true, time.Second, 1},
		{"clean exit, always", RestartAlways, 0, 0, 0, true, time.Second, 1},
		{"third crash in a row", RestartAlways, 137, time.Second, 2, true, 4 * time.Second, 3},
		{"long streak capped", RestartAlways, 1, time.Second, 40, true, time.Minute, 41},
		{"ran long enough: streak over", RestartAlways, 1, 10 * time.Minute, 7, true, time.Second, 1},
		{"start unknown: streak kept", RestartAlways, 1, 0, 3, true, 8 * time.Second, 4},
		{"failure", RestartOnFailure, 1, time.Second, 1, true, 2 * time.Second, 2},
		{"success, on-failure", RestartOnFailure, 0, time.Second, 0, false, 0, 0},
		{"never", RestartNever, 1, time.Second, 0, false, 0, 0},
	}
	for _, c := range cases {
		e := exit{code: c.code, exitedAt: exited, streak: c.streak}
		if c.ran > 0 {
			e.startedAt = exited.Add(-c.ran)
		}
		at, streak, again := restartAt(c.policy, e, b)
		if again != c.again || (again && (at != exited.Add(c.after) || streak != c.newStrek)) {
			t.Errorf("%s: (%v, %d, %v), want (%v, %d, %v)", c.name, at, streak, again, exited.Add(c.after), c.newStrek, c.again)
		}
	}
}

func TestSiblingParents(t *testing.T) {
	cases := map[string][3]string{ // offline parent -> offline, online, system
		"/sluice/offline": {"/sluice/offline", "/sluice/online", "/sluice/system"},
		"/a/b/offline":    {"/a/b/offline", "/a/b/online", "/a/b/system"},
		"batch/":          {"/batch", "/online", "/system"},
	}
	for in, want := range cases {
		got := SiblingParents(in)
		if got[qos.ClassOffline] != want[0] || got[qos.ClassOnline] != want[1] || got[qos.ClassSystem] != want[2] {
			t.Errorf("SiblingParents(%q) = %v, want %v", in, got, want)
		}
	}
}

// A launched container names its class's resctrl group in its spec
// (linux.intelRdt.closID) when the agent found resctrl, and none otherwise.
func TestRunOptsSetTheResctrlGroupOnlyWithResctrl(t *testing.T) {
	spec := func(c *Converger, s Spec) *oci.Spec {
		t.Helper()
		sp := &oci.Spec{Process: &specs.Process{}, Linux: &specs.Linux{}}
		if err := oci.ApplyOpts(context.Background(), nil, &containers.Container{ID: s.ID}, sp, c.runOpts(s, "/sluice/online/"+s.ID)...); err != nil {
			t.Fatal(err)
		}
		return sp
	}
	without := &Converger{cfg: Config{}}
	if sp := spec(without, validSpec()); sp.Linux.IntelRdt != nil {
		t.Errorf("no resctrl: intelRdt %+v, want unset (runc refuses it)", sp.Linux.IntelRdt)
	}
	var asked []string
	with := &Converger{cfg: Config{RdtGroup: func(class qos.Class, priority int) string {
		asked = append(asked, fmt.Sprintf("%s/%d", class, priority))
		if class == qos.ClassOffline {
			return "" // its group does not exist yet
		}
		return "sluice-" + string(class)
	}}}
	if r := spec(with, validSpec()).Linux.IntelRdt; r == nil || r.ClosID != "sluice-online" || r.L3CacheSchema != "" || r.MemBwSchema != "" {
		t.Errorf("online container: intelRdt %+v, want closID sluice-online and no schemata", r)
	}
	off := validSpec()
	off.Class, off.Priority = qos.ClassOffline, 1
	if sp := spec(with, off); sp.Linux.IntelRdt != nil {
		t.Errorf("offline container whose group does not exist yet: intelRdt %+v, want unset", sp.Linux.IntelRdt)
	}
	if got := strings.Join(asked, " "); got != "online/5 offline/1" {
		t.Errorf("asked for groups of %q, want online/5 offline/1", got)
	}
}
