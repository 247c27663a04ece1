package main

import (
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/guard"
	"github.com/keyward/keyward/httpapi/client"
)

// maxExtendHours is the largest whole number of hours a time.Duration
// holds (about 292 years); --by values beyond it would overflow.
const maxExtendHours = int64(1<<63-1) / int64(time.Hour)

func newExtendCmd(g *globalOptions, v *machineVault) *cobra.Command {
	var until, by, reason string
	var req client.ExtendRequest
	cmd := &cobra.Command{
		Use:   "extend MACHINE_ID (--until TIME | --by DURATION) --reason TEXT",
		Short: "Move a temporary machine's expiry later",
		Long: "Move a temporary machine's expiry later, to --until (RFC 3339; digits\n" +
			"below a millisecond are dropped) or by --by from the current expiry. The\n" +
			"new expiry must be later than the current one and at most 12 calendar\n" +
			"months from now; the server rejects anything else and names the cap.",
		Args: exactArgs("MACHINE_ID"),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			req, err = parseExtension(cmd, until, by, reason)
			return err
		},
		RunE: machineRun(g, v, func(cmd *cobra.Command, c *client.Client, args []string) (*client.Machine, error) {
			return c.Extend(cmd.Context(), v.id, args[0], req)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&until, "until", "", "New expiry as an RFC 3339 time, such as 2026-07-01T00:00:00Z.")
	f.StringVar(&by, "by", "", "Time added to the current expiry: a Go duration (36h) or days and hours (30d, 1d12h).")
	f.StringVar(&reason, "reason", "", "Why the machine is extended; kept in its history and the audit log.")
	return cmd
}

// parseExtension turns the extend flags into a request.
func parseExtension(cmd *cobra.Command, until, by, reason string) (client.ExtendRequest, error) {
	untilSet, bySet := cmd.Flags().Changed("until"), cmd.Flags().Changed("by")
	if untilSet == bySet {
		return client.ExtendRequest{}, usageErrorf("give exactly one of --until TIME or --by DURATION")
	}
	if strings.TrimSpace(reason) == "" {
		return client.ExtendRequest{}, usageErrorf("--reason is required; it is kept in the machine's history")
	}

	if bySet {
		d, err := parseExtendBy(by)
		return client.ExtendRequest{Duration: d, Reason: reason}, err
	}

	t, err := time.Parse(time.RFC3339, until)
	if err != nil {
		return client.ExtendRequest{}, usageErrorf("--until %q is not an RFC 3339 time such as 2026-07-01T00:00:00Z", until)
	}
	if t.UnixMilli() <= 0 {
		return client.ExtendRequest{}, usageErrorf("--until %s is not after 1970-01-01T00:00:00Z", until)
	}
	return client.ExtendRequest{ExpiresAt: t.UnixMilli(), Reason: reason}, nil
}

// parseExtendBy reads --by as a Go duration ("36h", "90m") or as days and
// hours ("30d", "1d12h"). Months are refused: a month has no fixed length,
// so the CLI cannot turn one into a duration.
func parseExtendBy(text string) (time.Duration, error) {
	if d, err := time.ParseDuration(text); err == nil {
		if d <= 0 {
			return 0, usageErrorf("--by %s must be positive; an extension moves the expiry later", text)
		}
		return d, nil
	}

	if strings.Trim(text, "0dh") == "" && strings.Contains(text, "0") {
		return 0, usageErrorf("--by %s must be positive; an extension moves the expiry later", text)
	}
	l, err := client.ParseLifetime(text)
	if err != nil {
		return 0, usageErrorf("--by %q is neither a Go duration such as 36h nor days and hours such as 30d or 1d12h", text)
	}
	if l.Months > 0 {
		return 0, withHints(usageErrorf("--by %q uses months, which have no fixed length", text),
			"use --until with the exact new expiry")
	}
	hours := int64(l.Days)*24 + int64(l.Hours)
	if hours > maxExtendHours {
		return 0, usageErrorf("--by %q is too long", text)
	}
	return time.Duration(hours) * time.Hour, nil
}

func newRevertCmd(g *globalOptions, v *machineVault) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "revert MACHINE_ID --reason TEXT",
		Short: "Undo a temporary machine's latest extension that is still in force",
		Long: "Undo the latest extension that is still in force: the expiry goes back to\n" +
			"what it was before. Repeated reverts walk down the history. When the\n" +
			"restored expiry has passed, the machine expires at once.",
		Args: exactArgs("MACHINE_ID"),
		PreRunE: func(*cobra.Command, []string) error {
			if strings.TrimSpace(reason) == "" {
				return usageErrorf("--reason is required; it is kept in the machine's history")
			}
			return nil
		},
		RunE: machineRun(g, v, func(cmd *cobra.Command, c *client.Client, args []string) (*client.Machine, error) {
			return c.Revert(cmd.Context(), v.id, args[0], reason)
		}),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "Why the extension is undone; kept in the history and the audit log.")
	return cmd
}

func newHistoryCmd(g *globalOptions, v *machineVault) *cobra.Command {
	return &cobra.Command{
		Use:   "history MACHINE_ID",
		Short: "Show a machine's extension history, reverted entries included",
		Args:  exactArgs("MACHINE_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.vaultAdminClient(cmd)
			if err != nil {
				return err
			}
			exts, err := c.Extensions(cmd.Context(), v.id, args[0])
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(listJSON("extensions", exts), func(w io.Writer) error {
				return printExtensions(w, exts)
			})
		},
	}
}

func printExtensions(w io.Writer, exts []client.Extension) error {
	rows := make([][]string, 0, len(exts))
	for _, e := range exts {
		reverted := "-"
		if e.RevertedAt != 0 {
			reverted = formatMillis(e.RevertedAt) + " by " + orDash(e.RevertedBy)
		}
		rows = append(rows, []string{
			e.ID, formatMillis(e.PreviousExpiresAt), formatMillis(e.NewExpiresAt),
			e.Reason, orDash(e.Actor), formatMillis(e.CreatedAt), reverted,
		})
	}
	return table(w, []string{"ID", "FROM", "TO", "REASON", "ACTOR", "CREATED", "REVERTED"}, rows)
}

func newGuardrailsCmd(g *globalOptions, v *machineVault) *cobra.Command {
	var gf guardrailFlags
	var clear bool
	var rails guard.Guardrails
	cmd := &cobra.Command{
		Use:   "guardrails MACHINE_ID [--ip CIDR...] [--country CC...] [--window HH:MM-HH:MM --timezone ZONE [--days D,...]] [--observe AXIS,...] | --clear",
		Short: "Replace a machine's guardrails",
		Long: "Replace a machine's guardrails with the ones the flags describe; axes not\n" +
			"given are removed. Every configured axis must pass on every signed\n" +
			"request. --clear removes every guardrail.",
		Args: exactArgs("MACHINE_ID"),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			rails, err = guardrailsFromFlags(&gf, clear, gf.set(cmd))
			return err
		},
		RunE: machineRun(g, v, func(cmd *cobra.Command, c *client.Client, args []string) (*client.Machine, error) {
			return c.SetGuardrails(cmd.Context(), v.id, args[0], rails)
		}),
	}
	gf.register(cmd)
	cmd.Flags().BoolVar(&clear, "clear", false, "Remove every guardrail of the machine.")
	return cmd
}

// guardrailsFromFlags returns the guardrails to store: empty for --clear.
func guardrailsFromFlags(gf *guardrailFlags, clear, anySet bool) (guard.Guardrails, error) {
	if clear == anySet {
		return guard.Guardrails{}, usageErrorf("give guardrail flags (--ip, --country, --window …) or --clear, not both and not neither")
	}
	if clear {
		return guard.Guardrails{}, nil
	}
	rails, err := gf.build()
	if err != nil {
		return guard.Guardrails{}, err
	}
	if rails == nil {
		// For example --ip "": storing that would silently remove every axis.
		return guard.Guardrails{}, usageErrorf("the guardrail flags configure no axis; use --clear to remove every guardrail")
	}
	return *rails, nil
}
