package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/fsm/seal"
	"github.com/keyward/keyward/httpapi/client"
)

func newRootKeyCmd() *cobra.Command {
	newCmd := &cobra.Command{
		Use:   "new FILE",
		Short: "Write a new random root key to FILE (mode 0600); it refuses to overwrite",
		Long: "Write a new random root key to FILE: one line with the standard base64 of\n" +
			"32 random bytes, mode 0600. Give every node of a cluster the same file, and\n" +
			"keep a backup: without it no stored secret can be decrypted.",
		Args: exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := seal.WriteRootKeyFile(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote root key to %s; back it up and give every node the same file\n", args[0])
			return nil
		},
	}
	return newGroupCmd("root-key", "Manage the root key that encrypts every project key", newCmd)
}

func newInitCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Initialize a new cluster and print the first owner token",
		Long: "Initialize a new cluster and print the first owner token on stdout. The\n" +
			"server returns it once; a second init fails with 409.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.adminClient(false)
			if err != nil {
				return err
			}
			res, err := c.Init(cmd.Context())
			if errors.Is(err, client.ErrConflict) {
				return withHints(err, "the cluster is already initialized; use the owner token kept from the first init")
			}
			if err != nil {
				return err
			}
			p := g.printer(cmd)
			return p.emit(res, func(w io.Writer) error {
				fmt.Fprintln(cmd.ErrOrStderr(), "Store this owner token now; it is not shown again.")
				_, err := fmt.Fprintln(w, res.RootToken)
				return err
			})
		},
	}
}

func newHealthCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "health",
		Short: "Show the node's state, its leader and its applied Raft index",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.adminClient(false)
			if err != nil {
				return err
			}
			h, err := c.Health(cmd.Context())
			if h == nil {
				return err
			}
			// An unhealthy node's report is printed too, and the command
			// then exits non-zero.
			printErr := g.printer(cmd).emit(h, func(w io.Writer) error {
				return record(w, []field{
					{"node id", h.NodeID},
					{"state", h.State},
					{"leader id", orDash(h.LeaderID)},
					{"applied index", strconv.FormatUint(h.AppliedIndex, 10)},
					{"healthy", optionalBool(h.Healthy)},
					{"ready", optionalBool(h.Ready)},
					{"staleness", orDash(derefString(h.Staleness))},
					{"clock skewed", optionalBool(h.ClockSkewed)},
					{"root key mismatch", optionalBool(h.RootKeyMismatch)},
					{"disk stalled", optionalBool(h.DiskStalled)},
					{"max fsync (30 s)", optionalMillis(h.FsyncLatencyMaxMs)},
					{"disk low", optionalBool(h.DiskLow)},
					{"disk free", optionalBytes(h.DiskFreeBytes)},
				})
			})
			if printErr != nil {
				return printErr
			}
			return err
		},
	}
}

func optionalMillis(ms *int64) string {
	if ms == nil {
		return "-"
	}
	return strconv.FormatInt(*ms, 10) + " ms"
}

func optionalBytes(n *uint64) string {
	if n == nil {
		return "-"
	}
	return strconv.FormatUint(*n/(1<<20), 10) + " MiB"
}

func optionalBool(b *bool) string {
	if b == nil {
		return "-"
	}
	return strconv.FormatBool(*b)
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
