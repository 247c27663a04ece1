package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/httpapi/client"
)

func newBootstrapTokenCmd(g *globalOptions) *cobra.Command {
	var vaultID string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a single-use registration token for a long-lived machine",
		Long: "Create a single-use registration token for a long-lived machine and print\n" +
			"it with the commands that register a Linux/macOS or Windows host. The\n" +
			"token is shown only once and is valid for 10 minutes.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.vaultAdminClient(cmd)
			if err != nil {
				return err
			}
			tok, err := c.CreateBootstrapToken(cmd.Context(), vaultID)
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(tok, func(w io.Writer) error {
				return printRegistrationToken(w, tok.Token, tok.ExpiresAt, tok.Commands)
			})
		},
	}
	cmd := newGroupCmd("bootstrap-token", "Create, list and revoke registration tokens for long-lived machines",
		create,
		newVaultTokenListCmd(g, &vaultID, "List the bootstrap tokens of a vault (never the tokens themselves)",
			(*client.Client).ListBootstrapTokens, printBootstrapTokens),
		newVaultTokenRevokeCmd(g, &vaultID, "Revoke an unused bootstrap token by its id", "bootstrap token",
			(*client.Client).RevokeBootstrapToken),
	)
	cmd.PersistentFlags().StringVar(&vaultID, "vault", "", "Id of the vault (vault_…).")
	return cmd
}

// printBootstrapTokens shows each token's id, state and times.
func printBootstrapTokens(w io.Writer, tokens []client.TempTokenInfo) error {
	rows := make([][]string, 0, len(tokens))
	for _, t := range tokens {
		rows = append(rows, []string{t.ID, orDash(t.Status), formatMillis(t.CreatedAt), formatMillis(t.ExpiresAt)})
	}
	return table(w, []string{"ID", "STATUS", "CREATED", "TOKEN EXPIRES"}, rows)
}

// printRegistrationToken shows a new token and its one-line commands.
func printRegistrationToken(w io.Writer, token string, expiresAt int64, commands client.Commands) error {
	_, err := fmt.Fprintf(w,
		"Token (shown once): %s\nExpires: %s\n\nLinux and macOS:\n  %s\n\nWindows PowerShell:\n  %s\n",
		token, formatMillis(expiresAt), orDash(commands.Sh), orDash(commands.PS))
	return err
}
