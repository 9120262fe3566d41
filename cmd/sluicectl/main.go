// Command sluicectl is Sluice's command-line tool for SREs and operators:
//
//	sluicectl policy check FILE...   validate policy files (exit 1 on any error)
//	sluicectl status [-addr ADDR]    a host's classes, usage, budgets and pending actions
//	sluicectl simulate MODE ...      replay cluster data against placement strategies
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
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
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "policy":
		return runPolicy(args[1:], stdout, stderr)
	case "status":
		return runStatus(ctx, args[1:], stdout, stderr)
	case "simulate":
		return runSimulate(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "sluicectl: unknown command %q\n%s", args[0], usage)
	return 2
}
