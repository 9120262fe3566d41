package converge

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// A launched container's output (stdout and stderr, interleaved as
// written) goes to <LogDir>/<id>.log, written by containerd's shim itself
// (the file:// stdio scheme): the output keeps flowing while the agent
// restarts, and no pipe ties the container to the agent's life. The shim
// opens the file O_APPEND, so rotation is copy-then-truncate: past
// LogMaxBytes the live file is copied to <id>.log.1 (replacing the older
// one) and truncated, and the shim writes on from its start. Output
// written between the copy and the truncation is lost (a few lines at
// most); rotation runs every converge pass, so a container writing
// faster than LogMaxBytes per pass overshoots until the next one. A
// container the target drops takes its logs with it.

// DefaultLogMaxBytes is Config.LogMaxBytes's default.
const DefaultLogMaxBytes = 1 << 20

// ErrNoLog is wrapped when a container's output is not kept here.
var ErrNoLog = errors.New("no output kept")

func (c *Converger) logPath(id string) string { return filepath.Join(c.cfg.LogDir, id+".log") }

// rotateLogs rotates the live log of every container in ids that grew
// past LogMaxBytes; failures are joined, the others still rotate.
func (c *Converger) rotateLogs(ids []string) error {
	if c.cfg.LogDir == "" || c.cfg.DryRun {
		return nil
	}
	var errs []error
	for _, id := range ids {
		if err := rotate(c.logPath(id), c.cfg.LogMaxBytes); err != nil {
			errs = append(errs, fmt.Errorf("container %s: rotate log: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// rotate copies path to path.1 and truncates path once it is over max
// bytes.
func rotate(path string, max int64) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Size() <= max {
		return nil
	}
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := path + ".1.tmp"
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	// What the shim appends while copying is copied too, up to the size
	// seen, so the older file stays bounded.
	_, err = io.Copy(dst, io.LimitReader(src, fi.Size()))
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path+".1")
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Truncate(path, 0)
}

// removeLogs deletes a dropped container's logs.
func (c *Converger) removeLogs(id string) error {
	if c.cfg.LogDir == "" {
		return nil
	}
	var errs []error
	for _, p := range []string{c.logPath(id), c.logPath(id) + ".1"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Logs returns the last maxBytes of container id's output (the rotated
// file's tail, then the live file) and whether older output was left
// out. It wraps ErrNoLog when no output is kept for id: logs are off, the
// ID is not one a container can have, or no container of that ID was
// launched here.
func (c *Converger) Logs(id string, maxBytes int64) ([]byte, bool, error) {
	if c.cfg.LogDir == "" {
		return nil, false, fmt.Errorf("container %s: %w: the agent has no log directory", id, ErrNoLog)
	}
	if !validID(id) {
		return nil, false, fmt.Errorf("container %q: %w: not a container ID", id, ErrNoLog)
	}
	if maxBytes <= 0 {
		return nil, false, fmt.Errorf("container %s: max bytes %d: not positive", id, maxBytes)
	}
	live, liveTrunc, err := tail(c.logPath(id), maxBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("container %s: %w here", id, ErrNoLog)
	}
	if err != nil {
		return nil, false, fmt.Errorf("container %s: read log: %w", id, err)
	}
	if liveTrunc || int64(len(live)) == maxBytes {
		return live, liveTrunc, nil
	}
	old, oldTrunc, err := tail(c.logPath(id)+".1", maxBytes-int64(len(live)))
	if errors.Is(err, fs.ErrNotExist) {
		return live, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("container %s: read rotated log: %w", id, err)
	}
	return append(old, live...), oldTrunc, nil
}

// tail reads the last max bytes of path and whether there was more.
func tail(path string, max int64) ([]byte, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	off := max64(fi.Size()-max, 0)
	buf := make([]byte, fi.Size()-off)
	n, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, false, err
	}
	return buf[:n], off > 0, nil
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// validID accepts the IDs brain replicas have ("<job>-<index>": lower-case
// letters, digits, '-', '.', '_'), so a requested ID never names a path
// outside LogDir.
func validID(id string) bool {
	if id == "" || len(id) > 128 || id[0] == '.' || id[0] == '-' {
		return false
	}
	for _, r := range id {
		ok := (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '-' || r == '.' || r == '_'
		if !ok {
			return false
		}
	}
	return true
}
