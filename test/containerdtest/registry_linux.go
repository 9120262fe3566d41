package containerdtest

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/test/kerneltest"
)

// listeningRE finds the address in the registry's "listening on" log line.
var listeningRE = regexp.MustCompile(`listening on (127\.0\.0\.1:[0-9]+)`)

// StartRegistry starts a private image registry (Debian's docker-registry,
// the distribution project's registry) on a free loopback port with its
// storage under a temporary directory, and returns its host:port. Image
// references on a loopback host are pulled and pushed over plain HTTP by
// containerd's default resolver. The registry is stopped in t.Cleanup.
func StartRegistry(t testing.TB) string {
	t.Helper()
	bin := kerneltest.RequireBinary(t, kerneltest.FeatureContainerd, "docker-registry")
	dir := t.TempDir()
	config := fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
http:
  addr: 127.0.0.1:0
`, filepath.Join(dir, "storage"))
	configPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatalf("containerdtest: registry config: %v", err)
	}
	cmd := exec.Command(bin, "serve", configPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatalf("containerdtest: registry: %v", err)
	}
	cmd.Stdout = io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("containerdtest: start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	// The registry chose its port; its log says which. Keep draining the
	// log afterwards so the registry never blocks on a full pipe.
	found := make(chan string, 1)
	var log strings.Builder
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
			if log.Len() < 16<<10 {
				log.WriteString(line + "\n")
			}
		}
	}()
	var host string
	select {
	case host = <-found:
	case <-logDone:
		t.Fatalf("containerdtest: registry exited before listening:\n%s", log.String())
	case <-time.After(30 * time.Second):
		t.Fatal("containerdtest: registry did not say where it listens within 30s")
	}
	if err := waitForRegistry(host, 30*time.Second); err != nil {
		t.Fatalf("containerdtest: %v", err)
	}
	return host
}

// waitForRegistry polls the registry's API root until it answers 200.
func waitForRegistry(host string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("registry %s not ready after %v: %w", host, timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
