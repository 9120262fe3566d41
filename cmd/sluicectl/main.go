// Command sluicectl is Sluice's command-line tool for SREs and operators:
//
//	sluicectl policy check FILE...   validate policy files (exit 1 on any error)
//	sluicectl status [-addr ADDR]    a host's classes, usage, budgets and pending actions
//	sluicectl simulate MODE ...      replay cluster data against placement strategies
//	sluicectl [--brain URL[,URL...]] hosts|jobs|explain|logs ...   a brain's hosts and jobs
//	sluicectl [--brain URL[,URL...]] brain status|snapshot FILE   the brains' leader and store
//	sluicectl certs init|issue|revoke ...             certificates and revocations
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: sluicectl COMMAND [ARGS]

commands:
  policy check FILE...   validate policy files; prints every problem with its line
  policy default         print the embedded default policy
  status [-addr ADDR]    show a host agent's classes, usage, budgets and pending actions
  simulate MODE [ARGS]   replay cluster data against placement strategies (sluicectl simulate -h)

brain commands (sluicectl [--brain URL[,URL...]] COMMAND [-o table|json] ...; default URL ` + defaultBrainURL + `;
with several brains, any of them answers: followers forward to the leader):
  hosts                  hosts with capacity, used, lent, state, last heartbeat, target version sent/applied
  hosts drain HOST       move a host's replicas elsewhere and place nothing new there
  hosts uncordon HOST    let placements land on a drained host again
  hosts override HOST [cpu-water-level=F memory-water-level=F offline-cpu-cap=MILLI offline-memory-cap=BYTES]
                         set (or, with none, clear) a host's QoS overrides; its agent bounds them by local policy
  jobs submit FILE       submit a job file (brain/examples/jobs.yaml)
  jobs list              jobs with replicas placed / asked
  jobs get NAME          one job, its replicas and hosts
  jobs delete NAME       delete a job; its containers leave their hosts
  events [-topic T,...] [-host H] [-job J] [-index N]
                         follow the fleet's events (host up/down/draining, kills, evictions,
                         placement failures) as they happen; -o json prints one object per line
  explain NAME           per host, why the job's next replica is rejected or how it scores
  logs NAME [REPLICA]    the tail of a job's containers' output (REPLICA: NAME-i or i), fetched from their agents
  brain status           the leading brain, its epoch, etcd's size, alarms and last compaction
  brain snapshot FILE    save a consistent etcd snapshot of the brain's store (restore: sluice-brain restore)
  certs init|issue|revoke|revoked|whoami   the cluster CA, host and operator certificates, revocations (sluicectl certs -h)

An https brain URL needs a credential: SLUICE_CERTS=DIR (ca.crt and $SLUICE_IDENTITY.crt, default
admin) or SLUICE_TLS_CERT, SLUICE_TLS_KEY and SLUICE_CA; plain http reaches a loopback brain only.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	brainURL := defaultBrainURL
	switch {
	case args[0] == "--brain" || args[0] == "-brain":
		if len(args) < 2 {
			fmt.Fprintf(stderr, "sluicectl: --brain needs a URL\n%s", usage)
			return 2
		}
		brainURL, args = args[1], args[2:]
	case strings.HasPrefix(args[0], "--brain="):
		brainURL, args = strings.TrimPrefix(args[0], "--brain="), args[1:]
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "hosts", "jobs", "explain", "logs":
		return runBrain(ctx, brainURL, args, stdout, stderr)
	case "brain":
		return runMaintenance(ctx, brainURL, args[1:], stdout, stderr)
	case "certs":
		return runCerts(ctx, brainURL, args[1:], os.Getenv, stdout, stderr)
	case "policy":
		return runPolicy(args[1:], stdout, stderr)
	case "status":
		return runStatus(ctx, args[1:], stdout, stderr)
	case "simulate":
		return runSimulate(ctx, args[1:], stdout, stderr)
	case "events":
		return runEvents(ctx, brainURL, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "sluicectl: unknown command %q\n%s", args[0], usage)
	return 2
}
