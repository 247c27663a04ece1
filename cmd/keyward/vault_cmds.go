package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/httpapi/client"
)

func newVaultCmd(g *globalOptions) *cobra.Command {
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a vault",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.adminClient(true)
			if err != nil {
				return err
			}
			v, err := c.CreateVault(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(v, func(w io.Writer) error {
				return printVaults(w, []client.Vault{*v})
			})
		},
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List the vaults the token may see",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.adminClient(true)
			if err != nil {
				return err
			}
			vaults, err := c.ListVaults(cmd.Context())
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(listJSON("vaults", vaults), func(w io.Writer) error {
				return printVaults(w, vaults)
			})
		},
	}
	return newGroupCmd("vault", "Create and list vaults", create, list)
}

func printVaults(w io.Writer, vaults []client.Vault) error {
	rows := make([][]string, 0, len(vaults))
	for _, v := range vaults {
		rows = append(rows, []string{v.ID, v.Name, formatMillis(v.CreatedAt)})
	}
	return table(w, []string{"ID", "NAME", "CREATED"}, rows)
}

func newProjectCmd(g *globalOptions) *cobra.Command {
	var vaultID string

	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a project in a vault",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.vaultAdminClient(cmd)
			if err != nil {
				return err
			}
			p, err := c.CreateProject(cmd.Context(), vaultID, args[0])
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(p, func(w io.Writer) error {
				return printProjects(w, []client.Project{*p})
			})
		},
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List the projects of a vault",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.vaultAdminClient(cmd)
			if err != nil {
				return err
			}
			projects, err := c.ListProjects(cmd.Context(), vaultID)
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(listJSON("projects", projects), func(w io.Writer) error {
				return printProjects(w, projects)
			})
		},
	}

	cmd := newGroupCmd("project", "Create and list projects", create, list)
	cmd.PersistentFlags().StringVar(&vaultID, "vault", "", "Id of the vault (vault_…).")
	return cmd
}

func printProjects(w io.Writer, projects []client.Project) error {
	rows := make([][]string, 0, len(projects))
	for _, p := range projects {
		rows = append(rows, []string{p.ID, p.Name, formatMillis(p.CreatedAt)})
	}
	return table(w, []string{"ID", "NAME", "CREATED"}, rows)
}

// listJSON wraps a list in an object named like the API's responses, with
// an empty list as [] rather than null.
func listJSON[T any](name string, items []T) map[string][]T {
	if items == nil {
		items = []T{}
	}
	return map[string][]T{name: items}
}
