package containerdtest

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sluicehq/sluice/test/kerneltest"
)

// BusyboxImageName is the name ImportBusybox gives the image.
const BusyboxImageName = "docker.io/sluicetest/busybox:latest"

// busyboxApplets get a symlink in /bin; busybox picks the applet by argv[0].
var busyboxApplets = []string{"sh", "sleep", "cat", "echo", "true", "false", "ls", "ps", "kill", "env", "touch", "rm", "mkdir", "test", "["}

// ImportBusybox builds a one-layer OCI image from the host's static busybox
// (Debian's busybox-static), imports it into namespace and unpacks it with
// the default snapshotter. Idempotent per namespace.
func (i *Instance) ImportBusybox(t testing.TB, ctx context.Context, namespace string) containerd.Image {
	t.Helper()
	i.mu.Lock()
	img, ok := i.images[namespace]
	client := i.Client
	i.mu.Unlock()
	if ok {
		return img
	}
	layout := busyboxLayout(t)
	ctx = namespaces.WithNamespace(ctx, namespace)
	imgs, err := client.Import(ctx, bytes.NewReader(layout), containerd.WithImportPlatform(platforms.Default()))
	if err != nil {
		t.Fatalf("containerdtest: import busybox into %s: %v", namespace, err)
	}
	if len(imgs) != 1 {
		t.Fatalf("containerdtest: import busybox into %s: got %d images, want 1", namespace, len(imgs))
	}
	img = containerd.NewImage(client, imgs[0])
	if err := img.Unpack(ctx, ""); err != nil {
		t.Fatalf("containerdtest: unpack %s in %s: %v", imgs[0].Name, namespace, err)
	}
	i.mu.Lock()
	i.images[namespace] = img
	i.mu.Unlock()
	return img
}

// BusyboxTar writes the busybox image layout (see BusyboxLayout) named
// BusyboxImageName to a file under the instance's directory and returns
// its path, for code that imports images itself.
func (i *Instance) BusyboxTar(t testing.TB) string {
	t.Helper()
	layout := busyboxLayout(t)
	p := filepath.Join(i.Dir, "busybox-oci.tar")
	if err := os.WriteFile(p, layout, 0o600); err != nil {
		t.Fatalf("containerdtest: %v", err)
	}
	return p
}

// busyboxLayout is the layout of the host's static busybox named
// BusyboxImageName; the test skips (or fails, when CI declares containerd)
// without one.
func busyboxLayout(t testing.TB) []byte {
	t.Helper()
	busybox := kerneltest.RequireBinary(t, kerneltest.FeatureContainerd, "busybox")
	if err := requireStatic(busybox); err != nil {
		kerneltest.Missing(t, kerneltest.FeatureContainerd, "%v (install Debian's busybox-static)", err)
	}
	layout, err := BusyboxLayout(busybox, BusyboxImageName)
	if err != nil {
		t.Fatalf("containerdtest: %v", err)
	}
	return layout
}

// BusyboxLayout returns an OCI image layout as a tar stream: one
// uncompressed layer holding busyboxPath as /bin/busybox (it must be
// statically linked: the image has no libc) plus applet symlinks, a config,
// a manifest, and an index whose io.containerd.image.name annotation names
// the image.
func BusyboxLayout(busyboxPath, name string) ([]byte, error) {
	bin, err := os.ReadFile(busyboxPath)
	if err != nil {
		return nil, fmt.Errorf("read busybox: %w", err)
	}
	layer, err := busyboxLayer(bin)
	if err != nil {
		return nil, err
	}
	layerDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layer), Size: int64(len(layer))}

	created := time.Unix(0, 0).UTC()
	platform := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	config, err := json.Marshal(ocispec.Image{
		Created:  &created,
		Platform: platform,
		Config: ocispec.ImageConfig{
			Env: []string{"PATH=/bin"},
			Cmd: []string{"sh"},
		},
		// Uncompressed layer: its diff id is its digest.
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layerDesc.Digest}},
	})
	if err != nil {
		return nil, fmt.Errorf("encode image config: %w", err)
	}
	configDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}

	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    []ocispec.Descriptor{layerDesc},
	})
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	manifestDesc := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest,
		Digest:    digest.FromBytes(manifest),
		Size:      int64(len(manifest)),
		Platform:  &platform,
		Annotations: map[string]string{
			images.AnnotationImageName: name,
			ocispec.AnnotationRefName:  "latest",
		},
	}
	index, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{manifestDesc},
	})
	if err != nil {
		return nil, fmt.Errorf("encode index: %w", err)
	}
	layoutFile, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return nil, fmt.Errorf("encode oci-layout: %w", err)
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := []struct {
		name string
		data []byte
	}{
		{ocispec.ImageLayoutFile, layoutFile},
		{"index.json", index},
		{blobPath(layerDesc.Digest), layer},
		{blobPath(configDesc.Digest), config},
		{blobPath(manifestDesc.Digest), manifest},
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: created}); err != nil {
			return nil, fmt.Errorf("write layout: %w", err)
		}
	}
	for _, f := range files {
		if err := writeFile(tw, f.name, 0o644, f.data, created); err != nil {
			return nil, fmt.Errorf("write layout: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("write layout: %w", err)
	}
	return buf.Bytes(), nil
}

func busyboxLayer(bin []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(0, 0).UTC()
	// Mount points runc needs; an empty /tmp gives tests a writable place.
	for _, d := range []string{"bin/", "dev/", "etc/", "proc/", "sys/", "tmp/", "run/"} {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: mode, ModTime: mtime}); err != nil {
			return nil, fmt.Errorf("write layer: %w", err)
		}
	}
	if err := writeFile(tw, "bin/busybox", 0o755, bin, mtime); err != nil {
		return nil, fmt.Errorf("write layer: %w", err)
	}
	for _, a := range busyboxApplets {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777, ModTime: mtime}); err != nil {
			return nil, fmt.Errorf("write layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("write layer: %w", err)
	}
	return buf.Bytes(), nil
}

func writeFile(tw *tar.Writer, name string, mode int64, data []byte, mtime time.Time) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mtime}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

func blobPath(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}

// requireStatic fails for an ELF with an interpreter: the image has no
// libc, so a dynamically linked busybox (Debian's "busybox") cannot run.
func requireStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("busybox at %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("busybox at %s is dynamically linked", path)
		}
	}
	return nil
}
