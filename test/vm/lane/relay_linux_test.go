package lane

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/test/vm/bootspec"
)

// fakeQEMU writes a shell script standing in for QEMU: it ignores its
// arguments and plays a console transcript, as QEMU's -serial stdio would.
func fakeQEMU(t *testing.T, script string) Machine {
	t.Helper()
	p := filepath.Join(t.TempDir(), "qemu")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return Machine{QEMU: p, Kernel: "/k", Initrd: "/i", MemoryMiB: 64, CPUs: 1}
}

const tok = "tok3n0123"

func TestBootRelaysConsole(t *testing.T) {
	m := fakeQEMU(t, `printf 'boot noise\r\n=== RUN   TestX\r\n--- PASS: TestX\r\nPASS`+bootspec.ExitLine(tok, 0)+`\r\nreboot: Power down\r\n'
printf 'qemu complaint\n' >&2
exit 0
`)
	var out bytes.Buffer
	status, err := Boot(context.Background(), m, tok, &out)
	if err != nil || status != 0 {
		t.Fatalf("Boot = %d, %v", status, err)
	}
	if want := "boot noise\n=== RUN   TestX\n--- PASS: TestX\nPASS\n"; out.String() != want {
		t.Fatalf("relayed %q, want %q (CRs dropped, exit line and what follows withheld)", out.String(), want)
	}
}

func TestBootPassesFailureStatus(t *testing.T) {
	m := fakeQEMU(t, `echo '--- FAIL: TestX'; echo '`+bootspec.ExitLine(tok, 1)+`'`)
	status, err := Boot(context.Background(), m, tok, &bytes.Buffer{})
	if err != nil || status != 1 {
		t.Fatalf("Boot = %d, %v; want 1, nil", status, err)
	}
}

func TestBootIgnoresForgedExitLine(t *testing.T) {
	// A test that prints an exit line with another token must not decide
	// the status.
	m := fakeQEMU(t, `echo '`+bootspec.ExitLine("forged0000", 0)+`'; echo '`+bootspec.ExitLine(tok, 7)+`'`)
	var out bytes.Buffer
	status, err := Boot(context.Background(), m, tok, &out)
	if err != nil || status != 7 {
		t.Fatalf("Boot = %d, %v; want 7", status, err)
	}
	if !strings.Contains(out.String(), "forged0000") {
		t.Errorf("forged line was not relayed as output: %q", out.String())
	}
}

func TestBootWithoutExitLine(t *testing.T) {
	m := fakeQEMU(t, `echo 'Kernel panic - not syncing: Attempted to kill init!'; echo 'qemu: fatal' >&2; exit 1`)
	var out bytes.Buffer
	_, err := Boot(context.Background(), m, tok, &out)
	if !errors.Is(err, ErrNoExitLine) || !strings.Contains(err.Error(), "qemu: fatal") {
		t.Fatalf("got %v, want ErrNoExitLine carrying QEMU's stderr", err)
	}
	if !strings.Contains(out.String(), "Attempted to kill init") {
		t.Errorf("panic not relayed: %q", out.String())
	}
}

func TestBootMalformedExitLine(t *testing.T) {
	m := fakeQEMU(t, `echo 'sluice-vm-exit `+tok+` banana'; exec sleep 60`)
	_, err := Boot(context.Background(), m, tok, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "malformed status") {
		t.Fatalf("got %v, want a malformed-status error", err)
	}
}

func TestBootStopsHungGuest(t *testing.T) {
	m := fakeQEMU(t, `echo 'still booting'; exec sleep 600`)
	ctx, cancel := context.WithTimeoutCause(context.Background(), 200*time.Millisecond, errors.New("vmrun timeout 200ms"))
	defer cancel()
	_, err := Boot(ctx, m, tok, &bytes.Buffer{})
	if !errors.Is(err, ErrNoExitLine) || !strings.Contains(err.Error(), "vmrun timeout 200ms") {
		t.Fatalf("got %v, want ErrNoExitLine naming the timeout", err)
	}
}

// A guest whose heartbeat stops is stopped as stalled long before any
// timeout; one that never beat (no second serial port) is not.
func TestBootStopsStalledGuest(t *testing.T) {
	hb := filepath.Join(t.TempDir(), "heartbeat")
	m := fakeQEMU(t, `printf . >> '`+hb+`'; echo 'running'; exec sleep 600`)
	m.Heartbeat, m.StallAfter = hb, 300*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := Boot(ctx, m, tok, &bytes.Buffer{})
	if !errors.Is(err, ErrGuestStalled) || !errors.Is(err, ErrNoExitLine) {
		t.Fatalf("got %v, want ErrGuestStalled within ErrNoExitLine", err)
	}

	never := fakeQEMU(t, `echo 'running'; exec sleep 600`)
	never.Heartbeat, never.StallAfter = filepath.Join(t.TempDir(), "heartbeat"), 100*time.Millisecond
	ctx2, cancel2 := context.WithTimeoutCause(context.Background(), 2*time.Second, errors.New("vmrun timeout 2s"))
	defer cancel2()
	_, err = Boot(ctx2, never, tok, &bytes.Buffer{})
	if errors.Is(err, ErrGuestStalled) || !strings.Contains(err.Error(), "vmrun timeout 2s") {
		t.Fatalf("got %v, want the caller's timeout: a guest that never beat is not judged by its heartbeat", err)
	}
}

// A guest that keeps beating is not stalled, however long its test runs.
func TestBootKeepsBeatingGuest(t *testing.T) {
	hb := filepath.Join(t.TempDir(), "heartbeat")
	// Three seconds of beats 0.1 s apart against a one-second limit: the
	// run outlasts the limit three times, each gap is a tenth of it.
	m := fakeQEMU(t, `i=0; while [ $i -lt 30 ]; do printf . >> '`+hb+`'; sleep 0.1; i=$((i+1)); done; echo '`+bootspec.ExitLine(tok, 0)+`'`)
	m.Heartbeat, m.StallAfter = hb, time.Second
	status, err := Boot(context.Background(), m, tok, &bytes.Buffer{})
	if err != nil || status != 0 {
		t.Fatalf("Boot = %d, %v; want 0 after three seconds of beats, each within the stall limit", status, err)
	}
}
