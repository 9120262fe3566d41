package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	brainv1 "github.com/sluicehq/sluice/brain/api/gen/v1"
	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
	"github.com/sluicehq/sluice/brain/trace"
)

// defaultBrainURL matches sluice-brain's default --listen.
const defaultBrainURL = "http://127.0.0.1:9480"

// runBrain runs one brain command: hosts, jobs or explain. url may list
// several brains, comma-separated.
func runBrain(ctx context.Context, url string, args []string, stdout, stderr io.Writer) int {
	cmd := args[0]
	sub := ""
	rest := args[1:]
	if cmd != "explain" && cmd != "logs" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		sub, rest = rest[0], rest[1:]
	}
	name := strings.TrimSpace(cmd + " " + sub)
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "table", "output: table or json")
	maxBytes := fs.Int64("max-bytes", 0, "logs: at most this much of each replica's output (0: the brain's default, 64 KiB)")
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	if *out != "table" && *out != "json" {
		fmt.Fprintf(stderr, "sluicectl %s: -o %q: want table or json\n", name, *out)
		return 2
	}
	hc, urls, err := brainHTTPClient(url, os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "sluicectl %s: %v\n", name, err)
		return 2
	}
	err = eachBrain(urls, func(u string) error {
		c := brainClient{op: brainv1connect.NewOperatorServiceClient(hc, u), json: *out == "json", stdout: stdout, maxBytes: *maxBytes}
		return c.do(ctx, cmd, sub, fs.Args())
	})
	var usageErr usageError
	switch {
	case errors.As(err, &usageErr):
		fmt.Fprintf(stderr, "sluicectl %s: %v\n", name, err)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "sluicectl %s: %v\n", name, err)
		return 1
	}
	return 0
}

type brainClient struct {
	op       brainv1connect.OperatorServiceClient
	json     bool
	stdout   io.Writer
	maxBytes int64
}

func oneArg(args []string, what string) (string, error) {
	if len(args) != 1 {
		return "", usagef("want one %s, got %d arguments", what, len(args))
	}
	return args[0], nil
}

func (c brainClient) do(ctx context.Context, cmd, sub string, args []string) error {
	switch cmd + " " + sub {
	case "hosts ":
		r, err := c.op.ListHosts(ctx, connect.NewRequest(&brainv1.ListHostsRequest{}))
		if err != nil {
			return err
		}
		return c.print(r.Msg, func(w io.Writer) { printHosts(w, r.Msg.GetHosts()) })
	case "hosts drain", "hosts uncordon":
		host, err := oneArg(args, "HOST")
		if err != nil {
			return err
		}
		var h *brainv1.Host
		var msg proto.Message
		if sub == "drain" {
			r, err := c.op.DrainHost(ctx, connect.NewRequest(&brainv1.DrainHostRequest{Name: host}))
			if err != nil {
				return err
			}
			h, msg = r.Msg.GetHost(), r.Msg
		} else {
			r, err := c.op.UncordonHost(ctx, connect.NewRequest(&brainv1.UncordonHostRequest{Name: host}))
			if err != nil {
				return err
			}
			h, msg = r.Msg.GetHost(), r.Msg
		}
		return c.print(msg, func(w io.Writer) { printHosts(w, []*brainv1.Host{h}) })
	case "hosts override":
		if len(args) < 1 {
			return usagef("want HOST [cpu-water-level=F] [memory-water-level=F] [offline-cpu-cap=MILLI] [offline-memory-cap=BYTES]")
		}
		o, err := parseOverrides(args[1:])
		if err != nil {
			return err
		}
		r, err := c.op.SetHostOverrides(ctx, connect.NewRequest(&brainv1.SetHostOverridesRequest{Name: args[0], Overrides: o}))
		if err != nil {
			return err
		}
		return c.print(r.Msg, func(w io.Writer) { printHosts(w, []*brainv1.Host{r.Msg.GetHost()}) })
	case "jobs submit":
		file, err := oneArg(args, "FILE")
		if err != nil {
			return err
		}
		data, err := readBounded(file, trace.MaxJobFileBytes)
		if err != nil {
			return err
		}
		r, err := c.op.SubmitJobs(ctx, connect.NewRequest(&brainv1.SubmitJobsRequest{File: data, FileName: filepath.Base(file)}))
		if err != nil {
			return err
		}
		return c.print(r.Msg, func(w io.Writer) { printJobs(w, r.Msg.GetJobs()) })
	case "jobs list", "jobs ":
		r, err := c.op.ListJobs(ctx, connect.NewRequest(&brainv1.ListJobsRequest{}))
		if err != nil {
			return err
		}
		return c.print(r.Msg, func(w io.Writer) { printJobs(w, r.Msg.GetJobs()) })
	case "jobs get":
		job, err := oneArg(args, "NAME")
		if err != nil {
			return err
		}
		r, err := c.op.GetJob(ctx, connect.NewRequest(&brainv1.GetJobRequest{Name: job}))
		if err != nil {
			return err
		}
		return c.print(r.Msg, func(w io.Writer) { printJob(w, r.Msg.GetJob()) })
	case "jobs delete":
		job, err := oneArg(args, "NAME")
		if err != nil {
			return err
		}
		r, err := c.op.DeleteJob(ctx, connect.NewRequest(&brainv1.DeleteJobRequest{Name: job}))
		if err != nil {
			return err
		}
		return c.print(r.Msg, func(w io.Writer) { fmt.Fprintf(w, "deleted %s\n", job) })
	case "explain ":
		job, err := oneArg(args, "NAME")
		if err != nil {
			return err
		}
		r, err := c.op.Explain(ctx, connect.NewRequest(&brainv1.ExplainRequest{Name: job}))
		if err != nil {
			return err
		}
		return c.print(r.Msg, func(w io.Writer) { printExplain(w, r.Msg) })
	}
	if cmd == "logs" {
		return c.logs(ctx, args)
	}
	return usagef("unknown command %q (sluicectl help)", strings.TrimSpace(cmd+" "+sub))
}

// logs prints the tail of a job's replicas' output: one replica's as it
// is, several each under a header naming replica and host.
func (c brainClient) logs(ctx context.Context, args []string) error {
	if len(args) < 1 || len(args) > 2 {
		return usagef("want NAME [REPLICA], got %d arguments", len(args))
	}
	req := &brainv1.LogsRequest{Job: args[0], MaxBytes: c.maxBytes}
	if len(args) == 2 {
		req.Replica = args[1]
		if _, err := strconv.Atoi(args[1]); err == nil {
			req.Replica = args[0] + "-" + args[1]
		}
	}
	r, err := c.op.Logs(ctx, connect.NewRequest(req))
	if err != nil {
		return err
	}
	if c.json {
		return c.print(r.Msg, nil)
	}
	// As it is: a tab table would realign the output's own tabs.
	w, logs, failed := c.stdout, r.Msg.GetLogs(), 0
	for _, l := range logs {
		if l.GetError() != "" {
			failed++
			fmt.Fprintf(w, "==> %s on %s: %s <==\n", l.GetReplica(), l.GetHost(), l.GetError())
			continue
		}
		if len(logs) > 1 {
			fmt.Fprintf(w, "==> %s on %s <==\n", l.GetReplica(), l.GetHost())
		}
		if l.GetTruncated() {
			fmt.Fprintf(w, "(older output left out)\n")
		}
		if _, err := w.Write(l.GetData()); err != nil {
			return err
		}
	}
	if failed == len(logs) {
		return errors.New("no replica's output could be read")
	}
	return nil
}

// parseOverrides reads key=value overrides; none clears them.
func parseOverrides(args []string) (*brainv1.QoSOverrides, error) {
	o := &brainv1.QoSOverrides{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, usagef("override %q: want key=value", a)
		}
		var err error
		switch k {
		case "cpu-water-level", "memory-water-level":
			var f float64
			if f, err = strconv.ParseFloat(v, 64); err == nil {
				if k == "cpu-water-level" {
					o.CpuWaterLevel = &f
				} else {
					o.MemoryWaterLevel = &f
				}
			}
		case "offline-cpu-cap", "offline-memory-cap":
			var n int64
			if n, err = strconv.ParseInt(v, 10, 64); err == nil {
				if k == "offline-cpu-cap" {
					o.OfflineCpuCapMilli = &n
				} else {
					o.OfflineMemoryCapBytes = &n
				}
			}
		default:
			return nil, usagef("override %q: unknown key (cpu-water-level, memory-water-level, offline-cpu-cap, offline-memory-cap)", k)
		}
		if err != nil {
			return nil, usagef("override %s: %v", k, err)
		}
	}
	return o, nil
}

// readBounded reads at most limit bytes of path; a larger file is an error
// wrapping trace.ErrLimit that names the limit.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := trace.ReadAll(f, limit)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

func (c brainClient) print(msg proto.Message, table func(io.Writer)) error {
	if c.json {
		data, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true}.Marshal(msg)
		if err != nil {
			return fmt.Errorf("encode json: %w", err)
		}
		_, err = fmt.Fprintf(c.stdout, "%s\n", data)
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

func cpuMem(r *brainv1.Resources) string {
	if r == nil {
		return "-"
	}
	a := r.GetAmounts()
	return fmt.Sprintf("%.1f/%s", float64(a["cpu"])/1000, humanBytes(a["memory"]))
}

func humanBytes(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%dB", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit && exp < 4; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(b)/float64(div), "KMGTP"[exp])
}

func printHosts(w io.Writer, hosts []*brainv1.Host) {
	fmt.Fprintln(w, "HOST\tSTATE\tCAPACITY cpu/mem\tUSED\tLENT\tCONTAINERS\tLAST HEARTBEAT\tTARGET sent/applied\tOVERRIDES")
	for _, h := range hosts {
		last := "-"
		if ms := h.GetLastHeartbeatUnixMs(); ms > 0 {
			last = time.UnixMilli(ms).UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d/%d\t%s\n", h.GetName(), h.GetState(), cpuMem(h.GetCapacity()),
			cpuMem(h.GetUsed()), cpuMem(h.GetLent()), h.GetContainers(), last, h.GetTargetVersion(), h.GetAppliedVersion(), overridesText(h.GetOverrides()))
	}
}

func overridesText(o *brainv1.QoSOverrides) string {
	if o == nil {
		return "-"
	}
	var parts []string
	if o.CpuWaterLevel != nil {
		parts = append(parts, fmt.Sprintf("cpu-water-level=%g", o.GetCpuWaterLevel()))
	}
	if o.MemoryWaterLevel != nil {
		parts = append(parts, fmt.Sprintf("memory-water-level=%g", o.GetMemoryWaterLevel()))
	}
	if o.OfflineCpuCapMilli != nil {
		parts = append(parts, fmt.Sprintf("offline-cpu-cap=%d", o.GetOfflineCpuCapMilli()))
	}
	if o.OfflineMemoryCapBytes != nil {
		parts = append(parts, fmt.Sprintf("offline-memory-cap=%d", o.GetOfflineMemoryCapBytes()))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

func placedCount(j *brainv1.Job) int {
	n := 0
	for _, r := range j.GetReplicas() {
		if r.GetHost() != "" {
			n++
		}
	}
	return n
}

func printJobs(w io.Writer, jobs []*brainv1.Job) {
	fmt.Fprintln(w, "JOB\tCLASS\tPRIORITY\tPLACED\tIMAGE\tPENDING")
	for _, j := range jobs {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d/%d\t%s\t%s\n", j.GetName(), j.GetClass(), j.GetPriority(), placedCount(j), j.GetCount(), j.GetImage(), j.GetPendingReason())
	}
}

func printJob(w io.Writer, j *brainv1.Job) {
	printJobs(w, []*brainv1.Job{j})
	if r := j.GetRollout(); r != nil {
		fmt.Fprintf(w, "\nROLLOUT\tRUNNING\tOUTDATED\tMAX UNAVAILABLE\tREASON\n%s\t%d/%d\t%d\t%d\t%s\n",
			r.GetState(), r.GetRunning(), j.GetCount(), r.GetOutdated(), r.GetMaxUnavailable(), r.GetReason())
	}
	fmt.Fprintln(w, "\nREPLICA\tHOST")
	for _, r := range j.GetReplicas() {
		host := r.GetHost()
		if host == "" {
			host = "(pending)"
		}
		fmt.Fprintf(w, "%s\t%s\n", r.GetId(), host)
	}
}

func printExplain(w io.Writer, e *brainv1.ExplainResponse) {
	verdict := "no host fits"
	if e.GetPlaceable() {
		verdict = "would go to " + e.GetChosenHost()
	}
	fmt.Fprintf(w, "%s (replica %s): %s\n\nHOST\tFEASIBLE\tSCORE\tREASON\tDETAIL\n", e.GetJob(), e.GetReplica(), verdict)
	for _, h := range e.GetHosts() {
		score := "-"
		if h.GetFeasible() {
			score = fmt.Sprintf("%.3f", h.GetScore())
		}
		fmt.Fprintf(w, "%s\t%v\t%s\t%s\t%s\n", h.GetHost(), h.GetFeasible(), score, h.GetReason(), h.GetDetail())
	}
}
