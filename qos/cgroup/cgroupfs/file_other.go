//go:build !linux

package cgroupfs

import (
	"io"
	"os"
)

// ReadFile reads a whole file.
func ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

// ReadFileInto reads a whole file into buf (from its length on), growing
// it if needed.
func ReadFileInto(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, max(cap(buf), 512))...)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// NoSubdirs proves nothing without Linux's link counts.
func NoSubdirs(string) bool { return false }

// OnCgroupfs is false: cgroups need Linux.
func OnCgroupfs(string) bool { return false }
