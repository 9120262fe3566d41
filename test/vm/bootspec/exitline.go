package bootspec

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// HeartbeatEvery is how often /init writes a byte to the guest's second
// serial port while the test runs (the host's lane.Machine.Heartbeat).
const HeartbeatEvery = 2 * time.Second

// exitMarker starts the exit line; the token and status follow.
const exitMarker = "sluice-vm-exit "

// Status values /init reports when the test never produced one of its own.
// They sit outside 0..255 (exit codes) and 129..192 (killed by a signal,
// reported as 128+signal), so the host can tell them apart.
const (
	// StatusSetupFailed means /init could not prepare the guest (mounts,
	// cgroup controllers, modules) or start the test.
	StatusSetupFailed = 1000
)

// ExitLine is the line /init prints after the test ends. status is the
// test's exit code, 128+signal when a signal killed it, or StatusSetupFailed.
func ExitLine(token string, status int) string {
	return fmt.Sprintf("%s%s %d", exitMarker, token, status)
}

// FindExit looks for the exit line carrying token inside line (a console
// line, without its newline). The marker may follow text the test printed
// without a trailing newline; before is that text. ok is false when line
// holds no exit line for token; a marker with token but a malformed status
// is an error, since it can only come from a broken /init.
func FindExit(line, token string) (before string, status int, ok bool, err error) {
	prefix := exitMarker + token + " "
	i := strings.LastIndex(line, prefix)
	if i < 0 {
		return "", 0, false, nil
	}
	rest := strings.TrimRight(line[i+len(prefix):], "\r")
	status, err = strconv.Atoi(rest)
	// Only the canonical decimal form /init prints is accepted ("+3" or
	// "03" cannot come from ExitLine).
	if err != nil || strconv.Itoa(status) != rest || status < 0 || (status > 255 && status != StatusSetupFailed) {
		return "", 0, false, fmt.Errorf("exit line %q: malformed status %q", line[i:], rest)
	}
	return line[:i], status, true, nil
}
