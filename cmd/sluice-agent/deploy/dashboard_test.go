package deploy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/test/kerneltest"
)

type dashboard struct {
	Title  string  `json:"title"`
	UID    string  `json:"uid"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

// metricName finds the series a PromQL expression reads: the dashboard
// queries only Sluice's own series and the Go client's process and
// runtime collectors.
var metricName = regexp.MustCompile(`\b(?:sluice|process|go)_[a-zA-Z0-9_]*[a-zA-Z0-9]\b`)

// queried maps each row ("agent" or "brain", from the row title) to the
// metric names its panels query, and checks the dashboard's shape.
func queried(t *testing.T) map[string][]string {
	t.Helper()
	data, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard without title, uid or panels: %q %q %d", d.Title, d.UID, len(d.Panels))
	}
	out := map[string][]string{}
	ids := map[int]bool{}
	row := ""
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			row = strings.ToLower(strings.SplitN(p.Title, ":", 2)[0])
			if row != "agent" && row != "brain" {
				t.Fatalf("row %q: titles start with Agent: or Brain:", p.Title)
			}
			continue
		}
		if row == "" || p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("panel %d %q: outside a row, untitled or without queries", p.ID, p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if refs[tg.RefID] || tg.RefID == "" {
				t.Errorf("panel %q: refId %q empty or repeated", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			names := metricName.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q reads no metric", p.Title, tg.Expr)
			}
			out[row] = append(out[row], names...)
		}
	}
	for row, names := range out {
		slices.Sort(names)
		out[row] = slices.Compact(names)
	}
	return out
}

// exposed lists the sample names in a /metrics text exposition
// (histograms as their _bucket, _sum and _count series).
func exposed(t *testing.T, url string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, " ")
		name, _, _ = strings.Cut(name, "{")
		out[name] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs a binary until the test ends (SIGTERM, then wait).
func start(t *testing.T, bin string, args ...string) *strings.Builder {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	return &stderr
}

func waitFor(t *testing.T, what string, stderr fmt.Stringer, cond func() bool) {
	t.Helper()
	// A hang guard, not a timing assertion.
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s\n%s", what, stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func get(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestDashboardQueriesWhatTheBinariesExport starts the real sluice-brain
// and a dry-run sluice-agent attached to it, scrapes both, and checks that
// every metric the dashboard's agent rows query is in the agent's /metrics
// and every metric its brain rows query is in the brain's.
func TestDashboardQueriesWhatTheBinariesExport(t *testing.T) {
	want := queried(t)
	if len(want["agent"]) == 0 || len(want["brain"]) == 0 {
		t.Fatalf("dashboard queries agent %v, brain %v: want both", want["agent"], want["brain"])
	}
	kerneltest.RequireRoot(t)
	kerneltest.RequireCgroupV1Controller(t, "cpu")
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", bin+"/", "..", "../../sluice-brain").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	brainAddr, agentAddr := freeAddr(t), freeAddr(t)
	brainLog := start(t, filepath.Join(bin, "sluice-brain"), "-data-dir", t.TempDir(), "-listen", brainAddr, "-log-level", "warn", "-insecure-loopback")
	waitFor(t, "the brain serving", brainLog, func() bool { return strings.Contains(get("http://"+brainAddr+"/healthz"), "ok") })
	agentLog := start(t, filepath.Join(bin, "sluice-agent"), "-dry-run", "-containerd", "", "-listen", agentAddr,
		"-brain", "http://"+brainAddr, "-host-name", kerneltest.UniqueName("dash"), "-state-dir", t.TempDir(), "-log-level", "error")
	waitFor(t, "the agent connected to the brain and the brain counting it up", agentLog, func() bool {
		return strings.Contains(get("http://"+agentAddr+"/metrics"), "sluice_brain_connected 1") &&
			strings.Contains(get("http://"+brainAddr+"/metrics"), `sluice_brain_hosts{state="up"} 1`)
	})
	have := map[string]map[string]bool{"agent": exposed(t, "http://"+agentAddr+"/metrics"), "brain": exposed(t, "http://"+brainAddr+"/metrics")}
	for row, names := range want {
		for _, name := range names {
			if !have[row][name] {
				t.Errorf("the dashboard's %s rows query %s, which sluice-%s does not export", row, name, row)
			}
		}
	}
	t.Logf("checked %d agent and %d brain metrics", len(want["agent"]), len(want["brain"]))
}
