package main

import (
	"fmt"
	"io"

	"github.com/connectorhq/connector/loadgen"
)

// benchWorkloadMain runs `connector bench workload [NAME]`: with no name
// it lists the built-in scenarios; with one it prints that scenario's
// workload file, an example of the format to start one's own from.
func benchWorkloadMain(args []string, stdout, stderr io.Writer) int {
	switch len(args) {
	case 0:
		fmt.Fprintln(stdout, "The built-in scenarios are workload files; print one with: connector bench workload NAME")
		for _, s := range loadgen.Scenarios {
			w, err := loadgen.BuiltinWorkload(s)
			if err != nil {
				fmt.Fprintf(stderr, "connector bench workload: %v\n", err)
				return 1
			}
			fmt.Fprintf(stdout, "  %-12s %s\n", s, w.Description)
		}
		return 0
	case 1:
		if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
			fmt.Fprintln(stderr, "usage: connector bench workload [NAME]: list the built-in workloads, or print one")
			return 0
		}
		b, err := loadgen.BuiltinWorkloadSource(loadgen.Scenario(args[0]))
		if err != nil {
			fmt.Fprintf(stderr, "connector bench workload: %q is not a built-in scenario (connector bench workload lists them)\n", args[0])
			return 2
		}
		_, _ = stdout.Write(b)
		return 0
	}
	fmt.Fprintln(stderr, "usage: connector bench workload [NAME]")
	return 2
}
