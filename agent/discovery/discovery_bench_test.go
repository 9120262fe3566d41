package discovery

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/qos"
)

func BenchmarkClassifyContainer(b *testing.B) {
	rec := ContainerRecord{
		Namespace:   "k8s.io",
		ID:          "0123456789abcdef",
		CgroupsPath: "kubepods-besteffort-pod1.slice:cri-containerd:0123456789abcdef",
		Labels:      criLabels("container"),
		Annotations: criAnnotations("container", "sb"),
	}
	sb := &ContainerRecord{Labels: map[string]string{LabelPriority: "3"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ClassifyContainer(rec, sb, testRules); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWalkRules walks a tree of 10 slices x 100 services, as a busy
// host's /system.slice-like layout, with two rules.
func BenchmarkWalkRules(b *testing.B) {
	root := b.TempDir()
	for s := range 10 {
		for c := range 100 {
			if err := os.MkdirAll(filepath.Join(root, fmt.Sprintf("slice%d/svc%d.service", s, c)), 0o755); err != nil {
				b.Fatal(err)
			}
		}
	}
	rules := []qos.ClassRule{
		{Name: "batch", Cgroup: "/slice9/*", Class: qos.ClassOffline},
		{Name: "rest", Cgroup: "/slice*/*", Class: qos.ClassSystem},
	}
	b.ReportAllocs()
	for b.Loop() {
		ws, err := WalkRules(root, 4, rules, nil)
		if err != nil || len(ws) != 1000 {
			b.Fatalf("%d workloads, %v", len(ws), err)
		}
	}
}
