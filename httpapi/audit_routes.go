package httpapi

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/fsm"
)

// Audit streaming limits.
const (
	// auditHeartbeat is how often an idle live tail sends a comment line,
	// which keeps proxies from closing it and detects a departed client.
	auditHeartbeat = 15 * time.Second
	// auditStreamLife bounds one live tail; clients reconnect with
	// Last-Event-ID.
	auditStreamLife = time.Hour
	// auditExportLife bounds one export.
	auditExportLife = 30 * time.Minute
	// auditExportPage is the number of entries read per step of an export.
	auditExportPage = 1_000
)

var auditSeverities = []string{fsm.SeverityCritical, fsm.SeverityHigh, fsm.SeverityMedium, fsm.SeverityLow, fsm.SeverityInfo}

// auditPageView is the body of an audit query. NextCursor is null on the
// last page.
type auditPageView struct {
	Entries    []fsm.AuditEntry `json:"entries"`
	NextCursor *string          `json:"nextCursor"`
}

// queryAudit serves GET …/audit. The filters are action (comma-separated),
// severity, machineId, secretId, sourceIp, since and until (Unix
// milliseconds or RFC 3339) and q (text). Pages hold up to limit entries
// (1 to 1000, default 100) after cursor, newest first unless order=asc.
func (s *Server) queryAudit(rc *request, ac *adminCall) error {
	q, err := parseAuditQuery(rc.ctx.QueryArgs(), ac.vault.ID)
	if err != nil {
		return err
	}
	page, err := s.sm.QueryAudit(q)
	if err != nil {
		return err
	}
	view := auditPageView{Entries: page.Entries}
	if page.NextCursor != 0 {
		c := strconv.FormatUint(page.NextCursor, 10)
		view.NextCursor = &c
	}
	return writeOK(rc, view)
}

// querySystemAudit serves GET /v1/admin/audit: the entries that belong to
// no vault, such as cluster init, admin tokens scoped to every vault, and
// auth failures of unknown machines. Only a token scoped to every vault
// may read them, because they are about the whole cluster.
func (s *Server) querySystemAudit(rc *request, ac *adminCall) error {
	if !slices.Contains(ac.token.Vaults, allVaults) {
		return fail(ErrForbidden, "Cluster-wide audit entries need a token scoped to every vault (\"*\"); "+
			"use GET /v1/admin/vaults/{vaultId}/audit for a vault's entries")
	}
	q, err := parseAuditQuery(rc.ctx.QueryArgs(), "")
	if err != nil {
		return err
	}
	page, err := s.sm.QueryAudit(q)
	if err != nil {
		return err
	}
	view := auditPageView{Entries: page.Entries}
	if page.NextCursor != 0 {
		c := strconv.FormatUint(page.NextCursor, 10)
		view.NextCursor = &c
	}
	return writeOK(rc, view)
}

// parseAuditQuery reads the filters of the audit routes.
func parseAuditQuery(args *fasthttp.Args, vault fsm.VaultID) (fsm.AuditQuery, error) {
	q := fsm.AuditQuery{
		VaultID:   vault,
		Severity:  string(args.Peek("severity")),
		MachineID: fsm.MachineID(args.Peek("machineId")),
		SecretID:  fsm.SecretID(args.Peek("secretId")),
		SourceIP:  string(args.Peek("sourceIp")),
		Text:      string(args.Peek("q")),
	}
	if a := string(args.Peek("action")); a != "" {
		q.Actions = strings.Split(a, ",")
	}

	if q.Severity != "" && !slices.Contains(auditSeverities, q.Severity) {
		return q, fail(ErrBadRequest, "severity %q is not one of %s", clip(q.Severity), strings.Join(auditSeverities, ", "))
	}
	if len(q.Text) > 200 {
		return q, fail(ErrBadRequest, "q is %d bytes; search for at most 200", len(q.Text))
	}

	var err error
	if q.Since, err = parseAuditTime("since", args.Peek("since")); err != nil {
		return q, err
	}
	if q.Until, err = parseAuditTime("until", args.Peek("until")); err != nil {
		return q, err
	}
	if q.Limit, err = parseBoundedInt("limit", args.Peek("limit"), 1, fsm.MaxAuditLimit); err != nil {
		return q, err
	}
	if c := args.Peek("cursor"); len(c) > 0 {
		if q.Cursor, err = strconv.ParseUint(string(c), 10, 64); err != nil {
			return q, fail(ErrBadRequest, "cursor %q is not a nextCursor value from a previous page", clip(string(c)))
		}
	}
	switch order := string(args.Peek("order")); order {
	case "", "desc":
	case "asc":
		q.Ascending = true
	default:
		return q, fail(ErrBadRequest, "order %q is not asc or desc", clip(order))
	}
	return q, nil
}

// parseAuditTime accepts Unix milliseconds or RFC 3339; empty is zero.
func parseAuditTime(name string, raw []byte) (int64, error) {
	if len(raw) == 0 {
		return 0, nil
	}
	if ms, err := strconv.ParseInt(string(raw), 10, 64); err == nil && ms > 0 {
		return ms, nil
	}
	t, err := time.Parse(time.RFC3339, string(raw))
	if err != nil || t.UnixMilli() <= 0 {
		return 0, fail(ErrBadRequest, "%s %q is not Unix milliseconds or an RFC 3339 time such as 2026-01-02T15:04:05Z", name, clip(string(raw)))
	}
	return t.UnixMilli(), nil
}

func parseBoundedInt(name string, raw []byte, lo, hi int) (int, error) {
	if len(raw) == 0 {
		return 0, nil
	}
	n, err := strconv.Atoi(string(raw))
	if err != nil || n < lo || n > hi {
		return 0, fail(ErrBadRequest, "%s %q is not a whole number from %d to %d", name, clip(string(raw)), lo, hi)
	}
	return n, nil
}

// exportAudit serves GET …/audit/export?format=csv|jsonl with the query
// filters, streaming every matching entry oldest first (or newest first
// with order=desc).
func (s *Server) exportAudit(rc *request, ac *adminCall) error {
	args := rc.ctx.QueryArgs()
	q, err := parseAuditQuery(args, ac.vault.ID)
	if err != nil {
		return err
	}
	if len(args.Peek("order")) == 0 {
		q.Ascending = true
	}
	format := string(args.Peek("format"))
	var write func(w *bufio.Writer, entries []fsm.AuditEntry) error
	switch format {
	case "", "jsonl":
		format, write = "jsonl", writeJSONLines
		rc.ctx.SetContentType("application/x-ndjson")
	case "csv":
		write = newCSVWriter()
		rc.ctx.SetContentType("text/csv; charset=utf-8")
	default:
		return fail(ErrBadRequest, "format %q is not csv or jsonl", clip(format))
	}
	rc.ctx.Response.Header.Set("Content-Disposition",
		`attachment; filename="audit-`+string(ac.vault.ID)+`.`+format+`"`)
	_ = rc.ctx.SetWriteDeadline(time.Now().Add(auditExportLife))

	sm, logger := s.sm, s.logger
	q.Limit = auditExportPage
	rc.ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		for {
			page, err := sm.QueryAudit(q)
			if err != nil {
				logger.Error("audit export failed", "err", err)
				return
			}
			if write(w, page.Entries) != nil || w.Flush() != nil || page.NextCursor == 0 {
				return
			}
			q.Cursor = page.NextCursor
		}
	})
	return nil
}

func writeJSONLines(w *bufio.Writer, entries []fsm.AuditEntry) error {
	for i := range entries {
		line, err := json.Marshal(&entries[i])
		if err != nil {
			return err
		}
		w.Write(line)
		if err := w.WriteByte('\n'); err != nil {
			return err
		}
	}
	return nil
}

// csvColumns are the columns of a CSV export; fields is the JSON object.
var csvColumns = []string{
	"id", "uuid", "timestamp", "firstAt", "count", "action", "severity", "actorKind", "actorId",
	"vaultId", "machineId", "secretId", "sourceIp", "node", "detail", "fields",
}

// newCSVWriter returns a page writer that starts with the header row.
func newCSVWriter() func(w *bufio.Writer, entries []fsm.AuditEntry) error {
	header := true
	return func(w *bufio.Writer, entries []fsm.AuditEntry) error {
		cw := csv.NewWriter(w)
		if header {
			cw.Write(csvColumns)
			header = false
		}
		for _, e := range entries {
			cw.Write([]string{
				strconv.FormatUint(e.ID, 10), e.UUID,
				time.UnixMilli(e.Timestamp).UTC().Format(time.RFC3339Nano),
				time.UnixMilli(e.FirstAt).UTC().Format(time.RFC3339Nano),
				strconv.FormatInt(e.Count, 10), e.Action, e.Severity, e.ActorKind, csvSafe(e.ActorID),
				string(e.VaultID), csvSafe(string(e.MachineID)), csvSafe(string(e.SecretID)), csvSafe(e.SourceIP),
				e.Node, csvSafe(e.Detail), string(e.Fields),
			})
		}
		cw.Flush()
		return cw.Error()
	}
}

// csvSafe stops a spreadsheet from reading client-supplied text as a
// formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// streamAudit serves GET …/audit/stream: Server-Sent Events of the vault's
// new entries as this node applies them. Each event has the entry's
// sequence as its id; a client that reconnects with Last-Event-ID (or
// ?cursor=) resumes after it. Idle streams get a comment line every 15 s.
// The stream ends when the client goes away, after an hour, or when the
// server shuts down.
func (s *Server) streamAudit(rc *request, ac *adminCall) error {
	cursor := s.sm.AuditSeq()
	resume := string(rc.ctx.Request.Header.Peek("Last-Event-ID"))
	if resume == "" {
		resume = string(rc.ctx.QueryArgs().Peek("cursor"))
	}
	if resume != "" {
		c, err := strconv.ParseUint(resume, 10, 64)
		if err != nil {
			return fail(ErrBadRequest, "Last-Event-ID %q is not an entry id", clip(resume))
		}
		cursor = c
	}

	rc.ctx.SetContentType("text/event-stream")
	rc.ctx.Response.Header.Set("X-Accel-Buffering", "no")
	_ = rc.ctx.SetWriteDeadline(time.Now().Add(auditStreamLife + auditHeartbeat))
	tail := &auditTail{sm: s.sm, vault: ac.vault.ID, cursor: cursor, done: rc.ctx.Done(), end: time.Now().Add(auditStreamLife)}
	rc.ctx.SetBodyStreamWriter(tail.run)
	return nil
}

// auditTail writes one live tail. It holds no reference to the request,
// which fasthttp may reuse while the body streams.
type auditTail struct {
	sm     *fsm.FSM
	vault  fsm.VaultID
	cursor uint64
	done   <-chan struct{}
	end    time.Time
}

func (t *auditTail) run(w *bufio.Writer) {
	if _, err := w.WriteString(": keyward audit stream\n\n"); err != nil || w.Flush() != nil {
		return
	}
	heartbeat := time.NewTicker(auditHeartbeat)
	defer heartbeat.Stop()
	for time.Now().Before(t.end) {
		changed := t.sm.AuditChanged()
		if !t.send(w) {
			return
		}
		select {
		case <-changed:
		case <-heartbeat.C:
			if _, err := w.WriteString(": heartbeat\n\n"); err != nil || w.Flush() != nil {
				return
			}
		case <-t.done:
			return
		}
	}
}

// send writes every entry after the cursor; it reports whether the client
// is still there.
func (t *auditTail) send(w *bufio.Writer) bool {
	for {
		entries, err := t.sm.AuditAfter(t.vault, t.cursor, 500)
		if err != nil {
			return false
		}
		if len(entries) == 0 {
			return true
		}
		for i := range entries {
			data, _ := json.Marshal(&entries[i])
			w.WriteString("id: " + strconv.FormatUint(entries[i].ID, 10) + "\nevent: audit\ndata: ")
			w.Write(data)
			w.WriteString("\n\n")
			t.cursor = entries[i].ID
		}
		if w.Flush() != nil {
			return false
		}
	}
}

// alertSettingsView is the body of the alert routes.
type alertSettingsView struct {
	RetentionDays  int             `json:"retentionDays"`
	Email          fsm.EmailAlerts `json:"email"`
	ExpiryWarnings []string        `json:"expiryWarnings"`
}

func newAlertSettingsView(a *fsm.AlertSettings) alertSettingsView {
	v := alertSettingsView{RetentionDays: a.Retention(), Email: a.Email, ExpiryWarnings: []string{}}
	for _, o := range a.ExpiryWarnings {
		v.ExpiryWarnings = append(v.ExpiryWarnings, formatDurationMs(o))
	}
	return v
}

// formatDurationMs renders milliseconds as 7d, 1d, 12h or 30m.
func formatDurationMs(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	}
	return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
}

// getAlerts serves GET …/alerts.
func (s *Server) getAlerts(rc *request, ac *adminCall) error {
	a, err := s.sm.AlertSettings(ac.vault.ID)
	if err != nil {
		return err
	}
	return writeOK(rc, newAlertSettingsView(a))
}

// proposeAlerts applies an alert settings command and responds with the
// settings.
func (s *Server) proposeAlerts(rc *request, ac *adminCall, typ fsm.CommandType, payload any) error {
	a, err := s.applyAlerts(rc, ac, typ, payload)
	if err != nil {
		return err
	}
	return writeOK(rc, newAlertSettingsView(a))
}

// applyAlerts applies an alert settings command and returns the vault's
// settings after it.
func (s *Server) applyAlerts(rc *request, ac *adminCall, typ fsm.CommandType, payload any) (*fsm.AlertSettings, error) {
	resp, err := s.propose(rc, proposal{typ: typ, actor: ac.actor, payload: payload})
	if err != nil {
		return nil, err
	}
	var a fsm.AlertSettings
	if err := decodeResponse(resp, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// setAuditRetention serves PUT …/audit/retention {"days"}.
func (s *Server) setAuditRetention(rc *request, ac *adminCall) error {
	var in struct {
		Days int `json:"days"`
	}
	if err := decodeJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	if in.Days < 1 || in.Days > fsm.MaxAuditRetention {
		return fail(ErrBadRequest, "days %d is not between 1 and %d", in.Days, fsm.MaxAuditRetention)
	}
	return s.proposeAlerts(rc, ac, fsm.CmdSetAuditRetention, fsm.SetAuditRetentionPayload{VaultID: ac.vault.ID, Days: in.Days})
}

// setEmailAlerts serves PUT …/alerts/email {"to":[…],"actions":[…]}.
func (s *Server) setEmailAlerts(rc *request, ac *adminCall) error {
	var in struct {
		To      []string `json:"to"`
		Actions []string `json:"actions"`
	}
	if err := decodeJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	a, err := s.applyAlerts(rc, ac, fsm.CmdSetEmailAlerts, fsm.SetEmailAlertsPayload{
		VaultID: ac.vault.ID, Email: fsm.EmailAlerts{To: in.To, Actions: in.Actions},
	})
	if err != nil {
		return err
	}
	view := struct {
		alertSettingsView
		Warning string `json:"warning,omitempty"`
	}{alertSettingsView: newAlertSettingsView(a)}
	// The leader sends email, so this node's relay only hints at the
	// others'; the settings are stored either way.
	if len(in.To) > 0 && (s.cfg.Delivery == nil || !s.cfg.Delivery.EmailEnabled()) {
		view.Warning = "this node has no --smtp-addr; email alerts are sent by the leader, " +
			"so start every node that can become leader with --smtp-addr"
	}
	return writeOK(rc, view)
}

// setExpiryWarnings serves PUT …/alerts/expiry-warnings
// {"offsets":["7d","1d","1h"]}.
func (s *Server) setExpiryWarnings(rc *request, ac *adminCall) error {
	var in struct {
		Offsets []string `json:"offsets"`
	}
	if err := decodeJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	if len(in.Offsets) > fsm.MaxExpiryWarnings {
		return fail(ErrBadRequest, "%d offsets; give at most %d", len(in.Offsets), fsm.MaxExpiryWarnings)
	}
	offsets := make([]int64, 0, len(in.Offsets))
	for _, text := range in.Offsets {
		d, err := parseOffset(text)
		if err != nil {
			return err
		}
		offsets = append(offsets, d.Milliseconds())
	}
	return s.proposeAlerts(rc, ac, fsm.CmdSetExpiryWarnings, fsm.SetExpiryWarningsPayload{VaultID: ac.vault.ID, Offsets: offsets})
}

// parseOffset reads "7d", "36h", "30m" or a Go duration from 1 minute to
// 366 days, the range that the state machine accepts.
func parseOffset(text string) (time.Duration, error) {
	const minOffset, maxDays = time.Minute, 366
	outOfRange := fail(ErrBadRequest, "offset %q is out of range; use 1m to %dd", clip(text), maxDays)
	if days, ok := strings.CutSuffix(text, "d"); ok {
		n, err := strconv.Atoi(days)
		switch {
		case err == nil && (n < 1 || n > maxDays):
			return 0, outOfRange
		case err == nil:
			return time.Duration(n) * 24 * time.Hour, nil
		}
	} else if d, err := time.ParseDuration(text); err == nil {
		if d < minOffset || d > maxDays*24*time.Hour {
			return 0, outOfRange
		}
		return d, nil
	}
	return 0, fail(ErrBadRequest, "offset %q is not a duration such as 7d, 1d, 1h or 30m", clip(text))
}
