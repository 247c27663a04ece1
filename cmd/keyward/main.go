package main

import (
	"context"
	"io"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Exit codes of the binary.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
	// exitConfig (EX_CONFIG of sysexits.h) means a configuration error
	// that a restart with the same flags cannot fix.
	exitConfig = 78
)

// run executes one command line and returns the exit code. Errors are
// printed to stderr as "keyward: error: …" with "keyward: hint: …" lines.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root, g := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)

	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	printError(stderr, err, g, cmd)
	if isUsageError(err) {
		return exitUsage
	}
	if isConfigError(err) {
		return exitConfig
	}
	return exitError
}
