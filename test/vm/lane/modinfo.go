package lane

import (
	"bytes"
	"debug/elf"
	"fmt"
	"slices"
	"strings"
)

// Module is one loadable kernel module.
type Module struct {
	// Name is the module name with dashes folded to underscores, as the
	// kernel and modinfo "depends=" spell it.
	Name string
	// Depends are the modules that must be loaded first (modinfo depends=,
	// which modpost derives from the symbols the module imports: the same
	// facts depmod writes to modules.dep).
	Depends []string
}

// ModuleName folds a module file or name to the kernel's spelling:
// "null_blk.ko" and "null-blk" both become "null_blk".
func ModuleName(s string) string {
	s = s[strings.LastIndexByte(s, '/')+1:]
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		s = strings.TrimSuffix(s, ext)
	}
	s = strings.TrimSuffix(s, ".ko")
	return strings.ReplaceAll(s, "-", "_")
}

// ReadModule reads the .modinfo section of an uncompressed .ko.
func ReadModule(ko []byte) (Module, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return Module{}, fmt.Errorf("module: %w", err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return Module{}, fmt.Errorf("module: no .modinfo section")
	}
	data, err := sec.Data()
	if err != nil {
		return Module{}, fmt.Errorf("module: read .modinfo: %w", err)
	}
	return ParseModinfo(data)
}

// ParseModinfo parses a .modinfo section: NUL-separated key=value strings.
func ParseModinfo(data []byte) (Module, error) {
	var m Module
	seenDepends := false
	for _, field := range bytes.Split(data, []byte{0}) {
		if len(field) == 0 {
			continue // alignment padding between strings
		}
		k, v, ok := strings.Cut(string(field), "=")
		if !ok {
			return Module{}, fmt.Errorf("modinfo: field %q is not key=value", field)
		}
		switch k {
		case "name":
			if m.Name != "" {
				return Module{}, fmt.Errorf("modinfo: name given twice (%q, %q)", m.Name, v)
			}
			if v == "" || strings.ContainsAny(v, "/ ,") {
				return Module{}, fmt.Errorf("modinfo: bad name %q", v)
			}
			m.Name = ModuleName(v)
		case "depends":
			if seenDepends {
				return Module{}, fmt.Errorf("modinfo: depends given twice")
			}
			seenDepends = true
			for _, d := range strings.Split(v, ",") {
				if d == "" {
					continue
				}
				if strings.ContainsAny(d, "/ ") {
					return Module{}, fmt.Errorf("modinfo: bad dependency %q", d)
				}
				m.Depends = append(m.Depends, ModuleName(d))
			}
		}
	}
	if m.Name == "" {
		return Module{}, fmt.Errorf("modinfo: no name field")
	}
	if slices.Contains(m.Depends, m.Name) {
		return Module{}, fmt.Errorf("modinfo: %s depends on itself", m.Name)
	}
	return m, nil
}

// LoadOrder returns the modules to load for wanted, dependencies first,
// each once. known maps a module name to its facts; builtin names modules
// compiled into the kernel, which need no loading. A wanted or needed module
// that is neither is an error naming who needed it; so is a cycle.
func LoadOrder(wanted []string, known map[string]Module, builtin map[string]bool) ([]string, error) {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var order []string
	var visit func(name, neededBy string) error
	visit = func(name, neededBy string) error {
		if builtin[name] {
			return nil
		}
		switch state[name] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("module %s: dependency cycle", name)
		}
		m, ok := known[name]
		if !ok {
			if neededBy == "" {
				return fmt.Errorf("module %s: not in the kernel package", name)
			}
			return fmt.Errorf("module %s (needed by %s): not in the kernel package", name, neededBy)
		}
		state[name] = visiting
		for _, d := range m.Depends {
			if err := visit(d, name); err != nil {
				return err
			}
		}
		state[name] = done
		order = append(order, name)
		return nil
	}
	for _, w := range wanted {
		if err := visit(ModuleName(w), ""); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// ParseModulesBuiltin parses lib/modules/<release>/modules.builtin: one
// module path per line.
func ParseModulesBuiltin(data []byte) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out[ModuleName(line)] = true
		}
	}
	return out
}
