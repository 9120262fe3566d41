package kerneltest

import (
	"os"
	"os/exec"
	"testing"
)

// FeatureChromium is a headless Chromium for the web view's browser tests
// (Debian's chromium package).
const FeatureChromium = "chromium"

// RequireChromium needs a Chromium binary (SLUICE_CHROMIUM, else chromium
// or chromium-browser on PATH) and returns its path.
func RequireChromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SLUICE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Missing(t, FeatureChromium, "no chromium or chromium-browser on PATH (apt-get install chromium, or set SLUICE_CHROMIUM)")
	return ""
}
