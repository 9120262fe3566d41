package lane

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// x86 boot protocol offsets (Documentation/arch/x86/boot.rst).
const (
	setupSectsOff    = 0x1f1
	headerMagicOff   = 0x202
	protocolOff      = 0x206
	payloadOffsetOff = 0x248
	payloadLengthOff = 0x24c
	// payload_offset and payload_length exist from protocol 2.08 on.
	minProtocol = 0x0208
)

var (
	xzMagic  = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	elfMagic = []byte{0x7f, 'E', 'L', 'F'}
)

// Payload is the compressed kernel inside a bzImage.
type Payload struct {
	// XZ is the compressed stream without the kernel build's size trailer.
	XZ []byte
	// SizeBytes is the uncompressed size the build appended to the stream.
	SizeBytes uint32
}

// ParseBzImage finds the compressed vmlinux in an x86 bzImage using the
// boot protocol header (rather than scanning for a magic, which can match
// inside the setup code) and checks that it is an XZ stream, the format
// Debian builds with.
func ParseBzImage(img []byte) (Payload, error) {
	if len(img) < payloadLengthOff+4 {
		return Payload{}, fmt.Errorf("bzimage: %d bytes is too short for a boot header", len(img))
	}
	if !bytes.Equal(img[headerMagicOff:headerMagicOff+4], []byte("HdrS")) {
		return Payload{}, fmt.Errorf("bzimage: no HdrS boot header at 0x%x", headerMagicOff)
	}
	if v := binary.LittleEndian.Uint16(img[protocolOff:]); v < minProtocol {
		return Payload{}, fmt.Errorf("bzimage: boot protocol %d.%02d predates payload fields (need 2.08)", v>>8, v&0xff)
	}
	setupSects := int(img[setupSectsOff])
	if setupSects == 0 {
		setupSects = 4 // the boot protocol's historical default
	}
	start := uint64(setupSects+1) * 512
	off := start + uint64(binary.LittleEndian.Uint32(img[payloadOffsetOff:]))
	n := uint64(binary.LittleEndian.Uint32(img[payloadLengthOff:]))
	if n < uint64(len(xzMagic))+4 || off+n > uint64(len(img)) {
		return Payload{}, fmt.Errorf("bzimage: payload [%d, +%d) outside the %d-byte image", off, n, len(img))
	}
	p := img[off : off+n]
	if !bytes.HasPrefix(p, xzMagic) {
		return Payload{}, fmt.Errorf("bzimage: payload starts with % x, not the XZ magic (only XZ kernels are supported)", p[:len(xzMagic)])
	}
	// The kernel build appends the uncompressed size as 4 little-endian
	// bytes (scripts/Makefile.lib size_append); xz rejects it as garbage.
	return Payload{
		XZ:        p[:len(p)-4],
		SizeBytes: binary.LittleEndian.Uint32(p[len(p)-4:]),
	}, nil
}

// checkVmlinux verifies a decompressed payload against what the bzImage
// promised.
func checkVmlinux(p Payload, vmlinux []byte) error {
	if uint64(len(vmlinux)) != uint64(p.SizeBytes) {
		return fmt.Errorf("vmlinux: decompressed %d bytes, bzimage promised %d", len(vmlinux), p.SizeBytes)
	}
	if !bytes.HasPrefix(vmlinux, elfMagic) {
		return fmt.Errorf("vmlinux: decompressed payload is not an ELF file")
	}
	return nil
}
