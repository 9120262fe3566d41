package bootspec

import (
	"strings"
	"testing"
)

func TestFindExit(t *testing.T) {
	const tok = "feedface01"
	for _, tc := range []struct {
		name       string
		line       string
		wantOK     bool
		wantBefore string
		wantStatus int
		wantErr    bool
	}{
		{name: "own line", line: ExitLine(tok, 0), wantOK: true},
		{name: "failure status", line: ExitLine(tok, 1), wantOK: true, wantStatus: 1},
		{name: "signal status", line: ExitLine(tok, 128+9) + "\r", wantOK: true, wantStatus: 137},
		{name: "setup failed", line: ExitLine(tok, StatusSetupFailed), wantOK: true, wantStatus: StatusSetupFailed},
		{name: "after unterminated output", line: "PASS" + ExitLine(tok, 0), wantOK: true, wantBefore: "PASS"},
		{name: "other token is test output", line: ExitLine("0000000000", 0)},
		{name: "plain output", line: "--- PASS: TestX (0.00s)"},
		{name: "garbage status", line: ExitLine(tok, 0) + "x", wantErr: true},
		{name: "status out of range", line: "sluice-vm-exit " + tok + " 256", wantErr: true},
		{name: "signed status", line: "sluice-vm-exit " + tok + " +3", wantErr: true},
		{name: "leading zero", line: "sluice-vm-exit " + tok + " 03", wantErr: true},
		{name: "negative status", line: "sluice-vm-exit " + tok + " -1", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, status, ok, err := FindExit(tc.line, tok)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if ok != tc.wantOK || before != tc.wantBefore || status != tc.wantStatus {
				t.Fatalf("FindExit(%q) = %q, %d, %v; want %q, %d, %v", tc.line, before, status, ok, tc.wantBefore, tc.wantStatus, tc.wantOK)
			}
		})
	}
}

func FuzzFindExit(f *testing.F) {
	f.Add("PASS"+ExitLine("abcdefgh", 3), "abcdefgh")
	f.Add("sluice-vm-exit abcdefgh 99999999999999999999", "abcdefgh")
	f.Fuzz(func(t *testing.T, line, token string) {
		before, status, ok, err := FindExit(line, token)
		if err != nil || !ok {
			return
		}
		if !strings.HasPrefix(line, before) {
			t.Fatalf("before %q is not a prefix of %q", before, line)
		}
		if status < 0 || status > 255 && status != StatusSetupFailed {
			t.Fatalf("status %d out of range", status)
		}
		if !strings.Contains(line, ExitLine(token, status)) {
			t.Fatalf("line %q does not contain the exit line for %d", line, status)
		}
	})
}
