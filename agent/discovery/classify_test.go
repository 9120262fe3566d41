package discovery

import (
	"path"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sluicehq/sluice/qos"
)

var testRules = []qos.ClassRule{
	{Name: "batch", Cgroup: "/batch/*", Class: qos.ClassOffline, Priority: 7},
	{Name: "daemons", Cgroup: "/system.slice/*", Class: qos.ClassSystem, Priority: 100},
}

func criLabels(kind string) map[string]string {
	return map[string]string{
		labelCRIKind:       kind,
		labelPodName:       "web-0",
		labelPodNamespace:  "shop",
		labelContainerName: "app",
	}
}

func criAnnotations(kind, sandbox string) map[string]string {
	return map[string]string{annotationContainerTy: kind, annotationSandboxID: sandbox}
}

func TestClassifyContainer(t *testing.T) {
	sandboxWith := func(labels map[string]string) *ContainerRecord {
		l := criLabels(criKindSandbox)
		for k, v := range labels {
			l[k] = v
		}
		return &ContainerRecord{Namespace: "k8s.io", ID: "sb", Labels: l, Annotations: criAnnotations(criKindSandbox, "sb")}
	}
	merge := func(a, b map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range a {
			out[k] = v
		}
		for k, v := range b {
			out[k] = v
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		rec       ContainerRecord
		sandbox   *ContainerRecord
		wantClass qos.Class
		wantPrio  int
		wantPath  string
		wantName  string
		wantWarns int
		wantWhy   string
	}{
		{
			name:      "labels",
			rec:       ContainerRecord{ID: "c1", CgroupsPath: "/t/c1", Labels: map[string]string{LabelClass: "offline", LabelPriority: "5"}},
			wantClass: qos.ClassOffline, wantPrio: 5, wantPath: "/t/c1", wantName: "c1", wantWhy: "label",
		},
		{
			name:      "label with spaces and negative priority",
			rec:       ContainerRecord{ID: "c1", CgroupsPath: "/t/c1", Labels: map[string]string{LabelClass: " system ", LabelPriority: " -3 "}},
			wantClass: qos.ClassSystem, wantPrio: -3, wantPath: "/t/c1", wantName: "c1", wantWhy: "label",
		},
		{
			name:      "invalid class falls back to rules",
			rec:       ContainerRecord{ID: "c1", CgroupsPath: "/batch/c1", Labels: map[string]string{LabelClass: "gold"}},
			wantClass: qos.ClassOffline, wantPrio: 7, wantPath: "/batch/c1", wantName: "c1", wantWarns: 1, wantWhy: "rule",
		},
		{
			name:      "invalid class and no rule: default online",
			rec:       ContainerRecord{ID: "c1", CgroupsPath: "/t/c1", Labels: map[string]string{LabelClass: "Offline"}},
			wantClass: qos.ClassOnline, wantPath: "/t/c1", wantName: "c1", wantWarns: 1, wantWhy: "default",
		},
		{
			name:      "invalid priority is 0 with a warning, not the rule's",
			rec:       ContainerRecord{ID: "c1", CgroupsPath: "/batch/c1", Labels: map[string]string{LabelPriority: "high"}},
			wantClass: qos.ClassOffline, wantPrio: 0, wantPath: "/batch/c1", wantName: "c1", wantWarns: 1, wantWhy: "rule",
		},
		{
			name:      "no labels: rule decides class and priority",
			rec:       ContainerRecord{ID: "c1", CgroupsPath: "/system.slice/x"},
			wantClass: qos.ClassSystem, wantPrio: 100, wantPath: "/system.slice/x", wantName: "c1", wantWhy: "rule",
		},
		{
			name:      "label priority beats rule priority",
			rec:       ContainerRecord{ID: "c1", CgroupsPath: "/batch/c1", Labels: map[string]string{LabelPriority: "2"}},
			wantClass: qos.ClassOffline, wantPrio: 2, wantPath: "/batch/c1", wantName: "c1", wantWhy: "rule",
		},
		{
			name:      "CRI BestEffort cgroupfs",
			rec:       ContainerRecord{Namespace: "k8s.io", ID: "c1", CgroupsPath: "/kubepods/besteffort/pod1/c1", Labels: criLabels("container"), Annotations: criAnnotations("container", "sb")},
			wantClass: qos.ClassOffline, wantPath: "/kubepods/besteffort/pod1/c1", wantName: "shop/web-0/app", wantWhy: "BestEffort",
		},
		{
			name:      "CRI BestEffort systemd",
			rec:       ContainerRecord{Namespace: "k8s.io", ID: "c1", CgroupsPath: "kubepods-besteffort-pod1.slice:cri-containerd:c1", Labels: criLabels("container")},
			wantClass: qos.ClassOffline, wantPath: "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-c1.scope", wantName: "shop/web-0/app", wantWhy: "BestEffort",
		},
		{
			name:      "CRI Burstable",
			rec:       ContainerRecord{Namespace: "k8s.io", ID: "c1", CgroupsPath: "kubepods-burstable-pod1.slice:cri-containerd:c1", Labels: criLabels("container")},
			wantClass: qos.ClassOnline, wantPath: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-c1.scope", wantName: "shop/web-0/app", wantWhy: "Burstable",
		},
		{
			name:      "CRI Guaranteed",
			rec:       ContainerRecord{Namespace: "k8s.io", ID: "c1", CgroupsPath: "/kubepods/pod1/c1", Labels: criLabels("container")},
			wantClass: qos.ClassOnline, wantPath: "/kubepods/pod1/c1", wantName: "shop/web-0/app", wantWhy: "Guaranteed",
		},
		{
			name:      "CRI BestEffort pod labelled online by pod label",
			rec:       ContainerRecord{Namespace: "k8s.io", ID: "c1", CgroupsPath: "/kubepods/besteffort/pod1/c1", Labels: criLabels("container"), Annotations: criAnnotations("container", "sb")},
			sandbox:   sandboxWith(map[string]string{LabelClass: "online", LabelPriority: "9"}),
			wantClass: qos.ClassOnline, wantPrio: 9, wantPath: "/kubepods/besteffort/pod1/c1", wantName: "shop/web-0/app", wantWhy: "pod label",
		},
		{
			name:      "container label beats pod label",
			rec:       ContainerRecord{Namespace: "k8s.io", ID: "c1", CgroupsPath: "/kubepods/pod1/c1", Labels: merge(criLabels("container"), map[string]string{LabelClass: "offline", LabelPriority: "1"})},
			sandbox:   sandboxWith(map[string]string{LabelClass: "online", LabelPriority: "9"}),
			wantClass: qos.ClassOffline, wantPrio: 1, wantPath: "/kubepods/pod1/c1", wantName: "shop/web-0/app", wantWhy: "label",
		},
		{
			name:      "invalid pod label falls back to QoS",
			rec:       ContainerRecord{Namespace: "k8s.io", ID: "c1", CgroupsPath: "/kubepods/besteffort/pod1/c1", Labels: criLabels("container")},
			sandbox:   sandboxWith(map[string]string{LabelClass: "bronze", LabelPriority: "x"}),
			wantClass: qos.ClassOffline, wantPath: "/kubepods/besteffort/pod1/c1", wantName: "shop/web-0/app", wantWarns: 2, wantWhy: "BestEffort",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ClassifyContainer(tc.rec, tc.sandbox, testRules)
			if err != nil {
				t.Fatal(err)
			}
			if got.Class != tc.wantClass || got.Priority != tc.wantPrio || got.CgroupPath != tc.wantPath || got.Name != tc.wantName {
				t.Errorf("got class %s prio %d path %s name %s; want %s %d %s %s", got.Class, got.Priority, got.CgroupPath, got.Name, tc.wantClass, tc.wantPrio, tc.wantPath, tc.wantName)
			}
			if len(got.Warnings) != tc.wantWarns {
				t.Errorf("warnings %q, want %d", got.Warnings, tc.wantWarns)
			}
			if !strings.Contains(got.Reason, tc.wantWhy) {
				t.Errorf("reason %q, want it to mention %q", got.Reason, tc.wantWhy)
			}
		})
	}
}

func TestClassifyContainerRejectsUnusableCgroupPath(t *testing.T) {
	for _, p := range []string{"", "/", "relative", "bad:slice:x"} {
		_, err := ClassifyContainer(ContainerRecord{Namespace: "ns", ID: "c1", CgroupsPath: p}, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "ns/c1") {
			t.Errorf("cgroups path %q: err %v, want an error naming ns/c1", p, err)
		}
	}
}

func TestSandboxDetection(t *testing.T) {
	for _, tc := range []struct {
		rec  ContainerRecord
		want bool
	}{
		{ContainerRecord{Labels: map[string]string{labelCRIKind: "sandbox"}}, true},
		{ContainerRecord{Annotations: map[string]string{annotationContainerTy: "sandbox"}}, true},
		{ContainerRecord{Labels: map[string]string{labelCRIKind: "container"}}, false},
		{ContainerRecord{}, false},
	} {
		if got := tc.rec.IsSandbox(); got != tc.want {
			t.Errorf("IsSandbox(%+v) = %v", tc.rec, got)
		}
	}
}

func TestPodQOSClass(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	for _, tc := range []struct {
		path string
		res  *specs.LinuxResources
		want PodQOS
	}{
		{"/kubepods/besteffort/pod1/c", nil, QOSBestEffort},
		{"/kubepods/burstable/pod1/c", nil, QOSBurstable},
		{"/kubepods/pod1/c", nil, QOSGuaranteed},
		{"/custom-root/kubepods/burstable/pod1/c", nil, QOSBurstable},
		{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-c.scope", nil, QOSBestEffort},
		{"/kubepods.slice/kubepods-pod1.slice/cri-containerd-c.scope", nil, QOSGuaranteed},
		// The path wins over resources.
		{"/kubepods/besteffort/pod1/c", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 30)}}, QOSBestEffort},
		// No kubelet layout: resources decide.
		{"/elsewhere/c", nil, QOSBestEffort},
		{"/elsewhere/c", &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(2)}}, QOSBestEffort},
		{"/elsewhere/c", &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(512)}}, QOSBurstable},
		{"/elsewhere/c", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 30)}}, QOSBurstable},
		{"/elsewhere/c", &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(50000)}}, QOSBurstable},
		{"/kubepods", nil, QOSBestEffort},
	} {
		if got := PodQOSClass(tc.path, tc.res); got != tc.want {
			t.Errorf("PodQOSClass(%q) = %s, want %s", tc.path, got, tc.want)
		}
	}
}

func TestMatchRuleFirstMatchWins(t *testing.T) {
	rules := []qos.ClassRule{
		{Name: "one", Cgroup: "/system.slice/special.service", Class: qos.ClassOnline},
		{Name: "all", Cgroup: "/system.slice/*", Class: qos.ClassSystem},
	}
	if r, ok := MatchRule(rules, "/system.slice/special.service"); !ok || r.Name != "one" {
		t.Errorf("got %+v %v, want rule one", r, ok)
	}
	if r, ok := MatchRule(rules, "/system.slice/other.service"); !ok || r.Name != "all" {
		t.Errorf("got %+v %v, want rule all", r, ok)
	}
	// path.Match's * does not cross '/'.
	if r, ok := MatchRule(rules, "/system.slice/other.service/child"); ok {
		t.Errorf("child matched %+v", r)
	}
}

func TestValidateRulesReportsEveryProblem(t *testing.T) {
	err := ValidateRules([]qos.ClassRule{
		{Name: "ok", Cgroup: "/a/*", Class: qos.ClassOffline},
		{Name: "rel", Cgroup: "a/*", Class: qos.ClassOffline},
		{Name: "glob", Cgroup: "/a/[", Class: qos.ClassOffline},
		{Name: "class", Cgroup: "/b", Class: "gold"},
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`rule 1 ("rel")`, `rule 2 ("glob")`, path.ErrBadPattern.Error(), `rule 3 ("class")`, `"gold"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), `"ok"`) {
		t.Errorf("error %q blames the valid rule", err)
	}
	if err := ValidateRules(testRules); err != nil {
		t.Errorf("valid rules: %v", err)
	}
}

// FuzzClassifyContainer feeds user-controlled label values and cgroups
// paths: classification never panics, and a listed container always has a
// valid class and a usable cgroup path.
func FuzzClassifyContainer(f *testing.F) {
	f.Add("offline", "5", "/t/c1", "online", "1", true)
	f.Add("gold", "x", "kubepods-besteffort-pod1.slice:cri-containerd:c", "", "", true)
	f.Add("", "", "/batch/c", "offline", "-9", false)
	f.Fuzz(func(t *testing.T, class, prio, cgroupsPath, podClass, podPrio string, cri bool) {
		rec := ContainerRecord{ID: "c", CgroupsPath: cgroupsPath, Labels: map[string]string{LabelClass: class, LabelPriority: prio}}
		var sb *ContainerRecord
		if cri {
			for k, v := range criLabels("container") {
				rec.Labels[k] = v
			}
			sb = &ContainerRecord{Labels: map[string]string{LabelClass: podClass, LabelPriority: podPrio}}
		}
		c, err := ClassifyContainer(rec, sb, testRules)
		if err != nil {
			return
		}
		if _, err := qos.ParseClass(string(c.Class)); err != nil {
			t.Fatalf("class %q: %v", c.Class, err)
		}
		if c.CgroupPath == "" || c.CgroupPath == "/" || c.CgroupPath[0] != '/' {
			t.Fatalf("cgroup path %q", c.CgroupPath)
		}
		if _, err := qos.ParseClass(strings.TrimSpace(class)); err != nil && class != "" && c.Reason == "label "+LabelClass {
			t.Fatalf("invalid class label %q decided the class", class)
		}
	})
}
