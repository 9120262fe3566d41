package lane

import (
	"bytes"
	"context"
	"encoding/binary"
	"os/exec"
	"strings"
	"testing"
)

// fakeBzImage lays out a bzImage the way the x86 build does: setup
// sectors with the boot header, then the protected-mode part holding the
// compressed payload and the 4-byte size trailer at payload_offset.
func fakeBzImage(setupSects byte, protocol uint16, payload []byte, uncompressed uint32) []byte {
	n := int(setupSects)
	if n == 0 {
		n = 4
	}
	start := (n + 1) * 512
	const payloadOffset = 0x2cc
	img := make([]byte, start+payloadOffset)
	img[setupSectsOff] = setupSects
	copy(img[headerMagicOff:], "HdrS")
	binary.LittleEndian.PutUint16(img[protocolOff:], protocol)
	binary.LittleEndian.PutUint32(img[payloadOffsetOff:], payloadOffset)
	binary.LittleEndian.PutUint32(img[payloadLengthOff:], uint32(len(payload)+4))
	img = append(img, payload...)
	img = binary.LittleEndian.AppendUint32(img, uncompressed)
	return append(img, make([]byte, 100)...) // decompressor code after it
}

func TestParseBzImageRoundTripsThroughXZ(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("xz (Debian xz-utils) not installed")
	}
	vmlinux := append([]byte("\x7fELF"), bytes.Repeat([]byte("kernel text "), 5000)...)
	// --x86 like scripts/xz_wrap.sh, so the BCJ filter path is exercised.
	cmd := exec.Command("xz", "--format=xz", "--check=crc32", "--x86", "--lzma2=preset=6", "--stdout")
	cmd.Stdin = bytes.NewReader(vmlinux)
	compressed, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, setup := range []byte{0, 27, 39} {
		img := fakeBzImage(setup, 0x020f, compressed, uint32(len(vmlinux)))
		p, err := ParseBzImage(img)
		if err != nil {
			t.Fatalf("setup_sects %d: %v", setup, err)
		}
		if !bytes.Equal(p.XZ, compressed) || p.SizeBytes != uint32(len(vmlinux)) {
			t.Fatalf("setup_sects %d: payload of %d bytes (size %d), want %d (size %d)", setup, len(p.XZ), p.SizeBytes, len(compressed), len(vmlinux))
		}
		got, err := unxz(context.Background(), p.XZ)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkVmlinux(p, got); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := ParseBzImage(fakeBzImage(39, 0x020f, compressed, uint32(len(vmlinux)+1)))
	got, _ := unxz(context.Background(), p.XZ)
	if err := checkVmlinux(p, got); err == nil || !strings.Contains(err.Error(), "promised") {
		t.Fatalf("size mismatch not reported: %v", err)
	}
	if err := checkVmlinux(Payload{SizeBytes: 4}, []byte("MZ\x00\x00")); err == nil {
		t.Fatal("a non-ELF payload passed")
	}
}

func TestParseBzImageRejects(t *testing.T) {
	xz := append(append([]byte{}, xzMagic...), 1, 2, 3, 4)
	good := fakeBzImage(39, 0x020f, xz, 100)
	for _, tc := range []struct {
		name    string
		img     []byte
		wantErr string
	}{
		{"short", good[:0x200], "too short"},
		{"no header magic", func() []byte { b := bytes.Clone(good); copy(b[headerMagicOff:], "XXXX"); return b }(), "no HdrS"},
		{"old protocol", fakeBzImage(39, 0x0207, xz, 100), "protocol 2.07"},
		{"payload past end", func() []byte {
			b := bytes.Clone(good)
			binary.LittleEndian.PutUint32(b[payloadLengthOff:], 1<<30)
			return b
		}(), "outside"},
		{"gzip payload", fakeBzImage(39, 0x020f, []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0}, 100), "not the XZ magic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseBzImage(tc.img)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func FuzzParseBzImage(f *testing.F) {
	f.Add(fakeBzImage(39, 0x020f, append(append([]byte{}, xzMagic...), 9, 9), 7))
	f.Add(fakeBzImage(0, 0x0208, xzMagic, 0))
	f.Fuzz(func(t *testing.T, img []byte) {
		p, err := ParseBzImage(img)
		if err != nil {
			return
		}
		if !bytes.HasPrefix(p.XZ, xzMagic) {
			t.Fatalf("accepted payload without XZ magic")
		}
		if !bytes.Contains(img, p.XZ) {
			t.Fatalf("payload is not part of the image")
		}
	})
}
