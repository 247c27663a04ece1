package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// exactArgs accepts exactly the named positional arguments and reports a
// usage error naming them otherwise.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == len(names) {
			return nil
		}
		return usageErrorf("%s takes %s; got %d arguments", cmd.CommandPath(), describeArgs(names), len(args))
	}
}

// minArgs accepts the named arguments followed by any number of more.
func minArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= len(names) {
			return nil
		}
		return usageErrorf("%s takes %s; got %d arguments", cmd.CommandPath(), describeArgs(names), len(args))
	}
}

func describeArgs(names []string) string {
	if len(names) == 0 {
		return "no arguments"
	}
	return strings.Join(names, " ")
}

// requireFlags reports a usage error for the first named flag that has no
// value from the command line or the environment.
func requireFlags(cmd *cobra.Command, names ...string) error {
	for _, name := range names {
		f := cmd.Flags().Lookup(name)
		if f == nil {
			continue
		}
		if v := f.Value.String(); v != "" && v != "[]" {
			continue
		}
		return usageErrorf("%s needs --%s (or %s)", cmd.CommandPath(), name, envName(name))
	}
	return nil
}
