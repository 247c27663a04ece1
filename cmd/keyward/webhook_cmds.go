package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/fsm"
)

// webhook is a webhook as the API shows it.
type webhook struct {
	ID                  string   `json:"id"`
	VaultID             string   `json:"vaultId"`
	URL                 string   `json:"url"`
	Actions             []string `json:"actions"`
	Enabled             bool     `json:"enabled"`
	CreatedAt           int64    `json:"createdAt"`
	UpdatedAt           int64    `json:"updatedAt"`
	Cursor              uint64   `json:"cursor"`
	ConsecutiveFailures int      `json:"consecutiveFailures"`
	Delivered           uint64   `json:"delivered"`
	Failed              uint64   `json:"failed"`
	DisabledAt          int64    `json:"disabledAt,omitempty"`
	DisabledReason      string   `json:"disabledReason,omitempty"`
	Secret              string   `json:"secret,omitempty"`
}

func newWebhookCmd(g *globalOptions) *cobra.Command {
	var vault string
	cmd := newGroupCmd("webhook", "Manage the webhooks that receive a vault's audit events",
		newWebhookCreateCmd(g, &vault),
		newWebhookListCmd(g, &vault),
		newWebhookUpdateCmd(g, &vault),
		newWebhookDeleteCmd(g, &vault),
		newWebhookTestCmd(g, &vault),
		newWebhookDeliveriesCmd(g, &vault),
	)
	cmd.PersistentFlags().StringVar(&vault, "vault", "", "Id of the vault (vault_…).")
	return cmd
}

func webhookPath(vault, id, rest string) string {
	p := vaultPath(vault, "/webhooks")
	if id != "" {
		p += "/" + url.PathEscape(id)
	}
	return p + rest
}

func newWebhookCreateCmd(g *globalOptions, vault *string) *cobra.Command {
	var (
		target   string
		actions  []string
		disabled bool
	)
	cmd := &cobra.Command{
		Use:   "create --url URL --actions ACTION[,ACTION…]",
		Short: "Create a webhook and print its signing secret once",
		Long: "Create a webhook for the vault's audit entries whose action is listed (\"*\" for all).\n" +
			"The signing secret is printed once: receivers verify X-Keyward-Signature with it.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "vault", "url", "actions"); err != nil {
				return err
			}
			c, err := g.adminClient(true)
			if err != nil {
				return err
			}
			in := map[string]any{"url": target, "actions": actions, "enabled": !disabled}
			var w webhook
			if err := c.Do(cmd.Context(), http.MethodPost, webhookPath(*vault, "", ""), in, &w); err != nil {
				return err
			}
			return g.printer(cmd).emit(w, func(out io.Writer) error {
				if err := printWebhook(out, w); err != nil {
					return err
				}
				_, err := fmt.Fprintf(out, "secret   %s\n(shown once: store it with the receiver now)\n", w.Secret)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&target, "url", "", "HTTPS URL that receives POST requests.")
	f.StringSliceVar(&actions, "actions", nil, "Comma-separated audit actions to send, or \"*\" for all.")
	f.BoolVar(&disabled, "disabled", false, "Create the webhook disabled.")
	return cmd
}

func newWebhookListCmd(g *globalOptions, vault *string) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the vault's webhooks",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.vaultAdminClient(cmd)
			if err != nil {
				return err
			}
			var out struct {
				Webhooks []webhook `json:"webhooks"`
			}
			if err := c.Do(cmd.Context(), http.MethodGet, webhookPath(*vault, "", ""), nil, &out); err != nil {
				return err
			}
			return g.printer(cmd).emit(listJSON("webhooks", out.Webhooks), func(w io.Writer) error {
				rows := make([][]string, 0, len(out.Webhooks))
				for _, h := range out.Webhooks {
					rows = append(rows, []string{h.ID, h.URL, strings.Join(h.Actions, ","), strconv.FormatBool(h.Enabled),
						strconv.FormatUint(h.Delivered, 10), strconv.FormatUint(h.Failed, 10)})
				}
				return table(w, []string{"ID", "URL", "ACTIONS", "ENABLED", "DELIVERED", "FAILED"}, rows)
			})
		},
	}
}

func printWebhook(w io.Writer, h webhook) error {
	fields := []field{
		{"id", h.ID}, {"url", h.URL}, {"actions", strings.Join(h.Actions, ",")},
		{"enabled", strconv.FormatBool(h.Enabled)}, {"delivered", strconv.FormatUint(h.Delivered, 10)},
		{"failed", strconv.FormatUint(h.Failed, 10)}, {"failures in a row", strconv.Itoa(h.ConsecutiveFailures)},
	}
	if h.DisabledReason != "" {
		fields = append(fields, field{"disabled", formatMillis(h.DisabledAt) + " (" + h.DisabledReason + ")"})
	}
	return record(w, fields)
}

func newWebhookUpdateCmd(g *globalOptions, vault *string) *cobra.Command {
	var (
		target          string
		actions         []string
		enable, disable bool
	)
	cmd := &cobra.Command{
		Use:   "update WEBHOOK_ID [--url URL] [--actions …] [--enable | --disable]",
		Short: "Change a webhook's URL, actions or state",
		Long: "Change a webhook. --enable also clears its failure run; entries written\n" +
			"while it was disabled are not sent.",
		Args: exactArgs("WEBHOOK_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "vault"); err != nil {
				return err
			}
			if enable && disable {
				return usageErrorf("give --enable or --disable, not both")
			}
			in := map[string]any{}
			if cmd.Flags().Changed("url") {
				in["url"] = target
			}
			if cmd.Flags().Changed("actions") {
				in["actions"] = actions
			}
			if enable || disable {
				in["enabled"] = enable
			}
			if len(in) == 0 {
				return usageErrorf("nothing to change; give --url, --actions, --enable or --disable")
			}
			c, err := g.adminClient(true)
			if err != nil {
				return err
			}
			var w webhook
			if err := c.Do(cmd.Context(), http.MethodPatch, webhookPath(*vault, args[0], ""), in, &w); err != nil {
				return err
			}
			return g.printer(cmd).emit(w, func(out io.Writer) error { return printWebhook(out, w) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&target, "url", "", "New HTTPS URL.")
	f.StringSliceVar(&actions, "actions", nil, "New comma-separated list of actions, or \"*\".")
	f.BoolVar(&enable, "enable", false, "Enable the webhook.")
	f.BoolVar(&disable, "disable", false, "Disable the webhook.")
	return cmd
}

func newWebhookDeleteCmd(g *globalOptions, vault *string) *cobra.Command {
	return &cobra.Command{
		Use:   "delete WEBHOOK_ID",
		Short: "Delete a webhook and its delivery log",
		Args:  exactArgs("WEBHOOK_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.vaultAdminClient(cmd)
			if err != nil {
				return err
			}
			var out map[string]string
			if err := c.Do(cmd.Context(), http.MethodDelete, webhookPath(*vault, args[0], ""), nil, &out); err != nil {
				return err
			}
			return g.printer(cmd).emit(out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "deleted %s\n", args[0])
				return err
			})
		},
	}
}

// testResult is the body of a test delivery.
type testResult struct {
	DeliveryID string `json:"deliveryId"`
	Delivered  bool   `json:"delivered"`
	StatusCode int    `json:"statusCode,omitempty"`
	Error      string `json:"error,omitempty"`
	DurationMs int64  `json:"durationMs"`
}

func newWebhookTestCmd(g *globalOptions, vault *string) *cobra.Command {
	return &cobra.Command{
		Use:   "test WEBHOOK_ID",
		Short: "Send a signed webhook_test event and show the receiver's answer",
		Args:  exactArgs("WEBHOOK_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.vaultAdminClient(cmd)
			if err != nil {
				return err
			}
			var res testResult
			if err := c.Do(cmd.Context(), http.MethodPost, webhookPath(*vault, args[0], "/test"), map[string]any{}, &res); err != nil {
				return err
			}
			if err := g.printer(cmd).emit(res, func(w io.Writer) error {
				return record(w, []field{
					{"delivered", strconv.FormatBool(res.Delivered)}, {"status", orDash(statusText(res.StatusCode))},
					{"error", orDash(res.Error)}, {"duration", strconv.FormatInt(res.DurationMs, 10) + " ms"},
					{"delivery id", res.DeliveryID},
				})
			}); err != nil {
				return err
			}
			if !res.Delivered {
				return fmt.Errorf("the test delivery to webhook %s failed: %s", args[0], orDash(res.Error))
			}
			return nil
		},
	}
}

func statusText(code int) string {
	if code == 0 {
		return ""
	}
	return strconv.Itoa(code) + " " + http.StatusText(code)
}

func newWebhookDeliveriesCmd(g *globalOptions, vault *string) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "deliveries WEBHOOK_ID",
		Short: "Show a webhook's delivery log, newest first",
		Args:  exactArgs("WEBHOOK_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.vaultAdminClient(cmd)
			if err != nil {
				return err
			}
			var out struct {
				Deliveries []fsm.DeliveryRecord `json:"deliveries"`
			}
			path := webhookPath(*vault, args[0], "/deliveries?limit="+strconv.Itoa(limit))
			if err := c.Do(cmd.Context(), http.MethodGet, path, nil, &out); err != nil {
				return err
			}
			return g.printer(cmd).emit(listJSON("deliveries", out.Deliveries), func(w io.Writer) error {
				rows := make([][]string, 0, len(out.Deliveries))
				for _, d := range out.Deliveries {
					rows = append(rows, []string{formatMillis(d.At), strconv.FormatUint(d.Seq, 10), d.Event, d.Status,
						strconv.Itoa(d.Attempts), orDash(statusText(d.StatusCode)), orDash(oneLine(d.Error, 60)), d.DeliveryID})
				}
				return table(w, []string{"TIME", "ENTRY", "EVENT", "STATUS", "ATTEMPTS", "HTTP", "ERROR", "DELIVERY ID"}, rows)
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 100, "Number of records, 1 to 1000.")
	return cmd
}

// alertSettings is the body of the alert routes.
type alertSettings struct {
	RetentionDays  int             `json:"retentionDays"`
	Email          fsm.EmailAlerts `json:"email"`
	ExpiryWarnings []string        `json:"expiryWarnings"`
}

func printAlertSettings(w io.Writer, s alertSettings) error {
	return record(w, []field{
		{"retention", strconv.Itoa(s.RetentionDays) + " days"},
		{"email to", orDash(strings.Join(s.Email.To, ", "))},
		{"email actions", orDash(strings.Join(s.Email.Actions, ","))},
		{"expiry warnings", orDash(strings.Join(s.ExpiryWarnings, ", "))},
	})
}

func newAlertsCmd(g *globalOptions) *cobra.Command {
	var vault string
	show := &cobra.Command{
		Use:   "show",
		Short: "Show the vault's retention, email alerts and expiry warnings",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return alertsCall(cmd, g, vault, http.MethodGet, "/alerts", nil)
		},
	}
	var to, actions []string
	emailSet := &cobra.Command{
		Use:   "set --to ADDRESS[,ADDRESS…] --actions ACTION[,ACTION…]",
		Short: "Set who is mailed for which audit actions",
		Long: "Set the recipients and actions of the vault's email alerts (\"*\" for every\n" +
			"action). An empty --to turns email alerts off. Mail goes through the relay\n" +
			"of each server's --smtp-addr.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return alertsCall(cmd, g, vault, http.MethodPut, "/alerts/email",
				map[string][]string{"to": nonNilStrings(to), "actions": nonNilStrings(actions)})
		},
	}
	emailSet.Flags().StringSliceVar(&to, "to", nil, "Comma-separated email addresses.")
	emailSet.Flags().StringSliceVar(&actions, "actions", nil, "Comma-separated audit actions, or \"*\".")
	var offsets []string
	warnSet := &cobra.Command{
		Use:   "set --offsets DURATION[,DURATION…]",
		Short: "Warn this long before a temporary machine expires",
		Long: "Set when temp_machine_expiry_warning entries are written before a temporary\n" +
			"machine expires, such as 7d,1d,1h; each is written once per machine and\n" +
			"expiry. An empty list turns warnings off.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return alertsCall(cmd, g, vault, http.MethodPut, "/alerts/expiry-warnings", map[string][]string{"offsets": nonNilStrings(offsets)})
		},
	}
	warnSet.Flags().StringSliceVar(&offsets, "offsets", nil, "Comma-separated offsets before expiry: days (7d), hours (1h) or minutes (30m).")

	cmd := newGroupCmd("alerts", "Configure a vault's email alerts and expiry warnings",
		show,
		newGroupCmd("email", "Configure email alerts", emailSet),
		newGroupCmd("expiry-warnings", "Configure expiry warnings", warnSet),
	)
	cmd.PersistentFlags().StringVar(&vault, "vault", "", "Id of the vault (vault_…).")
	return cmd
}

func alertsCall(cmd *cobra.Command, g *globalOptions, vault, method, rest string, in any) error {
	if err := requireFlags(cmd, "vault"); err != nil {
		return err
	}
	c, err := g.adminClient(true)
	if err != nil {
		return err
	}
	var out alertSettings
	if err := c.Do(cmd.Context(), method, vaultPath(vault, rest), in, &out); err != nil {
		return err
	}
	return g.printer(cmd).emit(out, func(w io.Writer) error { return printAlertSettings(w, out) })
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
