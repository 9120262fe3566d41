package discovery

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// NormalizeCgroupsPath turns an OCI spec's linux.cgroupsPath into a path
// relative to every hierarchy root ("/a/b"). It accepts the two forms runc
// accepts:
//
//   - cgroupfs: an absolute path, cleaned ("/kubepods/besteffort/pod1/c1");
//   - systemd: "slice:prefix:name", which runc's systemd driver turns into
//     the unit "<prefix>-<name>.scope" inside the slice; slices nest by
//     their dash-separated name ("a-b.slice" lives in "a.slice"), so
//     "kubepods-besteffort-pod1.slice:cri-containerd:c1" is
//     "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-c1.scope".
//     An empty slice is runc's default, "system.slice"; a name ending in
//     ".slice" is a slice unit itself and placed by its own name.
//
// A relative cgroupfs path is an error: runc resolves it against its own
// cgroup, which discovery cannot know. The root ("/") is an error too: no
// container owns the root cgroup, and treating it as one would make the
// whole host one workload.
func NormalizeCgroupsPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty cgroups path")
	}
	if strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("cgroups path %q: contains NUL", p)
	}
	var out string
	switch {
	case strings.HasPrefix(p, "/"):
		out = path.Clean(p)
	case strings.Count(p, ":") == 2:
		var err error
		if out, err = systemdPath(p); err != nil {
			return "", fmt.Errorf("cgroups path %q: %w", p, err)
		}
	default:
		return "", fmt.Errorf("cgroups path %q: neither absolute (cgroupfs) nor slice:prefix:name (systemd)", p)
	}
	if out == "/" {
		return "", fmt.Errorf("cgroups path %q: is the hierarchy root", p)
	}
	return out, nil
}

func systemdPath(p string) (string, error) {
	parts := strings.SplitN(p, ":", 3)
	slice, prefix, name := parts[0], parts[1], parts[2]
	if slice == "" {
		slice = "system.slice"
	}
	if name == "" {
		return "", errors.New("empty unit name")
	}
	if strings.Contains(prefix, "/") || strings.Contains(name, "/") {
		return "", errors.New("unit prefix and name must not contain '/'")
	}
	if strings.HasSuffix(name, ".slice") {
		if prefix != "" {
			return "", errors.New("a slice unit takes no prefix")
		}
		return ExpandSlice(name)
	}
	parent, err := ExpandSlice(slice)
	if err != nil {
		return "", err
	}
	return path.Join(parent, prefix+"-"+name+".scope"), nil
}

// ExpandSlice turns a systemd slice name into its cgroup path:
// "a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice", "-.slice" -> "/".
// It rejects what systemd rejects: a missing ".slice" suffix, '/', and
// empty dash-separated components ("a--b.slice", "-a.slice", "a-.slice").
func ExpandSlice(slice string) (string, error) {
	const suffix = ".slice"
	if !strings.HasSuffix(slice, suffix) || len(slice) == len(suffix) {
		return "", fmt.Errorf("slice %q: want <name>.slice", slice)
	}
	if strings.Contains(slice, "/") {
		return "", fmt.Errorf("slice %q: contains '/'", slice)
	}
	base := strings.TrimSuffix(slice, suffix)
	if base == "-" {
		return "/", nil
	}
	var b strings.Builder
	prefix := ""
	for _, c := range strings.Split(base, "-") {
		if c == "" {
			return "", fmt.Errorf("slice %q: empty component", slice)
		}
		b.WriteString("/" + prefix + c + suffix)
		prefix += c + "-"
	}
	return b.String(), nil
}
