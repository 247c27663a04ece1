package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyward/keyward/httpapi/client"
)

// envPrefix starts the environment variable of every flag: --token-file is
// also read from KEYWARD_TOKEN_FILE.
const envPrefix = "KEYWARD_"

// Output formats of --output.
const (
	outputText = "text"
	outputJSON = "json"
)

// globalOptions are the flags that every command inherits.
type globalOptions struct {
	addr      string
	token     string
	tokenFile string
	caFile    string
	// clientCertFile and clientKeyFile are the TLS client certificate for
	// a server that requires one on the admin plane.
	clientCertFile string
	clientKeyFile  string
	output         string
	timeout        time.Duration
	// idempotencyKey prefixes the Idempotency-Key of every admin write of
	// this invocation; a random one is chosen when the flag is not set.
	idempotencyKey string
}

func defaultAddr() string {
	return "http://127.0.0.1:" + strconv.Itoa(defaultHTTPPort)
}

// newRootCmd builds the command tree. Environment variables are bound to
// flags in the root's PersistentPreRunE, which cobra runs for every
// subcommand, the server's included. A subcommand must not define its own
// PersistentPreRunE, because cobra would then skip the root's.
func newRootCmd() (*cobra.Command, *globalOptions) {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "keyward",
		Short: "Keyward: secrets for machine identities, with temporary machines and guardrails",
		Long: "Keyward serves secrets to machines that sign every request with an Ed25519 key.\n\n" +
			"Operator commands call the admin API at --addr with the token from --token,\n" +
			"--token-file or KEYWARD_TOKEN. Machine commands (register, get, secrets) use\n" +
			"the identity in ${KEYWARD_HOME:-~/.keyward}/vaults/{vaultId}/.\n\n" +
			"Every flag can also be set through an environment variable named\n" +
			"KEYWARD_ and the flag name in upper case with '-' as '_', for example\n" +
			"KEYWARD_ADDR or KEYWARD_TOKEN_FILE; a flag on the command line wins.",
		SilenceErrors:     true,
		SilenceUsage:      true,
		Args:              cobra.ArbitraryArgs,
		RunE:              runGroup,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return g.prepare(cmd) },
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	f := root.PersistentFlags()
	f.StringVar(&g.addr, "addr", defaultAddr(), "URL of the Keyward API; port 8200 is where keyward server listens by default.")
	f.StringVar(&g.token, "token", "", "Admin token (kwt_…) sent as a Bearer token; prefer --token-file or KEYWARD_TOKEN over the command line.")
	f.StringVar(&g.tokenFile, "token-file", "", "File that holds the admin token, such as <data-dir>/root-token of a --dev node.")
	f.StringVar(&g.caFile, "ca-file", "", "PEM file of the CA certificates that sign the server's TLS certificate.")
	f.StringVar(&g.clientCertFile, "client-cert-file", "", "PEM client certificate for a server started with --tls-client-ca-file.")
	f.StringVar(&g.clientKeyFile, "client-key-file", "", "PEM private key of --client-cert-file.")
	f.StringVarP(&g.output, "output", "o", outputText, "Output format: text (tables) or json.")
	f.DurationVar(&g.timeout, "timeout", client.DefaultTimeout, "Time limit of each API call, as a Go duration such as 10s.")
	f.StringVar(&g.idempotencyKey, "idempotency-key", "", "Key that makes this command's writes apply at most once when it is repeated with the same key (default: a new random key per run).")

	root.AddCommand(
		newServerCmd(),
		newRootKeyCmd(),
		newInitCmd(g),
		newHealthCmd(g),
		newVaultCmd(g),
		newProjectCmd(g),
		newSecretCmd(g),
		newBootstrapTokenCmd(g),
		newMachineCmd(g),
		newTempCmd(g),
		newEnrollmentCmd(g),
		newAdminTokenCmd(g),
		newRegisterCmd(g),
		newGetCmd(g),
		newSecretsCmd(g),
		newAuditCmd(g),
		newWebhookCmd(g),
		newAlertsCmd(g),
		newClusterCmd(g),
		newSnapshotCmd(g),
		newBenchCmd(g),
	)
	return root, g
}

// prepare binds environment variables to the flags that the command line
// left unset and checks the global flags.
func (g *globalOptions) prepare(cmd *cobra.Command) error {
	if err := bindEnv(cmd.Flags(), os.LookupEnv); err != nil {
		return err
	}
	if n := len(g.idempotencyKey); n > 100 || strings.IndexFunc(g.idempotencyKey, func(r rune) bool { return r < '!' || r > '~' }) >= 0 {
		return usageErrorf("--idempotency-key must be at most 100 printable ASCII characters without spaces; got %d bytes", n)
	}
	if g.output != outputText && g.output != outputJSON {
		return usageErrorf("--output %q is not a format; use text or json", g.output)
	}
	if g.timeout <= 0 {
		return usageErrorf("--timeout %s must be positive", g.timeout)
	}
	if (g.clientCertFile == "") != (g.clientKeyFile == "") {
		return usageErrorf("--client-cert-file and --client-key-file go together; set both or neither")
	}
	return nil
}

// envName returns the environment variable of a flag: KEYWARD_ and the
// name in upper snake case.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// bindEnv sets every flag that was not given on the command line from its
// environment variable, when that variable is set and not empty. A list
// flag takes a comma-separated value.
func bindEnv(flags *pflag.FlagSet, lookup func(string) (string, bool)) error {
	var firstErr error
	flags.VisitAll(func(f *pflag.Flag) {
		if firstErr != nil || f.Changed || f.Name == "help" {
			return
		}
		value, ok := lookup(envName(f.Name))
		if !ok || value == "" {
			return
		}
		if err := flags.Set(f.Name, value); err != nil {
			firstErr = usageErrorf("invalid value %q in %s for --%s: %v", value, envName(f.Name), f.Name, err)
		}
	})
	return firstErr
}

// runGroup is the RunE of commands that only group subcommands: cobra
// would otherwise print help and exit 0 for a mistyped subcommand.
func runGroup(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return usageErrorf("%s needs a subcommand", cmd.CommandPath())
	}
	msg := fmt.Sprintf("unknown command %q for %s", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if suggestions := cmd.SuggestionsFor(args[0]); len(suggestions) > 0 {
		msg += fmt.Sprintf("; did you mean %s?", strings.Join(suggestions, " or "))
	}
	return usageError{fmt.Errorf("%s", msg)}
}

// newGroupCmd returns a command that only holds subcommands.
func newGroupCmd(use, short string, subcommands ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs, RunE: runGroup}
	cmd.AddCommand(subcommands...)
	return cmd
}

// adminClient returns an operator client for --addr. needToken is false
// for the routes that work without a token (init, health).
func (g *globalOptions) adminClient(needToken bool) (*client.Client, error) {
	token, err := g.readToken()
	if err != nil {
		return nil, err
	}
	if needToken && token == "" {
		return nil, withHints(fmt.Errorf("this command needs an admin token"),
			"pass --token-file FILE, or set KEYWARD_TOKEN; `keyward init` prints the first owner token, and a --dev node writes it to <data-dir>/root-token")
	}
	if g.idempotencyKey == "" {
		g.idempotencyKey = uuid.NewString()
	}
	return client.New(g.addr, g.clientOptions(client.WithToken(token), client.WithIdempotencyPrefix(g.idempotencyKey))...)
}

// vaultAdminClient requires --vault on cmd and returns the admin client,
// the first steps of every vault-scoped subcommand.
func (g *globalOptions) vaultAdminClient(cmd *cobra.Command) (*client.Client, error) {
	if err := requireFlags(cmd, "vault"); err != nil {
		return nil, err
	}
	return g.adminClient(true)
}

// clientOptions returns the HTTP options shared by operator and machine
// clients, followed by extra.
func (g *globalOptions) clientOptions(extra ...client.Option) []client.Option {
	opts := []client.Option{
		client.WithTimeout(g.timeout),
		client.WithUserAgent("keyward-cli"),
	}
	if g.caFile != "" {
		opts = append(opts, client.WithCAFile(g.caFile))
	}
	if g.clientCertFile != "" {
		opts = append(opts, client.WithTLSConfig(clientCertTLS(g.clientCertFile, g.clientKeyFile)))
	}
	return append(opts, extra...)
}

// readToken returns the admin token from --token or --token-file.
func (g *globalOptions) readToken() (string, error) {
	if g.token != "" && g.tokenFile != "" {
		return "", usageErrorf("--token and --token-file are both set (on the command line or as KEYWARD_TOKEN and KEYWARD_TOKEN_FILE); keep one")
	}
	if g.tokenFile == "" {
		return g.token, nil
	}
	data, err := os.ReadFile(g.tokenFile)
	if err != nil {
		return "", fmt.Errorf("read --token-file: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("--token-file %s is empty", g.tokenFile)
	}
	return token, nil
}
