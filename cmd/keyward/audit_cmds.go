package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyward/keyward/fsm"
)

// auditFilters are the query flags shared by audit query and export.
type auditFilters struct {
	actions                      []string
	severity, machine, secret    string
	sourceIP, since, until, text string
	order                        string
}

func (a *auditFilters) addFlags(f *pflag.FlagSet) {
	f.StringSliceVar(&a.actions, "action", nil, "Comma-separated actions to keep, such as temp_machine_blocked,secret_read.")
	f.StringVar(&a.severity, "severity", "", "Keep one severity: critical, high, medium, low or info.")
	f.StringVar(&a.machine, "machine", "", "Keep entries of one machine id.")
	f.StringVar(&a.secret, "secret", "", "Keep entries of one secret id.")
	f.StringVar(&a.sourceIP, "source-ip", "", "Keep entries from one source address.")
	f.StringVar(&a.since, "since", "", "Keep entries at or after this time: RFC 3339 or Unix milliseconds.")
	f.StringVar(&a.until, "until", "", "Keep entries at or before this time: RFC 3339 or Unix milliseconds.")
	f.StringVarP(&a.text, "query", "q", "", "Keep entries whose action, detail, ids or fields contain this text (any case).")
	f.StringVar(&a.order, "order", "", "desc (newest first, the default of query) or asc (the default of export).")
}

func (a *auditFilters) values() url.Values {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("action", strings.Join(a.actions, ","))
	set("severity", a.severity)
	set("machineId", a.machine)
	set("secretId", a.secret)
	set("sourceIp", a.sourceIP)
	set("since", a.since)
	set("until", a.until)
	set("q", a.text)
	set("order", a.order)
	return v
}

func vaultPath(vault, rest string) string {
	return "/v1/admin/vaults/" + url.PathEscape(vault) + rest
}

func newAuditCmd(g *globalOptions) *cobra.Command {
	var vault string
	cmd := newGroupCmd("audit", "Query, follow and export the replicated audit log",
		newAuditQueryCmd(g, &vault),
		newAuditTailCmd(g, &vault),
		newAuditExportCmd(g, &vault),
		newAuditRetentionCmd(g, &vault),
	)
	cmd.PersistentFlags().StringVar(&vault, "vault", "", "Id of the vault (vault_…).")
	return cmd
}

// auditPage is the body of an audit query.
type auditPage struct {
	Entries    []fsm.AuditEntry `json:"entries"`
	NextCursor *string          `json:"nextCursor"`
}

func newAuditQueryCmd(g *globalOptions, vault *string) *cobra.Command {
	var (
		filters auditFilters
		limit   int
		cursor  string
		system  bool
	)
	cmd := &cobra.Command{
		Use:   "query",
		Short: "Show one page of audit entries, newest first",
		Long: "Show one page of a vault's audit entries, newest first, with the filters given.\n" +
			"When more entries match, the last line names the --cursor of the next page.\n" +
			"--system shows the cluster-wide entries that belong to no vault instead\n" +
			"(cluster init, admin tokens for every vault, failures of unknown machines);\n" +
			"it needs a token scoped to every vault.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if system && *vault != "" {
				return usageErrorf("--system and --vault exclude each other")
			}
			if !system {
				if err := requireFlags(cmd, "vault"); err != nil {
					return err
				}
			}
			c, err := g.adminClient(true)
			if err != nil {
				return err
			}
			v := filters.values()
			if limit > 0 {
				v.Set("limit", strconv.Itoa(limit))
			}
			if cursor != "" {
				v.Set("cursor", cursor)
			}
			path := vaultPath(*vault, "/audit?"+v.Encode())
			if system {
				path = "/v1/admin/audit?" + v.Encode()
			}
			var page auditPage
			if err := c.Do(cmd.Context(), http.MethodGet, path, nil, &page); err != nil {
				return err
			}
			return g.printer(cmd).emit(page, func(w io.Writer) error { return printAuditPage(w, page) })
		},
	}
	filters.addFlags(cmd.Flags())
	cmd.Flags().IntVar(&limit, "limit", 0, "Entries per page, 1 to 1000 (default 100).")
	cmd.Flags().StringVar(&cursor, "cursor", "", "The cursor printed by the previous page.")
	cmd.Flags().BoolVar(&system, "system", false, "Show the cluster-wide entries that belong to no vault.")
	return cmd
}

func printAuditPage(w io.Writer, page auditPage) error {
	rows := make([][]string, 0, len(page.Entries))
	for _, e := range page.Entries {
		rows = append(rows, auditRow(e))
	}
	if err := table(w, auditHeader, rows); err != nil {
		return err
	}
	if page.NextCursor != nil {
		_, err := fmt.Fprintf(w, "more entries: --cursor %s\n", *page.NextCursor)
		return err
	}
	return nil
}

var auditHeader = []string{"ID", "TIME", "ACTION", "SEVERITY", "ACTOR", "MACHINE", "SOURCE", "COUNT", "DETAIL"}

func auditRow(e fsm.AuditEntry) []string {
	return []string{
		strconv.FormatUint(e.ID, 10), formatMillis(e.Timestamp), e.Action, e.Severity,
		orDash(strings.TrimSpace(e.ActorKind + " " + e.ActorID)), orDash(string(e.MachineID)),
		orDash(e.SourceIP), strconv.FormatInt(e.Count, 10), orDash(oneLine(e.Detail, 80)),
	}
}

// oneLine keeps a table cell on one line and at most max characters.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

func newAuditTailCmd(g *globalOptions, vault *string) *cobra.Command {
	var cursor string
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Follow a vault's audit log as entries are written",
		Long: "Follow a vault's audit log live (Server-Sent Events) until interrupted.\n" +
			"With --output json each entry is printed as one JSON line.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "vault"); err != nil {
				return err
			}
			path := vaultPath(*vault, "/audit/stream")
			if cursor != "" {
				path += "?cursor=" + url.QueryEscape(cursor)
			}
			body, err := g.stream(cmd.Context(), path)
			if err != nil {
				return err
			}
			defer body.Close()
			return followEvents(body, g.printer(cmd))
		},
	}
	cmd.Flags().StringVar(&cursor, "cursor", "", "Start after this entry id instead of at the newest entry.")
	return cmd
}

// followEvents prints each "data:" line of an event stream.
func followEvents(r io.Reader, p printer) error {
	lines := bufio.NewScanner(r)
	lines.Buffer(make([]byte, 64<<10), 1<<20)
	if !p.json() {
		if err := table(p.w, auditHeader, nil); err != nil {
			return err
		}
	}
	for lines.Scan() {
		data, ok := strings.CutPrefix(lines.Text(), "data: ")
		if !ok {
			continue
		}
		if p.json() {
			fmt.Fprintln(p.w, data)
			continue
		}
		var e fsm.AuditEntry
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return fmt.Errorf("decode streamed entry: %w", err)
		}
		fmt.Fprintln(p.w, strings.Join(auditRow(e), "  "))
	}
	if err := lines.Err(); err != nil && cmdContextDone(err) {
		return nil
	}
	return lines.Err()
}

func cmdContextDone(err error) bool {
	return strings.Contains(err.Error(), "context canceled")
}

func newAuditExportCmd(g *globalOptions, vault *string) *cobra.Command {
	var (
		filters auditFilters
		format  string
		out     string
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write every matching audit entry as CSV or JSON lines",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "vault"); err != nil {
				return err
			}
			if format != "csv" && format != "jsonl" {
				return usageErrorf("--format %q is not csv or jsonl", format)
			}
			v := filters.values()
			v.Set("format", format)
			body, err := g.stream(cmd.Context(), vaultPath(*vault, "/audit/export?"+v.Encode()))
			if err != nil {
				return err
			}
			defer body.Close()
			return copyTo(cmd, out, body)
		},
	}
	filters.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&format, "format", "jsonl", "Output format: csv or jsonl.")
	cmd.Flags().StringVar(&out, "out", "", "File to write (created with mode 0600); default standard output.")
	return cmd
}

// copyTo copies r to the file out, or to the command's output.
func copyTo(cmd *cobra.Command, out string, r io.Reader) error {
	if out == "" {
		_, err := io.Copy(cmd.OutOrStdout(), r)
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create --out %s: %w", out, err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write --out %s: %w", out, err)
	}
	return f.Close()
}

func newAuditRetentionCmd(g *globalOptions, vault *string) *cobra.Command {
	return &cobra.Command{
		Use:   "retention DAYS",
		Short: "Set how many days the vault keeps audit entries (default 90)",
		Args:  exactArgs("DAYS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "vault"); err != nil {
				return err
			}
			days, err := strconv.Atoi(args[0])
			if err != nil || days < 1 {
				return usageErrorf("DAYS %q is not a whole number of days of at least 1", args[0])
			}
			c, err := g.adminClient(true)
			if err != nil {
				return err
			}
			var out alertSettings
			if err := c.Do(cmd.Context(), http.MethodPut, vaultPath(*vault, "/audit/retention"), map[string]int{"days": days}, &out); err != nil {
				return err
			}
			return g.printer(cmd).emit(out, func(w io.Writer) error { return printAlertSettings(w, out) })
		},
	}
}

// stream opens a long response (export or live tail) with the global
// address, token and CA file, without the per-call timeout, and returns
// its body; the caller closes it.
func (g *globalOptions) stream(ctx context.Context, path string) (io.ReadCloser, error) {
	token, err := g.readToken()
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, withHints(fmt.Errorf("this command needs an admin token"), "pass --token-file FILE, or set KEYWARD_TOKEN")
	}
	hc, err := g.streamClient()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(g.addr, "/")+path, nil)
	if err != nil {
		return nil, fmt.Errorf("build request for --addr %s: %w", g.addr, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("User-Agent", "keyward-cli")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var body struct {
			Error string `json:"error"`
		}
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(raw, &body) != nil || body.Error == "" {
			body.Error = strings.TrimSpace(string(raw))
		}
		return nil, fmt.Errorf("GET %s: %d %s: %s", path, resp.StatusCode, http.StatusText(resp.StatusCode), body.Error)
	}
	return resp.Body, nil
}

// streamClient is an HTTP client with the same TLS settings as the API
// client (--ca-file, --client-cert-file) but no overall timeout, because the
// caller's context ends a stream.
func (g *globalOptions) streamClient() (*http.Client, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if g.clientCertFile != "" {
		tlsConfig = clientCertTLS(g.clientCertFile, g.clientKeyFile)
	}
	if g.caFile != "" {
		pool, err := readCertPool("--ca-file", g.caFile)
		if err != nil {
			return nil, err
		}
		tlsConfig.RootCAs = pool
	}
	transport.TLSClientConfig = tlsConfig
	return &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}
