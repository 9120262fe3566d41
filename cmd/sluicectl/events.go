package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/brain/server"
)

// runEvents follows the brain's event stream (GET /v1/events) and prints
// each event as it happens, until interrupted: a table line, or one JSON
// object per line with -o json. When the brain drops the stream because
// this reader fell behind, it says so on stderr and resumes from the last
// event it printed; when the brain goes away, it exits 1.
func runEvents(ctx context.Context, brainURL string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "table", "output: table or json (one event per line)")
	topics := fs.String("topic", "", "comma-separated topics: host, kill, eviction, placement (default all)")
	host := fs.String("host", "", "only events of this host")
	job := fs.String("job", "", "only events of this job")
	index := fs.String("index", "", "first replay the events the brain keeps after this index")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out != "table" && *out != "json" {
		fmt.Fprintf(stderr, "sluicectl events: -o %q: want table or json\n", *out)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sluicectl events: unexpected arguments %q\n", fs.Args())
		return 2
	}
	hc, urls, err := brainHTTPClient(brainURL, os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "sluicectl events: %v\n", err)
		return 2
	}
	// A stream has no deadline. The first brain serves it (a follower
	// forwards it from the leader); event indexes are the leader's, so a
	// new leader's stream is not resumed: the command ends and says so.
	hc.Timeout = 0
	q := url.Values{}
	for k, v := range map[string]string{"topic": *topics, "host": *host, "job": *job, "index": *index} {
		if v != "" {
			q.Set(k, v)
		}
	}
	// Check the filter here too, for a usage error rather than the brain's 400.
	if _, err := server.ParseEventFilter(q); err != nil {
		fmt.Fprintf(stderr, "sluicectl events: %v\n", err)
		return 2
	}
	if *index != "" {
		if _, err := strconv.ParseUint(*index, 10, 64); err != nil {
			fmt.Fprintf(stderr, "sluicectl events: -index %q: not a non-negative integer\n", *index)
			return 2
		}
	}
	print := func(e server.Event) error {
		if *out == "json" {
			return json.NewEncoder(stdout).Encode(e)
		}
		who := e.Host
		if who == "" {
			who = "-"
		}
		j := e.Job
		if j == "" {
			j = "-"
		}
		_, err := fmt.Fprintf(stdout, "%-8s %-6d %-9s %-10s %-20s %-20s %s\n", e.Time.Local().Format(time.TimeOnly), e.Index, e.Topic, e.Type, who, j, e.Reason)
		return err
	}
	if *out == "table" {
		fmt.Fprintf(stdout, "%-8s %-6s %-9s %-10s %-20s %-20s %s\n", "TIME", "INDEX", "TOPIC", "TYPE", "HOST", "JOB", "REASON")
	}
	for {
		last, err := followEvents(ctx, hc, urls[0], q, print)
		switch {
		case ctx.Err() != nil:
			return 0
		case errors.Is(err, server.ErrDropped):
			fmt.Fprintf(stderr, "sluicectl events: %v; resuming after index %d\n", err, last)
			q.Set("index", strconv.FormatUint(last, 10))
			continue
		case err == nil:
			err = errors.New("the brain ended the stream (stopping)")
		}
		fmt.Fprintf(stderr, "sluicectl events: %v\n", err)
		return 1
	}
}

// followEvents reads one connection's events; it returns the index of
// the last event printed.
func followEvents(ctx context.Context, hc *http.Client, brainURL string, q url.Values, print func(server.Event) error) (uint64, error) {
	last, _ := strconv.ParseUint(q.Get("index"), 10, 64)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, brainURL+"/v1/events?"+q.Encode(), nil)
	if err != nil {
		return last, fmt.Errorf("events: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return last, fmt.Errorf("events: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return last, fmt.Errorf("events: %s: %s", resp.Status, msg)
	}
	err = server.ReadEvents(resp.Body, func(e server.Event) error {
		last = e.Index
		return print(e)
	})
	return last, err
}
