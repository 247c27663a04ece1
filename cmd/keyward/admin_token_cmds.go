package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/httpapi/client"
)

func newAdminTokenCmd(g *globalOptions) *cobra.Command {
	return newGroupCmd("admin-token", "Create, list and revoke admin tokens (owners only)",
		newAdminTokenCreateCmd(g),
		newAdminTokenListCmd(g),
		newAdminTokenRevokeCmd(g),
	)
}

func newAdminTokenCreateCmd(g *globalOptions) *cobra.Command {
	var req client.AdminTokenRequest
	var vaults string
	cmd := &cobra.Command{
		Use:   "create --name NAME --role owner|operator|auditor --vaults '*'|VAULT_ID,... [--ttl 720h]",
		Short: "Create an admin token and print it once",
		Long: "Create an admin token. An owner manages everything, tokens included; an\n" +
			"operator everything but tokens and alert settings; an auditor reads only.\n" +
			"--vaults is '*' for every vault or a comma-separated list, and must lie\n" +
			"inside the scope of the token that runs the command.",
		Args: exactArgs(),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "name", "role", "vaults"); err != nil {
				return err
			}
			if cmd.Flags().Changed("ttl") && req.TTL <= 0 {
				return usageErrorf("--ttl %s must be positive; leave the flag out for a token that does not expire", req.TTL)
			}
			req.Vaults = splitList(vaults)
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.adminClient(true)
			if err != nil {
				return err
			}
			tok, err := c.CreateAdminToken(cmd.Context(), req)
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(tok, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Token (shown once): %s\nId: %s\nRole: %s\nVaults: %s\nExpires: %s\n",
					tok.Token, tok.ID, tok.Role, strings.Join(tok.Vaults, ","), formatMillisOrNever(tok.ExpiresAt))
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "Who or what uses the token, such as ci-deploys.")
	f.StringVar(&req.Role, "role", "", "Role of the token: owner, operator or auditor.")
	f.StringVar(&vaults, "vaults", "", "'*' for every vault, or comma-separated vault ids (vault_…).")
	f.DurationVar(&req.TTL, "ttl", 0, "Lifetime of the token as a Go duration, 1m to 43800h (default: no expiry).")
	return cmd
}

func newAdminTokenListCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the admin tokens inside this token's scope (never the tokens themselves)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.adminClient(true)
			if err != nil {
				return err
			}
			tokens, err := c.ListAdminTokens(cmd.Context())
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(listJSON("tokens", tokens), func(w io.Writer) error {
				rows := make([][]string, 0, len(tokens))
				for _, t := range tokens {
					rows = append(rows, []string{
						t.ID, t.Name, t.Role, strings.Join(t.Vaults, ","), orDash(t.Status),
						formatMillis(t.CreatedAt), formatMillisOrNever(t.ExpiresAt),
					})
				}
				return table(w, []string{"ID", "NAME", "ROLE", "VAULTS", "STATUS", "CREATED", "EXPIRES"}, rows)
			})
		},
	}
}

func newAdminTokenRevokeCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke TOKEN_ID",
		Short: "Revoke an admin token; returns once every node rejects it",
		Args:  exactArgs("TOKEN_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.adminClient(true)
			if err != nil {
				return err
			}
			tok, err := c.RevokeAdminToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(tok, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "revoked admin token %s (%s)\n", tok.ID, tok.Name)
				if c := describeConfirmation(tok.Confirmation); c != "" && err == nil {
					_, err = fmt.Fprintf(w, "confirmed by %s\n", c)
				}
				return err
			})
		},
	}
}

// formatMillisOrNever formats an expiry where zero means no expiry.
func formatMillisOrNever(ms int64) string {
	if ms == 0 {
		return "never"
	}
	return formatMillis(ms)
}
