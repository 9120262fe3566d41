package lane

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// unxz decompresses with xz-utils. Kernel payloads use the x86 BCJ filter
// (scripts/xz_wrap.sh), which the pure-Go decoders on the module proxy
// (ulikunitz/xz) do not implement.
func unxz(ctx context.Context, data []byte) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "xz", "--decompress", "--stdout")
	cmd.Stdin = bytes.NewReader(data)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("xz --decompress: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}
