package brainlink

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Files under Config.StateDir.
const (
	nodeIDFile = "node-id"
	targetFile = "target.json"
)

// loadNodeID reads the node ID, generating and keeping one on first use.
func loadNodeID(dir string) (string, error) {
	path := filepath.Join(dir, nodeIDFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		id := strings.TrimSpace(string(data))
		if id == "" || len(id) > 128 {
			return "", fmt.Errorf("node id %s: empty or longer than 128 bytes; remove it to generate a new one", path)
		}
		return id, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("node id: %w", err)
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("node id: %w", err)
	}
	id := hex.EncodeToString(b[:])
	if err := writeFileAtomic(path, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("node id: %w", err)
	}
	return id, nil
}

// loadTarget reads the persisted target; none is the zero target.
func loadTarget(dir string) (Target, error) {
	path := filepath.Join(dir, targetFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Target{}, nil
	}
	if err != nil {
		return Target{}, fmt.Errorf("last target: %w", err)
	}
	var t Target
	if err := json.Unmarshal(data, &t); err != nil {
		return Target{}, fmt.Errorf("last target %s: %w", path, err)
	}
	return t, nil
}

func saveTarget(dir string, t Target) error {
	data, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return fmt.Errorf("save target: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, targetFile), data); err != nil {
		return fmt.Errorf("save target: %w", err)
	}
	return nil
}

// writeFileAtomic writes, syncs and renames, so a crash leaves the old or
// the new file, never half of one.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
