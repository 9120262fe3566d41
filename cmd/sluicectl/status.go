package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicehq/sluice/agent"
	"github.com/sluicehq/sluice/agent/target"
	"github.com/sluicehq/sluice/qos"
)

// defaultAgentAddr matches sluice-agent's default -listen.
const defaultAgentAddr = "unix:/run/sluice/agent.sock"

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", defaultAgentAddr, "agent API address: unix:/path or host:port")
	asJSON := fs.Bool("json", false, "print the raw state as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	snap, raw, err := fetchState(ctx, *addr)
	if err != nil {
		fmt.Fprintf(stderr, "sluicectl status: %v\n", err)
		return 1
	}
	if *asJSON {
		_, _ = stdout.Write(raw)
		return 0
	}
	printStatus(stdout, snap)
	return 0
}

func fetchState(ctx context.Context, addr string) (agent.Snapshot, []byte, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	url := "http://" + addr + "/state"
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		client.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}
		url = "http://agent/state"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return agent.Snapshot{}, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return agent.Snapshot{}, nil, fmt.Errorf("reach agent at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return agent.Snapshot{}, nil, fmt.Errorf("read agent state: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return agent.Snapshot{}, nil, fmt.Errorf("agent at %s answered %s", addr, resp.Status)
	}
	var snap agent.Snapshot
	if err := json.Unmarshal(raw, &snap); err != nil {
		return agent.Snapshot{}, nil, fmt.Errorf("decode agent state: %w", err)
	}
	return snap, raw, nil
}

func cores(milli int64) string { return fmt.Sprintf("%.2f", float64(milli)/1000) }

func bytesIEC(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}

func printStatus(w io.Writer, s agent.Snapshot) {
	mode := "enforcing"
	if s.Policy.DryRun {
		mode = "dry-run"
	}
	fmt.Fprintf(w, "host at %s  (%s, policy %s)\n", s.Time.Format(time.RFC3339), mode, s.Policy.Source)
	if s.Policy.LastError != "" {
		fmt.Fprintf(w, "last policy reload REJECTED at %s (previous policy still in force):\n  %s\n",
			s.Policy.LastErrorAt.Format(time.RFC3339), strings.ReplaceAll(s.Policy.LastError, "\n", "\n  "))
	}
	if len(s.Policy.NotEnforced) > 0 {
		fmt.Fprintf(w, "policy sections not enforced yet: %s\n", strings.Join(s.Policy.NotEnforced, ", "))
	}
	if !s.Cache.Supported && s.Cache.Error != "" {
		fmt.Fprintf(w, "cache isolation off: %s\n", s.Cache.Error)
	}
	h := s.Host
	fmt.Fprintf(w, "cpu %s / %s cores   memory available %s of %s   psi cpu %.1f%% mem %.1f%% io %.1f%%\n\n",
		cores(h.CPUUsedMilli), cores(h.CPUCapacityMilli), bytesIEC(h.MemAvailableBytes), bytesIEC(h.MemTotalBytes),
		h.PSI.CPUSomeAvg10, h.PSI.MemorySomeAvg10, h.PSI.IOSomeAvg10)
	if s.Brain != nil {
		printBrain(w, *s.Brain)
	}

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLASS\tWORKLOADS\tCPU (cores)\tMEMORY\tRUNQ P99")
	for _, c := range qos.Classes {
		u := s.Classes[c]
		runq := "-"
		if u.RunqLatency != nil {
			runq = u.RunqLatency.P99.String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", c, u.Count, cores(u.CPUUsedMilli), bytesIEC(u.MemoryUsageBytes), runq)
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INTENT\tTARGET\tVALUE\tREASON")
	for _, in := range s.Intents {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", in.Kind, in.Target, in.Value, in.Reason)
	}
	if len(s.Intents) == 0 {
		fmt.Fprintln(tw, "(none)\t\t\t")
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLASS\tPRIO\tNAME\tCGROUP\tCPU (cores)\tMEMORY\tLIMIT")
	for _, c := range s.Workloads {
		limit := "-"
		if c.MemoryLimitBytes > 0 {
			limit = bytesIEC(c.MemoryLimitBytes)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", c.Class, c.Priority, c.Name, c.CgroupPath,
			cores(c.CPUUsedMilli), bytesIEC(c.MemoryUsageBytes), limit)
	}
	tw.Flush()

	var failed []qos.IntentResult
	for _, r := range s.Results {
		if r.Status == qos.ResultFailed {
			failed = append(failed, r)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintln(w, "\nFAILED LAST ITERATION")
		for _, r := range failed {
			fmt.Fprintf(w, "  %s %s: %s\n", r.Intent, r.Target, r.Err)
		}
	}
}

// printBrain shows the brain connection, the target held and applied, the
// overrides in force and the targeted containers.
func printBrain(w io.Writer, b target.Status) {
	state := "connected"
	switch {
	case !b.Registered:
		state = "not registered"
	case b.Stale:
		state = "STALE (overrides fell back to local policy)"
	case b.LastError != "":
		state = "reconnecting"
	}
	contact := "never"
	if !b.LastContact.IsZero() {
		contact = b.LastContact.Format(time.RFC3339)
	}
	fmt.Fprintf(w, "brain: %s, node %s, last contact %s, target v%d held, v%d applied", state, b.NodeID, contact, b.TargetVersion, b.AppliedVersion)
	switch {
	case b.KubeletManaged:
		fmt.Fprint(w, " (kubelet manages containers here: none launched)")
	case b.DryRun:
		fmt.Fprint(w, " (dry-run: containers not launched or stopped)")
	}
	fmt.Fprintln(w)
	if b.LastError != "" {
		fmt.Fprintf(w, "  last error: %s\n", b.LastError)
	}
	if !b.Overrides.IsZero() {
		raw, _ := json.Marshal(b.Overrides)
		fmt.Fprintf(w, "  overrides in force: %s\n", raw)
	}
	if len(b.Containers) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  CONTAINER\tJOB\tCLASS\tPHASE\tRESTARTS\tERROR")
		for _, c := range b.Containers {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%s\n", c.ID, c.Job, c.Class, c.Phase, c.Restarts, c.LastError)
		}
		tw.Flush()
	}
	for _, r := range b.Results {
		if r.Status == qos.ResultFailed {
			fmt.Fprintf(w, "  %s %s FAILED: %s\n", r.Intent, r.Target, r.Err)
		}
	}
	fmt.Fprintln(w)
}
