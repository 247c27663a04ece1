package main

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/httpapi/client"
)

func newTempCmd(g *globalOptions) *cobra.Command {
	var vaultID string
	cmd := newGroupCmd("temp", "Issue, list and revoke temporary-machine tokens",
		newTempIssueCmd(g, &vaultID),
		newVaultTokenListCmd(g, &vaultID, "List the temporary-machine tokens of a vault (never the tokens themselves)",
			(*client.Client).ListTempTokens, printTempTokens),
		newVaultTokenRevokeCmd(g, &vaultID, "Revoke an unused temporary-machine token by its id", "temporary token",
			(*client.Client).RevokeTempToken),
	)
	cmd.PersistentFlags().StringVar(&vaultID, "vault", "", "Id of the vault (vault_…).")
	return cmd
}

func newTempIssueCmd(g *globalOptions, vaultID *string) *cobra.Command {
	var name, purpose, lifetime string
	var tokenTTL time.Duration
	var gf guardrailFlags
	var req client.TempTokenRequest

	cmd := &cobra.Command{
		Use:   "issue --name NAME --lifetime LIFETIME [--purpose TEXT] [--token-ttl 1h] [guardrail flags]",
		Short: "Issue a single-use token that registers one temporary machine",
		Long: "Issue a single-use token that registers one temporary machine, and print it\n" +
			"with the registration commands; the token is shown only once. The machine\n" +
			"registers as pending under --name, expires --lifetime after registration\n" +
			"(1 hour to 12 calendar months), and carries the guardrails given here.",
		Args: exactArgs(),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "vault", "name", "lifetime"); err != nil {
				return err
			}
			l, err := client.ParseLifetime(lifetime)
			if err != nil {
				return usageError{err}
			}
			if tokenTTL <= 0 {
				return usageErrorf("--token-ttl %s must be positive", tokenTTL)
			}
			rails, err := gf.build()
			if err != nil {
				return err
			}
			req = client.TempTokenRequest{
				Name: name, Purpose: purpose, Lifetime: l, TokenTTL: tokenTTL, Guardrails: rails,
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.adminClient(true)
			if err != nil {
				return err
			}
			tok, err := c.IssueTempToken(cmd.Context(), *vaultID, req)
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(tok, func(w io.Writer) error {
				fmt.Fprintf(w, "Temporary machine %q, lifetime %s after registration.\n", req.Name, req.Lifetime)
				return printRegistrationToken(w, tok.Token, tok.ExpiresAt, tok.Commands)
			})
		},
	}

	f := cmd.Flags()
	f.StringVar(&name, "name", "", "Name the machine gets when it registers.")
	f.StringVar(&purpose, "purpose", "", "Why the machine exists, such as a ticket reference.")
	f.StringVar(&lifetime, "lifetime", "", "Machine lifetime after registration in calendar units: 12h, 30d, 2mo or 1mo2d3h.")
	f.DurationVar(&tokenTTL, "token-ttl", time.Hour, "How long the token can be used to register, as a Go duration (at most 168h).")
	gf.register(cmd)
	return cmd
}

func printTempTokens(w io.Writer, tokens []client.TempTokenInfo) error {
	rows := make([][]string, 0, len(tokens))
	for _, t := range tokens {
		lifetime := "-"
		if t.Lifetime != nil {
			lifetime = t.Lifetime.String()
		}
		rows = append(rows, []string{
			t.ID, orDash(t.MachineName), orDash(t.Purpose), lifetime, orDash(t.Status),
			formatMillis(t.ExpiresAt), strconv.Itoa(t.Uses) + "/" + strconv.Itoa(t.MaxUses),
			describeGuardrails(t.Guardrails),
		})
	}
	return table(w, []string{"ID", "NAME", "PURPOSE", "LIFETIME", "STATUS", "TOKEN EXPIRES", "USES", "GUARDRAILS"}, rows)
}
