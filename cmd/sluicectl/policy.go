package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/sluicehq/sluice/agent"
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
			data, err := agent.ReadPolicyFile(name)
			if err != nil {
				fmt.Fprintf(stderr, "%s: %v\n", name, err)
				code = 1
				continue
			}
			pol, err := qos.ParsePolicy(name, data)
			if err != nil {
				fmt.Fprintln(stderr, err)
				code = 1
				continue
			}
			fmt.Fprintf(stdout, "%s: ok\n", name)
			// Valid but not in force: say so, or the SRE takes the
			// values for promises.
			if ne := pol.NotEnforced(); len(ne) > 0 {
				fmt.Fprintf(stdout, "%s: not enforced yet: %s (validated, but no enforcer applies these sections in this version)\n",
					name, strings.Join(ne, ", "))
			}
		}
		return code
	}
	fmt.Fprintf(stderr, "sluicectl policy: unknown subcommand %q\n", args[0])
	return 2
}
