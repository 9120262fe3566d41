package lane

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/test/vm/bootspec"
)

// ErrNoExitLine means the guest stopped (or was stopped) before /init
// printed the test's exit status.
var ErrNoExitLine = errors.New("guest ended without an exit line")

// ErrGuestStalled means the guest's heartbeat (Machine.Heartbeat) stopped
// for StallAfter while the test ran: the emulated machine hung, which a
// slow test does not do (/init beats whatever the test does). Boot wraps
// it with ErrNoExitLine.
var ErrGuestStalled = errors.New("guest stalled: its heartbeat stopped")

// StallAfter is how long Boot waits for a heartbeat (/init beats every
// bootspec.HeartbeatEvery) before it stops the guest. The watch starts at
// the first beat: a guest that cannot open its second serial port never
// beats and is left to the caller's timeout.
const StallAfter = 60 * time.Second

// powerOffGrace is how long QEMU may take to exit after the exit line
// before it is killed; the status is already known by then.
const powerOffGrace = 30 * time.Second

// Boot runs m until the guest powers off, copying the serial console to
// out line by line (carriage returns dropped, the exit line withheld), and
// returns the status in the exit line marked with token. If ctx ends or
// the guest dies first, the error wraps ErrNoExitLine and carries QEMU's
// own complaints.
func Boot(ctx context.Context, m Machine, token string, out io.Writer) (int, error) {
	qctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stallAfter := cmp.Or(m.StallAfter, StallAfter)
	if m.Heartbeat != "" {
		stop := watchHeartbeat(m.Heartbeat, stallAfter, func() { cancel(ErrGuestStalled) })
		defer stop()
	}
	cmd := exec.CommandContext(qctx, m.QEMU, m.Args()...)
	// QEMU must not outlive this process (go test kills the -exec program
	// on timeout).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// Do not wait forever on pipes a killed QEMU's children might hold.
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, fmt.Errorf("qemu: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("qemu: %w", err)
	}

	status, found := -1, false
	var relayErr error
	r := bufio.NewReaderSize(stdout, 64<<10)
	for {
		line, rerr := r.ReadString('\n')
		if line != "" {
			text := strings.TrimRight(line, "\r\n")
			if !found {
				before, st, ok, ferr := bootspec.FindExit(text, token)
				switch {
				case ferr != nil:
					relayErr = ferr
				case ok:
					found, status = true, st
					if before != "" {
						_, relayErr = fmt.Fprintln(out, before)
					}
					// Give the power-off a bounded time: the result is known.
					timer := time.AfterFunc(powerOffGrace, func() { cancel(nil) })
					defer timer.Stop()
				default:
					_, relayErr = fmt.Fprintln(out, text)
				}
			}
		}
		if rerr != nil || relayErr != nil {
			break
		}
	}
	if relayErr != nil {
		cancel(nil)
	}
	werr := cmd.Wait()
	if relayErr != nil {
		return 0, fmt.Errorf("relay guest console: %w", relayErr)
	}
	if found {
		return status, nil
	}
	why := "guest powered off or panicked"
	switch {
	case errors.Is(context.Cause(qctx), ErrGuestStalled):
		return 0, fmt.Errorf("%w: %w (no beat for %v)", ErrNoExitLine, ErrGuestStalled, stallAfter)
	case ctx.Err() != nil:
		why = fmt.Sprintf("stopped: %v", context.Cause(ctx))
	case werr != nil:
		why = fmt.Sprintf("qemu: %v", werr)
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		why += "; qemu stderr: " + s
	}
	return 0, fmt.Errorf("%w (%s)", ErrNoExitLine, why)
}

// watchHeartbeat calls stalled once file, after growing at least once, has
// not grown for after. The returned stop ends the watch.
func watchHeartbeat(file string, after time.Duration, stalled func()) (stop func()) {
	done := make(chan struct{})
	go func() {
		poll := time.NewTicker(min(after/10, time.Second))
		defer poll.Stop()
		var size int64
		var last time.Time
		for {
			select {
			case <-done:
				return
			case now := <-poll.C:
				fi, err := os.Stat(file)
				if err != nil {
					continue
				}
				if fi.Size() != size {
					size, last = fi.Size(), now
				} else if !last.IsZero() && now.Sub(last) >= after {
					stalled()
					return
				}
			}
		}
	}()
	return func() { close(done) }
}
