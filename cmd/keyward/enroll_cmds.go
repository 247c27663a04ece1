package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/httpapi/client"
)

func newEnrollmentCmd(g *globalOptions) *cobra.Command {
	var vaultID string
	cmd := newGroupCmd("enrollment", "Issue, list and revoke enrollment tokens for ephemeral machines",
		newEnrollmentIssueCmd(g, &vaultID),
		newVaultTokenListCmd(g, &vaultID, "List the enrollment tokens of a vault (never the tokens themselves)",
			(*client.Client).ListEnrollmentTokens, printEnrollmentTokens),
		newVaultTokenRevokeCmd(g, &vaultID, "Revoke an enrollment token; machines it enrolled keep running", "enrollment token",
			(*client.Client).RevokeEnrollmentToken),
	)
	cmd.PersistentFlags().StringVar(&vaultID, "vault", "", "Id of the vault (vault_…).")
	return cmd
}

func newEnrollmentIssueCmd(g *globalOptions, vaultID *string) *cobra.Command {
	var lifetime, purpose, projects, secrets string
	var maxUses int
	var tokenTTL time.Duration
	var gf guardrailFlags
	var req client.EnrollmentTokenRequest

	cmd := &cobra.Command{
		Use:   "issue --max-uses N --lifetime LIFETIME [--projects IDS] [--secrets IDS] [--token-ttl 168h] [guardrail flags]",
		Short: "Issue a token that enrolls up to N ephemeral machines, active at once",
		Long: "Issue an enrollment token for hosts that start without an operator, such as\n" +
			"the instances of an autoscaling group. Each host runs\n" +
			"keyward register --enroll --vault VAULT_ID TOKEN, which registers an\n" +
			"ephemeral machine that is active at once, joins --projects, is granted\n" +
			"--secrets, expires --lifetime after it enrolls and carries the guardrails\n" +
			"given here. The token is shown only once.",
		Args: exactArgs(),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "vault", "max-uses", "lifetime"); err != nil {
				return err
			}
			l, err := client.ParseLifetime(lifetime)
			if err != nil {
				return usageError{err}
			}
			if cmd.Flags().Changed("token-ttl") && tokenTTL <= 0 {
				return usageErrorf("--token-ttl %s must be positive; leave the flag out for the default of 168h", tokenTTL)
			}
			rails, err := gf.build()
			if err != nil {
				return err
			}
			req = client.EnrollmentTokenRequest{
				MaxUses: maxUses, Lifetime: l, TokenTTL: tokenTTL, Purpose: purpose, Guardrails: rails,
				ProjectIDs: splitList(projects), SecretIDs: splitList(secrets),
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.adminClient(true)
			if err != nil {
				return err
			}
			tok, err := c.IssueEnrollmentToken(cmd.Context(), *vaultID, req)
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(tok, func(w io.Writer) error {
				fmt.Fprintf(w, "Enrollment token for up to %d machines, each living %s after it enrolls.\n", req.MaxUses, req.Lifetime)
				return printRegistrationToken(w, tok.Token, tok.ExpiresAt, tok.Commands)
			})
		},
	}

	f := cmd.Flags()
	f.IntVar(&maxUses, "max-uses", 0, "How many machines the token may enroll, 1 to 10000.")
	f.StringVar(&lifetime, "lifetime", "", "Lifetime of each machine after it enrolls, in calendar units: 12h, 30d, 2mo or 1mo2d3h.")
	f.StringVar(&purpose, "purpose", "", "Why the machines exist, kept on each machine.")
	f.StringVar(&projects, "projects", "", "Comma-separated project ids (proj_…) that every enrolled machine joins.")
	f.StringVar(&secrets, "secrets", "", "Comma-separated secret ids (sk_…) granted to every enrolled machine; each must be in --projects.")
	f.DurationVar(&tokenTTL, "token-ttl", 0, "How long the token can enroll machines, as a Go duration (default 168h, at most 12 calendar months).")
	gf.register(cmd)
	return cmd
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(text string) []string {
	var out []string
	for _, item := range strings.Split(text, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// newVaultTokenListCmd builds the list subcommand of a registration-token
// group; list is the client call and print the table printer.
func newVaultTokenListCmd(g *globalOptions, vaultID *string, short string,
	list func(*client.Client, context.Context, string) ([]client.TempTokenInfo, error),
	print func(io.Writer, []client.TempTokenInfo) error,
) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: short,
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.vaultAdminClient(cmd)
			if err != nil {
				return err
			}
			tokens, err := list(c, cmd.Context(), *vaultID)
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(listJSON("tokens", tokens), func(w io.Writer) error {
				return print(w, tokens)
			})
		},
	}
}

// newVaultTokenRevokeCmd builds the revoke subcommand of a
// registration-token group; noun names the token kind in the output.
func newVaultTokenRevokeCmd(g *globalOptions, vaultID *string, short, noun string,
	revoke func(*client.Client, context.Context, string, string) error,
) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke TOKEN_ID",
		Short: short,
		Args:  exactArgs("TOKEN_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.vaultAdminClient(cmd)
			if err != nil {
				return err
			}
			if err := revoke(c, cmd.Context(), *vaultID, args[0]); err != nil {
				return err
			}
			result := map[string]string{"id": args[0], "status": "revoked"}
			return g.printer(cmd).emit(result, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "revoked %s %s\n", noun, args[0])
				return err
			})
		},
	}
}

func printEnrollmentTokens(w io.Writer, tokens []client.TempTokenInfo) error {
	rows := make([][]string, 0, len(tokens))
	for _, t := range tokens {
		lifetime := "-"
		if t.Lifetime != nil {
			lifetime = t.Lifetime.String()
		}
		rows = append(rows, []string{
			t.ID, orDash(t.Status), strconv.Itoa(t.Uses) + "/" + strconv.Itoa(t.MaxUses), lifetime,
			formatMillis(t.ExpiresAt), orDash(strings.Join(t.ProjectIDs, ",")), orDash(strings.Join(t.SecretIDs, ",")),
			describeGuardrails(t.Guardrails),
		})
	}
	return table(w, []string{"ID", "STATUS", "USES", "LIFETIME", "TOKEN EXPIRES", "PROJECTS", "SECRETS", "GUARDRAILS"}, rows)
}
