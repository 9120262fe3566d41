package bootspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Path is where the spec lives inside the initramfs.
const Path = "/sluice-vm.json"

// Version is the only spec version this package reads and writes.
const Version = 1

// Spec tells the guest's /init what to run. Paths are absolute guest paths.
type Spec struct {
	Version int `json:"version"`
	// Token is a per-boot random word that marks the exit line, so test
	// output cannot forge the test's status.
	Token string `json:"token"`
	// Program is the test binary; Args are its arguments (without argv[0]).
	Program string   `json:"program"`
	Args    []string `json:"args"`
	// Dir is the working directory (holds the package's testdata/).
	Dir string `json:"dir"`
	// Env is the complete environment, KEY=VALUE.
	Env []string `json:"env"`
	// Modules are kernel module files, loaded in this order (dependencies
	// first) before the test starts.
	Modules []string `json:"modules"`
	// Controllers are enabled in the root cgroup.subtree_control.
	Controllers []string `json:"controllers"`
}

// Encode writes s as JSON after validating it.
func Encode(w io.Writer, s Spec) error {
	if err := s.Validate(); err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("encode boot spec: %w", err)
	}
	return nil
}

// Decode reads a spec strictly: unknown fields, trailing data and invalid
// values are errors.
func Decode(data []byte) (Spec, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("boot spec %s: %w", Path, err)
	}
	if dec.More() {
		return Spec{}, fmt.Errorf("boot spec %s: trailing data after the object", Path)
	}
	if err := s.Validate(); err != nil {
		return Spec{}, fmt.Errorf("boot spec %s: %w", Path, err)
	}
	return s, nil
}

// Validate reports every problem in s at once.
func (s Spec) Validate() error {
	var errs []error
	if s.Version != Version {
		errs = append(errs, fmt.Errorf("version: got %d, want %d", s.Version, Version))
	}
	if err := validToken(s.Token); err != nil {
		errs = append(errs, fmt.Errorf("token: %w", err))
	}
	if !isAbs(s.Program) {
		errs = append(errs, fmt.Errorf("program: %q is not an absolute path", s.Program))
	}
	if !isAbs(s.Dir) {
		errs = append(errs, fmt.Errorf("dir: %q is not an absolute path", s.Dir))
	}
	for i, e := range s.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			errs = append(errs, fmt.Errorf("env[%d]: %q is not KEY=VALUE", i, e))
		}
	}
	for i, m := range s.Modules {
		if !isAbs(m) {
			errs = append(errs, fmt.Errorf("modules[%d]: %q is not an absolute path", i, m))
		}
	}
	for i, c := range s.Controllers {
		if c == "" || strings.ContainsAny(c, " \t\n+-/") {
			errs = append(errs, fmt.Errorf("controllers[%d]: %q is not a controller name", i, c))
		}
	}
	return errors.Join(errs...)
}

func isAbs(p string) bool {
	return path.IsAbs(p) && !strings.ContainsRune(p, 0)
}

func validToken(t string) error {
	if len(t) < 8 || len(t) > 64 {
		return fmt.Errorf("%q: want 8 to 64 characters", t)
	}
	for _, r := range t {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z') {
			return fmt.Errorf("%q: want lower-case letters and digits only", t)
		}
	}
	return nil
}
