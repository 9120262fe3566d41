package target

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// DetectGPUs counts the NVIDIA GPUs the driver lists under
// procRoot/driver/nvidia/gpus (one directory per device) and reads the
// first one's model from its information file. No driver is no GPU (0,
// "", nil); a device whose model cannot be read is an error.
func DetectGPUs(procRoot string) (int, string, error) {
	dir := filepath.Join(procRoot, "driver", "nvidia", "gpus")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("gpus: %w", err)
	}
	var devs []string
	for _, e := range entries {
		if e.IsDir() {
			devs = append(devs, e.Name())
		}
	}
	if len(devs) == 0 {
		return 0, "", nil
	}
	sort.Strings(devs)
	info := filepath.Join(dir, devs[0], "information")
	model, err := gpuModel(info)
	if err != nil {
		return 0, "", fmt.Errorf("gpus: %s: %w", info, err)
	}
	return len(devs), model, nil
}

// gpuModel reads the "Model:" line of a driver information file.
func gpuModel(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Model:"); ok {
			if m := strings.TrimSpace(rest); m != "" {
				return m, nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no Model line")
}

// ParseExtended reads extended resources as "name=amount,name=amount"
// (amounts are whole units, as jobs request them). cpu and memory are
// the host's own and cannot be named; every bad entry is reported.
func ParseExtended(s string) (map[string]int64, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]int64{}
	var errs []error
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		switch {
		case !ok || k == "":
			errs = append(errs, fmt.Errorf("%q is not name=amount", kv))
			continue
		case k == "cpu" || k == "memory":
			errs = append(errs, fmt.Errorf("%q: %s is measured, not configured", kv, k))
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("%q: amount is not a whole number >= 0", kv))
			continue
		}
		if _, dup := out[k]; dup {
			errs = append(errs, fmt.Errorf("%q: %s given twice", kv, k))
			continue
		}
		out[k] = n
	}
	return out, errors.Join(errs...)
}
