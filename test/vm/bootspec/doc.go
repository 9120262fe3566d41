// Package bootspec is the contract between the host side of the cgroup v2
// VM lane (test/vm/lane) and the guest's /init (test/vm/init): the spec file
// the host packs into the initramfs, and the exit line the guest prints on
// the serial console.
//
// The test's arguments travel in a file, not on the kernel command line,
// because the kernel hands unknown command-line words to /init as arguments
// and would mangle anything with spaces, quotes or '='.
package bootspec
