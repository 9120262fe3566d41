package main

import (
	"fmt"
	"io"
	"os"

	"github.com/sluicehq/sluice/qos"
)

// runPolicy validates policy files with the same loader the agent uses, so
// an SRE sees exactly the errors the agent would log before rejecting them.
func runPolicy(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "usage: sluicectl policy check FILE... | sluicectl policy default\n")
		return 2
	}
	switch args[0] {
	case "default":
		_, _ = stdout.Write(qos.DefaultPolicyYAML)
		return 0
	case "check":
		if len(args) < 2 {
			fmt.Fprint(stderr, "usage: sluicectl policy check FILE...\n")
			return 2
		}
		code := 0
		for _, name := range args[1:] {
			data, err := os.ReadFile(name)
			if err != nil {
				fmt.Fprintf(stderr, "%s: %v\n", name, err)
				code = 1
				continue
			}
			if _, err := qos.ParsePolicy(name, data); err != nil {
				fmt.Fprintln(stderr, err)
				code = 1
				continue
			}
			fmt.Fprintf(stdout, "%s: ok\n", name)
		}
		return code
	}
	fmt.Fprintf(stderr, "sluicectl policy: unknown subcommand %q\n", args[0])
	return 2
}
