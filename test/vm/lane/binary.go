package lane

import (
	"debug/buildinfo"
	"debug/elf"
	"fmt"
)

// CheckGuestBinary verifies that the program at path can run in the guest:
// a static x86-64 ELF (the initramfs has no dynamic loader or libc) and, for
// Go programs, built for GOAMD64=v1 (the emulated qemu64 CPU lacks the
// v2+ instructions, and a v3 binary dies before main). The error says how
// to build it.
func CheckGuestBinary(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("guest binary %s: %w", path, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("guest binary %s: machine %v, want x86-64", path, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("guest binary %s: dynamically linked; build it with CGO_ENABLED=0 GOAMD64=v1 (test/vm/test.sh does)", path)
		}
	}
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil // not a Go program: nothing more to check
	}
	for _, s := range info.Settings {
		if s.Key == "GOAMD64" && s.Value != "v1" {
			return fmt.Errorf("guest binary %s: built with GOAMD64=%s; the emulated qemu64 CPU needs GOAMD64=v1 (test/vm/test.sh sets it)", path, s.Value)
		}
	}
	return nil
}
