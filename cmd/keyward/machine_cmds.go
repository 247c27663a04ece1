package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/httpapi/client"
)

// machineVault holds the --vault flag shared by the machine subcommands.
type machineVault struct{ id string }

func newMachineCmd(g *globalOptions) *cobra.Command {
	v := &machineVault{}
	cmd := newGroupCmd("machine", "Manage machines: approve, grant, extend, guardrails",
		newMachineListCmd(g, v),
		newMachineGetCmd(g, v),
		newMachineActionCmd(g, v, client.ActionApprove, "Approve a pending machine"),
		newMachineActionCmd(g, v, client.ActionDeny, "Deny a pending machine"),
		newMachineActionCmd(g, v, client.ActionRevoke, "Revoke a machine for good"),
		newMachineActionCmd(g, v, client.ActionDisable, "Suspend a machine until it is enabled"),
		newMachineActionCmd(g, v, client.ActionEnable, "Enable a disabled machine"),
		newRenameMachineCmd(g, v),
		newPurgeMachineCmd(g, v),
		newAttachProjectCmd(g, v),
		newGrantCmd(g, v),
		newExtendCmd(g, v),
		newRevertCmd(g, v),
		newHistoryCmd(g, v),
		newGuardrailsCmd(g, v),
	)
	cmd.PersistentFlags().StringVar(&v.id, "vault", "", "Id of the vault (vault_…).")
	return cmd
}

// machineRun wraps the common steps of a machine subcommand: require
// --vault, build the admin client, call, print the machine.
func machineRun(g *globalOptions, v *machineVault, call func(cmd *cobra.Command, c *client.Client, args []string) (*client.Machine, error)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := requireFlags(cmd, "vault"); err != nil {
			return err
		}
		c, err := g.adminClient(true)
		if err != nil {
			return err
		}
		m, err := call(cmd, c, args)
		if err != nil {
			return err
		}
		return printMachineResult(g.printer(cmd), m)
	}
}

// printMachineResult prints the machine an action returned; the server may
// respond to some actions with no body, and then there is nothing to show.
func printMachineResult(p printer, m *client.Machine) error {
	if m == nil {
		if p.json() {
			return p.printJSON(struct{}{})
		}
		_, err := fmt.Fprintln(p.w, "done")
		return err
	}
	return p.emit(m, func(w io.Writer) error { return printMachine(w, m) })
}

func newMachineListCmd(g *globalOptions, v *machineVault) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the machines of a vault",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.vaultAdminClient(cmd)
			if err != nil {
				return err
			}
			machines, err := c.ListMachines(cmd.Context(), v.id)
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(listJSON("machines", machines), func(w io.Writer) error {
				return printMachines(w, machines)
			})
		},
	}
}

func newMachineGetCmd(g *globalOptions, v *machineVault) *cobra.Command {
	return &cobra.Command{
		Use:   "get MACHINE_ID",
		Short: "Show one machine",
		Args:  exactArgs("MACHINE_ID"),
		RunE: machineRun(g, v, func(cmd *cobra.Command, c *client.Client, args []string) (*client.Machine, error) {
			return c.GetMachine(cmd.Context(), v.id, args[0])
		}),
	}
}

func newMachineActionCmd(g *globalOptions, v *machineVault, action, short string) *cobra.Command {
	return &cobra.Command{
		Use:   action + " MACHINE_ID",
		Short: short,
		Args:  exactArgs("MACHINE_ID"),
		RunE: machineRun(g, v, func(cmd *cobra.Command, c *client.Client, args []string) (*client.Machine, error) {
			return c.MachineAction(cmd.Context(), v.id, args[0], action)
		}),
	}
}

func newRenameMachineCmd(g *globalOptions, v *machineVault) *cobra.Command {
	return &cobra.Command{
		Use:   "rename MACHINE_ID NAME",
		Short: "Give a machine a new display name (its id does not change)",
		Args:  exactArgs("MACHINE_ID", "NAME"),
		RunE: machineRun(g, v, func(cmd *cobra.Command, c *client.Client, args []string) (*client.Machine, error) {
			return c.RenameMachine(cmd.Context(), v.id, args[0], args[1])
		}),
	}
}

func newPurgeMachineCmd(g *globalOptions, v *machineVault) *cobra.Command {
	return &cobra.Command{
		Use:   "purge MACHINE_ID",
		Short: "Delete a revoked or expired machine and free its public key",
		Long: "Delete the record of a revoked or expired machine and free its public key,\n" +
			"so the key can register again as a new machine. The audit trail keeps\n" +
			"what the machine did. An active machine must be revoked first.",
		Args: exactArgs("MACHINE_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.vaultAdminClient(cmd)
			if err != nil {
				return err
			}
			res, err := c.PurgeMachine(cmd.Context(), v.id, args[0])
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(res, func(w io.Writer) error {
				fields := []field{{"purged", res.ID}}
				if conf := describeConfirmation(res.Confirmation); conf != "" {
					fields = append(fields, field{"confirmed", conf})
				}
				return record(w, fields)
			})
		},
	}
}

func newAttachProjectCmd(g *globalOptions, v *machineVault) *cobra.Command {
	return &cobra.Command{
		Use:   "attach-project MACHINE_ID PROJECT_ID",
		Short: "Make a machine a member of a project (grants no secret by itself)",
		Args:  exactArgs("MACHINE_ID", "PROJECT_ID"),
		RunE: machineRun(g, v, func(cmd *cobra.Command, c *client.Client, args []string) (*client.Machine, error) {
			return c.AttachProject(cmd.Context(), v.id, args[0], args[1])
		}),
	}
}

func newGrantCmd(g *globalOptions, v *machineVault) *cobra.Command {
	var clear bool
	cmd := &cobra.Command{
		Use:   "grant MACHINE_ID SECRET_ID...",
		Short: "Replace the set of secrets a machine may read",
		Long: "Replace the set of secrets a machine may read with the SECRET_IDs given;\n" +
			"secrets left out lose their grant. --clear removes every grant.",
		Args: minArgs("MACHINE_ID"),
		PreRunE: func(_ *cobra.Command, args []string) error {
			switch {
			case len(args) == 1 && !clear:
				return usageErrorf("give the SECRET_IDs to grant, or --clear to remove every grant")
			case len(args) > 1 && clear:
				return usageErrorf("--clear removes every grant; give either SECRET_IDs or --clear")
			}
			return nil
		},
		RunE: machineRun(g, v, func(cmd *cobra.Command, c *client.Client, args []string) (*client.Machine, error) {
			return c.SetGrants(cmd.Context(), v.id, args[0], args[1:])
		}),
	}
	cmd.Flags().BoolVar(&clear, "clear", false, "Remove every grant of the machine.")
	return cmd
}

func printMachines(w io.Writer, machines []client.Machine) error {
	rows := make([][]string, 0, len(machines))
	for _, m := range machines {
		rows = append(rows, []string{
			m.ID, m.Name, m.Kind, m.Status, formatMillis(m.ExpiresAt),
			formatMillis(m.LastSeenAt), orDash(m.LastSeenIP),
		})
	}
	return table(w, []string{"ID", "NAME", "KIND", "STATUS", "EXPIRES", "LAST SEEN", "LAST IP"}, rows)
}

func printMachine(w io.Writer, m *client.Machine) error {
	fields := []field{
		{"id", m.ID},
		{"name", m.Name},
		{"vault", m.VaultID},
		{"kind", m.Kind},
		{"status", m.Status},
		{"hostname", orDash(m.Hostname)},
		{"purpose", orDash(m.Purpose)},
		{"registered", formatMillis(m.RegisteredAt)},
		{"approved", formatMillis(m.ApprovedAt)},
		{"expires", formatMillis(m.ExpiresAt)},
		{"extensions", strconv.Itoa(len(m.Extensions))},
		{"projects", joinOrDash(m.Projects)},
		{"grants", joinOrDash(m.Grants)},
		{"guardrails", describeGuardrails(m.Guardrails)},
		{"last seen", formatMillis(m.LastSeenAt) + " " + orDash(m.LastSeenIP)},
	}
	if c := describeConfirmation(m.Confirmation); c != "" {
		fields = append(fields, field{"confirmed", c})
	}
	return record(w, fields)
}

// describeConfirmation summarises how many nodes applied a
// security-critical write, or returns "" for other responses.
func describeConfirmation(c client.Confirmation) string {
	if c.ClusterNodes == 0 {
		return ""
	}
	text := strconv.Itoa(c.ConfirmedNodes) + " of " + strconv.Itoa(c.ClusterNodes) + " nodes"
	if len(c.UnconfirmedNodes) > 0 {
		text += "; stale until they catch up: " + strings.Join(c.UnconfirmedNodes, ", ")
	}
	return text
}
