//go:build !linux

package cgroupfs

import (
	"io"
	"os"
)

// WriteFile writes data to an existing file, never creating one.
func WriteFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr != nil {
		return werr
	}
	return cerr
}

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
