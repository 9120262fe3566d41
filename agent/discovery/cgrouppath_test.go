package discovery

import (
	"path"
	"strings"
	"testing"
)

func TestNormalizeCgroupsPath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		wantErr  string
	}{
		{in: "/sluice/offline/c1", want: "/sluice/offline/c1"},
		{in: "/kubepods//besteffort/./pod1/c1/", want: "/kubepods/besteffort/pod1/c1"},
		{in: "/a/../b", want: "/b"},
		{in: "/default/c1", want: "/default/c1"},
		{in: "kubepods-besteffort-pod1.slice:cri-containerd:abc", want: "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-abc.scope"},
		{in: "kubepods-pod9.slice:cri-containerd:x", want: "/kubepods.slice/kubepods-pod9.slice/cri-containerd-x.scope"},
		{in: "system.slice:docker:abc", want: "/system.slice/docker-abc.scope"},
		{in: ":runc:abc", want: "/system.slice/runc-abc.scope"},
		{in: "-.slice:p:n", want: "/p-n.scope"},
		{in: "user.slice::n", want: "/user.slice/-n.scope"},
		{in: "a-b.slice::c-d.slice", want: "/c.slice/c-d.slice"},
		{in: "", wantErr: "empty"},
		{in: "/", wantErr: "hierarchy root"},
		{in: "/..", wantErr: "hierarchy root"},
		{in: "relative/path", wantErr: "neither absolute"},
		{in: "a:b", wantErr: "neither absolute"},
		{in: "a:b:c:d", wantErr: "neither absolute"},
		{in: "nosuffix:p:n", wantErr: "want <name>.slice"},
		{in: "a--b.slice:p:n", wantErr: "empty component"},
		{in: "-a.slice:p:n", wantErr: "empty component"},
		{in: "a-.slice:p:n", wantErr: "empty component"},
		{in: ".slice:p:n", wantErr: "want <name>.slice"},
		{in: "a.slice:p/q:n", wantErr: "must not contain"},
		{in: "a.slice:p:n/m", wantErr: "must not contain"},
		{in: "a.slice:p:", wantErr: "empty unit name"},
		{in: "a.slice:p:b.slice", wantErr: "no prefix"},
		{in: "/a\x00b", wantErr: "NUL"},
	} {
		got, err := NormalizeCgroupsPath(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("NormalizeCgroupsPath(%q) = %q, %v; want error containing %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("NormalizeCgroupsPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestExpandSlice(t *testing.T) {
	for in, want := range map[string]string{
		"-.slice":                  "/",
		"system.slice":             "/system.slice",
		"kubepods-burstable.slice": "/kubepods.slice/kubepods-burstable.slice",
		"a-b-c.slice":              "/a.slice/a-b.slice/a-b-c.slice",
	} {
		if got, err := ExpandSlice(in); err != nil || got != want {
			t.Errorf("ExpandSlice(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ".slice", "a", "a/b.slice", "a--b.slice", "-a.slice", "a-.slice", "--.slice"} {
		if got, err := ExpandSlice(bad); err == nil {
			t.Errorf("ExpandSlice(%q) = %q, want error", bad, got)
		}
	}
}

// FuzzNormalizeCgroupsPath checks the invariants consumers rely on: a
// result is absolute, clean, not the root, free of NUL and "..", and a
// normalised path normalises to itself.
func FuzzNormalizeCgroupsPath(f *testing.F) {
	for _, s := range []string{"/a/b", "kubepods-besteffort-pod1.slice:cri-containerd:abc", ":p:n", "a-b.slice::c.slice", "/", "x", "a:b:c", "/../..", "-.slice:-:-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizeCgroupsPath(in)
		if err != nil {
			return
		}
		if !strings.HasPrefix(out, "/") || out == "/" || path.Clean(out) != out || strings.ContainsRune(out, 0) {
			t.Fatalf("NormalizeCgroupsPath(%q) = %q: not a clean non-root absolute path", in, out)
		}
		for _, seg := range strings.Split(out[1:], "/") {
			if seg == ".." || seg == "." || seg == "" {
				t.Fatalf("NormalizeCgroupsPath(%q) = %q: segment %q", in, out, seg)
			}
		}
		again, err := NormalizeCgroupsPath(out)
		if err != nil || again != out {
			t.Fatalf("NormalizeCgroupsPath(%q) = %q, but normalising that gives %q, %v", in, out, again, err)
		}
	})
}
