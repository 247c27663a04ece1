package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestAudit_EveryCommandHasAuditRow(t *testing.T) {
	for typ := range handlers {
		if _, ok := auditors[typ]; !ok {
			t.Errorf("command type %q has no row in auditors; add its audit entry or a nil row", typ)
		}
	}
	for typ := range auditors {
		if _, ok := handlers[typ]; !ok {
			t.Errorf("auditors has a row for %q, which has no handler", typ)
		}
	}
}

// TestAudit_CommandsWriteTheirEntries applies the full scenario and checks
// that every state change left its entry, in log order, with a gapless
// cluster-wide sequence.
func TestAudit_CommandsWriteTheirEntries(t *testing.T) {
	f := openFSM(t, t.TempDir(), nil)
	defer f.Close()
	// Compaction would remove the oldest entries this test counts.
	logs := slices.DeleteFunc(scenario(newProposer(t)), func(l *raft.Log) bool {
		cmd, err := DecodeCommand(l.Data)
		return err == nil && cmd.Type == CmdAuditCompact
	})
	applyAll(t, f, logs)

	all, err := f.AuditAfter("", 0, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	if f.AuditSeq() != all[len(all)-1].ID {
		t.Fatalf("AuditSeq %d, last entry %d", f.AuditSeq(), all[len(all)-1].ID)
	}
	counts := map[string]int{}
	for _, e := range all {
		counts[e.Action]++
		if e.UUID == "" || e.Count < 1 || e.Timestamp == 0 {
			t.Errorf("entry %d is incomplete: %+v", e.ID, e)
		}
	}

	want := map[string]int{
		"cluster_init": 1, "vault_create": 2, "admin_token_create": 1, "vault_allowlist_update": 1,
		"project_create": 2, "secret_create": 3, "secret_update": 2,
		"bootstrap_token_create": 2, "temp_bootstrap_token_create": 2, "bootstrap_token_revoke": 1,
		"machine_register": 1, "temp_machine_create": 2, "machine_approve": 3, "machine_deny": 0,
		"machine_project_attach": 2, "machine_project_detach": 1, "permission_grant": 2,
		"temp_machine_guardrails_update": 1, "machine_disable": 1,
		"temp_machine_extend": 3, "temp_machine_extend_revert": 2, "temp_machine_expire": 1,
		"machine_revoke": 1, "machine_purge": 1,
		"webhook_create": 2, "webhook_update": 1, "webhook_delete": 1, "webhook_delivery_failed": 1,
		"audit_retention_update": 1, "alert_email_update": 1, "alert_expiry_warnings_update": 1,
		"temp_machine_expiry_warning": 1, "temp_machine_blocked": 2,
	}
	for action, n := range want {
		if counts[action] != n {
			t.Errorf("%s: %d entries, want %d", action, counts[action], n)
		}
	}
}

func TestAudit_ExpireWrittenOncePerMachine(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	m1 := h.setupActiveTemp(vaultA, machine1, 1)
	h.setupActiveTemp(vaultA, machine2, 2)
	h.now = m1.ExpiresAt + 1

	sweep := ExpireMachinesPayload{MachineIDs: []MachineID{machine1, machine2}}
	for range 3 {
		h.mustApply(CmdExpireMachines, sweep, nil)
	}
	h.p().actor = Actor{Kind: ActorSystem, ID: "expiry-sweep"}

	var expired []AuditEntry
	for _, e := range auditEntries(t, h.f, vaultA) {
		if e.Action == "temp_machine_expire" {
			expired = append(expired, e)
		}
	}
	if len(expired) != 2 {
		t.Fatalf("%d expire entries, want one per machine: %+v", len(expired), expired)
	}
	for _, e := range expired {
		if e.MachineID != machine1 && e.MachineID != machine2 {
			t.Errorf("expire entry for %s", e.MachineID)
		}
	}
}

// p returns the harness's proposer, for tests that change the actor.
func (h *harness) p() *proposer { return h.proposer }

func TestAudit_AppendAssignsSequenceAndRejectsWholeBatch(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	start := h.f.AuditSeq()

	good := blockedEntry(h.now, machine1, 3)
	bad := blockedEntry(h.now, machine1, 1)
	bad.Severity = "urgent"
	h.expectReject(CmdAuditAppend, AuditAppendPayload{Entries: []AuditEntry{good, bad}}, ErrInvalid)
	if h.f.AuditSeq() != start {
		t.Fatalf("a rejected batch moved the sequence from %d to %d", start, h.f.AuditSeq())
	}

	h.mustApply(CmdAuditAppend, AuditAppendPayload{Entries: []AuditEntry{good, good}}, nil)
	entries := auditEntries(t, h.f, vaultA)
	last := entries[len(entries)-2:]
	if last[0].ID != start+1 || last[1].ID != start+2 {
		t.Fatalf("ids %d, %d; want %d, %d", last[0].ID, last[1].ID, start+1, start+2)
	}
	if last[0].Count != 3 || last[0].FirstAt != good.FirstAt || string(last[0].Fields) != string(good.Fields) {
		t.Fatalf("stored entry %+v differs from the appended one", last[0])
	}
}

func TestAudit_EntryValidation(t *testing.T) {
	cases := map[string]func(e *AuditEntry){
		"id set":            func(e *AuditEntry) { e.ID = 7 },
		"action upper case": func(e *AuditEntry) { e.Action = "Secret_Read" },
		"unknown actor":     func(e *AuditEntry) { e.ActorKind = "robot" },
		"bad vault":         func(e *AuditEntry) { e.VaultID = "vault_x" },
		"space in source":   func(e *AuditEntry) { e.SourceIP = "1.2.3.4 " },
		"fields not object": func(e *AuditEntry) { e.Fields = []byte(`[1]`) },
		"zero count":        func(e *AuditEntry) { e.Count = 0 },
		"firstAt after":     func(e *AuditEntry) { e.FirstAt = e.Timestamp + 1 },
		"bad uuid":          func(e *AuditEntry) { e.UUID = "not-a-uuid" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			e := blockedEntry(ms(baseTime), machine1, 2)
			if err := e.Validate(); err != nil {
				t.Fatalf("valid entry rejected: %v", err)
			}
			mutate(&e)
			if err := e.Validate(); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid", err)
			}
		})
	}
}

// queryFixture appends ten entries to vault A: even ones blocked from
// 198.51.100.7 for machine 1, odd ones secret reads of secret A by machine
// 2, one second apart.
func queryFixture(t *testing.T) (*harness, []uint64) {
	h := newHarness(t)
	h.setupVault(vaultA)
	var batch []AuditEntry
	for i := range 10 {
		e := blockedEntry(h.now+int64(i)*1000, machine1, 1)
		e.UUID = ""
		if i%2 == 1 {
			e.Action, e.Severity, e.MachineID, e.SecretID = "secret_read", SeverityInfo, machine2, secA
			e.SourceIP, e.Detail, e.Fields = "203.0.113.9", "read db password", []byte(`{"name":"DB"}`)
		}
		batch = append(batch, e)
	}
	h.mustApply(CmdAuditAppend, AuditAppendPayload{Entries: batch}, nil)
	var ids []uint64
	for _, e := range auditEntries(t, h.f, vaultA) {
		if e.Action == "temp_machine_blocked" || e.Action == "secret_read" {
			ids = append(ids, e.ID)
		}
	}
	return h, ids
}

func TestAudit_QueryFilters(t *testing.T) {
	h, ids := queryFixture(t)
	cases := []struct {
		name string
		q    AuditQuery
		want []uint64 // newest first
	}{
		{"action", AuditQuery{Actions: []string{"secret_read"}}, []uint64{ids[9], ids[7], ids[5], ids[3], ids[1]}},
		{"severity", AuditQuery{Severity: SeverityHigh, Limit: 2}, []uint64{ids[8], ids[6]}},
		{"machine", AuditQuery{MachineID: machine1, Since: h.now + 6000}, []uint64{ids[8], ids[6]}},
		{"secret", AuditQuery{SecretID: secA, Until: h.now + 3000}, []uint64{ids[3], ids[1]}},
		{"source", AuditQuery{SourceIP: "203.0.113.9", Since: h.now + 8000}, []uint64{ids[9]}},
		{"text in detail", AuditQuery{Text: "DB PASSWORD", Until: h.now + 1000}, []uint64{ids[1]}},
		{"text in fields", AuditQuery{Text: "not_in_allowlist", Until: h.now + 2000}, []uint64{ids[2], ids[0]}},
		{"none", AuditQuery{Actions: []string{"machine_purge"}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.VaultID = vaultA
			page, err := h.f.QueryAudit(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, e := range page.Entries {
				got = append(got, e.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("ids %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAudit_CursorPagination(t *testing.T) {
	h, _ := queryFixture(t)
	all := auditEntries(t, h.f, vaultA)
	for _, ascending := range []bool{false, true} {
		t.Run(fmt.Sprintf("ascending=%v", ascending), func(t *testing.T) {
			var got []uint64
			q := AuditQuery{VaultID: vaultA, Limit: 3, Ascending: ascending}
			for pages := 0; ; pages++ {
				if pages > len(all) {
					t.Fatal("pagination does not end")
				}
				page, err := h.f.QueryAudit(q)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range page.Entries {
					got = append(got, e.ID)
				}
				if page.NextCursor == 0 {
					break
				}
				q.Cursor = page.NextCursor
			}
			want := make([]uint64, len(all))
			for i, e := range all {
				want[i] = e.ID
			}
			if !ascending {
				slices.Reverse(want)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("pages gave %v, want %v", got, want)
			}
		})
	}
}

func TestAudit_QueryScanBoundEndsPageWithCursor(t *testing.T) {
	h, ids := queryFixture(t)
	page, err := h.f.QueryAudit(AuditQuery{VaultID: vaultA, Actions: []string{"vault_create"}, MaxScan: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 0 || page.NextCursor != ids[6] {
		t.Fatalf("page %+v, want no entries and cursor %d", page, ids[6])
	}
	page, err = h.f.QueryAudit(AuditQuery{VaultID: vaultA, Actions: []string{"vault_create"}, Cursor: page.NextCursor})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 1 || page.NextCursor != 0 {
		t.Fatalf("second page %+v, want the vault_create entry and no cursor", page)
	}
}

func TestAudit_CompactionRespectsRetention(t *testing.T) {
	day := int64(24 * time.Hour / time.Millisecond)
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupVault(vaultB)
	h.mustApply(CmdSetAuditRetention, SetAuditRetentionPayload{VaultID: vaultA, Days: 10}, nil)
	start := h.now
	for i := range 5 {
		e := blockedEntry(start+int64(i)*day, machine1, 1)
		e.UUID = ""
		h.mustApply(CmdAuditAppend, AuditAppendPayload{Entries: []AuditEntry{e}}, nil)
	}
	before := len(auditEntries(t, h.f, vaultA))

	// 12.5 days later the vault's creation, the retention change and the
	// entries of days 0 to 2 are past ten days; those of days 3 and 4 are
	// not.
	h.now = start + 12*day + day/2
	var res AuditCompactResult
	h.mustApply(CmdAuditCompact, AuditCompactPayload{VaultID: vaultA, Max: 2}, &res)
	if res.Deleted != 2 || !res.More {
		t.Fatalf("first compaction %+v, want 2 deleted and more", res)
	}
	h.mustApply(CmdAuditCompact, AuditCompactPayload{VaultID: vaultA}, &res)
	if res.Deleted != 3 || res.More {
		t.Fatalf("second compaction %+v, want 3 deleted and no more", res)
	}

	after := auditEntries(t, h.f, vaultA)
	for _, e := range after {
		if e.Action != "audit_compact" && e.Timestamp < h.now-10*day {
			t.Errorf("entry %d at %s survived a 10-day retention", e.ID, formatMs(e.Timestamp))
		}
	}
	// Five removed, two compaction entries added.
	if len(after) != before-5+2 {
		t.Fatalf("%d entries after compaction, want %d", len(after), before-3)
	}
	if len(auditEntries(t, h.f, vaultB)) != 1 {
		t.Fatal("compacting vault A touched vault B")
	}
}

func TestAudit_ExpiryWarningWrittenOnce(t *testing.T) {
	hour := int64(time.Hour / time.Millisecond)
	h := newHarness(t)
	h.setupVault(vaultA)
	m := h.setupActiveTemp(vaultA, machine1, 1)
	h.mustApply(CmdSetExpiryWarnings, SetExpiryWarningsPayload{VaultID: vaultA, Offsets: []int64{hour, 24 * hour}}, nil)
	warn := ExpiryWarningPayload{VaultID: vaultA, MachineID: machine1, OffsetMs: 24 * hour, ExpiresAt: m.ExpiresAt}

	h.now = m.ExpiresAt - 25*hour
	h.expectReject(CmdExpiryWarning, warn, ErrNotAllowed)

	h.now = m.ExpiresAt - 23*hour
	var res ExpiryWarningResult
	h.mustApply(CmdExpiryWarning, warn, &res)
	if !res.Written {
		t.Fatal("first warning not written")
	}
	h.mustApply(CmdExpiryWarning, warn, &res)
	if res.Written {
		t.Fatal("second warning for the same offset written")
	}
	h.expectReject(CmdExpiryWarning, ExpiryWarningPayload{VaultID: vaultA, MachineID: machine1, OffsetMs: 2 * hour, ExpiresAt: m.ExpiresAt}, ErrNotFound)
	h.expectReject(CmdExpiryWarning, ExpiryWarningPayload{VaultID: vaultA, MachineID: machine1, OffsetMs: hour, ExpiresAt: m.ExpiresAt + 1}, ErrConflict)

	n := 0
	for _, e := range auditEntries(t, h.f, vaultA) {
		if e.Action == "temp_machine_expiry_warning" {
			n++
			var fields map[string]any
			if err := json.Unmarshal(e.Fields, &fields); err != nil || fields["offset"] != "1d" {
				t.Errorf("warning fields %s", e.Fields)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d warning entries, want 1", n)
	}
}

func deliveryBatch(w string, cursor uint64, seqs []uint64, status string) RecordDeliveriesPayload {
	p := RecordDeliveriesPayload{VaultID: vaultA, WebhookID: w, Cursor: cursor, DisableAfter: 3}
	for _, s := range seqs {
		p.Records = append(p.Records, DeliveryRecord{
			DeliveryID: fmt.Sprintf("%s-%d", w, s), WebhookID: w, Seq: s, Event: "temp_machine_blocked",
			Status: status, Attempts: 2, StatusCode: 500, Error: "HTTP 500", DurationMs: 3,
		})
	}
	return p
}

func TestAudit_WebhookFailuresDisableOnce(t *testing.T) {
	h, ids := queryFixture(t)
	h.mustApply(CmdCreateWebhook, CreateWebhookPayload{Webhook: h.webhook(vaultA, webhookA, []string{"*"})}, nil)
	e := blockedEntry(h.now, machine1, 1)
	e.UUID = ""
	h.mustApply(CmdAuditAppend, AuditAppendPayload{Entries: []AuditEntry{e, e, e, e}}, nil)
	last := h.f.AuditSeq()
	_ = ids

	var w Webhook
	h.mustApply(CmdRecordDeliveries, deliveryBatch(webhookA, last-2, []uint64{last - 3, last - 2}, DeliveryFailed), &w)
	if !w.Enabled || w.ConsecutiveFailures != 2 {
		t.Fatalf("after two failures: %+v", w)
	}
	// The same batch again (a new leader resending it) counts nothing.
	h.mustApply(CmdRecordDeliveries, deliveryBatch(webhookA, last-2, []uint64{last - 3, last - 2}, DeliveryFailed), &w)
	if w.ConsecutiveFailures != 2 || w.Failed != 2 {
		t.Fatalf("repeated batch counted again: %+v", w)
	}
	h.mustApply(CmdRecordDeliveries, deliveryBatch(webhookA, last, []uint64{last - 1, last}, DeliveryFailed), &w)
	if w.Enabled || w.DisabledAt != h.now || w.Cursor != last {
		t.Fatalf("after four failures: %+v", w)
	}

	entries := auditEntries(t, h.f, vaultA)
	if got := actionsOf(entries); slices.Index(got, "webhook_disabled") < 0 || countOf(got, "webhook_disabled") != 1 {
		t.Fatalf("actions %v, want one webhook_disabled", got)
	}
	if countOf(actionsOf(entries), "webhook_delivery_failed") != 4 {
		t.Fatalf("want four webhook_delivery_failed entries")
	}
	recs, err := h.f.Deliveries(webhookA, 10)
	if err != nil || len(recs) != 4 || recs[0].Seq != last {
		t.Fatalf("delivery log %+v, %v", recs, err)
	}
}

func countOf(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

func TestAudit_DeliveryLogIsBounded(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.mustApply(CmdCreateWebhook, CreateWebhookPayload{Webhook: h.webhook(vaultA, webhookA, []string{"*"})}, nil)
	var batch []AuditEntry
	for range MaxAuditBatch {
		e := blockedEntry(h.now, machine1, 1)
		e.UUID = ""
		batch = append(batch, e)
	}
	h.mustApply(CmdAuditAppend, AuditAppendPayload{Entries: batch}, nil)
	h.mustApply(CmdAuditAppend, AuditAppendPayload{Entries: batch[:300]}, nil)
	first := h.f.AuditSeq() - 1300 + 1

	for _, span := range [][2]uint64{{first, first + 699}, {first + 700, first + 1299}} {
		var seqs []uint64
		for s := span[0]; s <= span[1]; s++ {
			seqs = append(seqs, s)
		}
		h.mustApply(CmdRecordDeliveries, deliveryBatch(webhookA, span[1], seqs, DeliveryDelivered), nil)
	}
	recs, err := h.f.Deliveries(webhookA, 2*MaxDeliveryLog)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != MaxDeliveryLog || recs[len(recs)-1].Seq != first+300 {
		t.Fatalf("%d records kept, oldest %d; want %d, oldest %d", len(recs), recs[len(recs)-1].Seq, MaxDeliveryLog, first+300)
	}
}

func TestAudit_RestoreKeepsSequenceAndWakesReaders(t *testing.T) {
	src := newHarness(t)
	src.setupVault(vaultA)
	stream := takeSnapshot(t, src.f)
	seq := src.f.AuditSeq()

	dst := newHarness(t)
	dst.setupVault(vaultB)
	dst.setupVault(vaultA)
	changed := dst.f.AuditChanged()
	if err := restore(dst.f, stream); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("restore did not wake audit readers")
	}
	if dst.f.AuditSeq() != seq {
		t.Fatalf("AuditSeq %d after restore, want %d", dst.f.AuditSeq(), seq)
	}

	changed = dst.f.AuditChanged()
	dst.index = dst.f.AppliedIndex()
	dst.mustApply(CmdSetAuditRetention, SetAuditRetentionPayload{VaultID: vaultA, Days: 7}, nil)
	select {
	case <-changed:
	default:
		t.Fatal("a commit with an entry did not wake audit readers")
	}
	if dst.f.AuditSeq() != seq+1 {
		t.Fatalf("AuditSeq %d after one more entry, want %d", dst.f.AuditSeq(), seq+1)
	}
}

func TestAudit_SettingsValidation(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	cases := []struct {
		name    string
		typ     CommandType
		payload any
		want    error
	}{
		{"retention zero", CmdSetAuditRetention, SetAuditRetentionPayload{VaultID: vaultA}, ErrInvalid},
		{"retention unknown vault", CmdSetAuditRetention, SetAuditRetentionPayload{VaultID: vaultB, Days: 5}, ErrNotFound},
		{"recipient with name", CmdSetEmailAlerts, SetEmailAlertsPayload{VaultID: vaultA, Email: EmailAlerts{To: []string{"Ops <ops@example.com>"}}}, ErrInvalid},
		{"recipient header injection", CmdSetEmailAlerts, SetEmailAlertsPayload{VaultID: vaultA, Email: EmailAlerts{To: []string{"a@example.com\r\nBcc: x@example.com"}}}, ErrInvalid},
		{"bad action", CmdSetEmailAlerts, SetEmailAlertsPayload{VaultID: vaultA, Email: EmailAlerts{Actions: []string{"Blocked!"}}}, ErrInvalid},
		{"offset too small", CmdSetExpiryWarnings, SetExpiryWarningsPayload{VaultID: vaultA, Offsets: []int64{1000}}, ErrInvalid},
		{"webhook ftp", CmdCreateWebhook, CreateWebhookPayload{Webhook: func() Webhook {
			w := h.webhook(vaultA, webhookA, nil)
			w.URL = "ftp://example.com/x"
			return w
		}()}, ErrInvalid},
		{"webhook credentials", CmdCreateWebhook, CreateWebhookPayload{Webhook: func() Webhook {
			w := h.webhook(vaultA, webhookA, nil)
			w.URL = "https://user:pw@example.com/x"
			return w
		}()}, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.expectReject(tc.typ, tc.payload, tc.want)
		})
	}
}

func TestAlertActions_RejectUnknown(t *testing.T) {
	if err := checkActions([]string{"temp_machine_blocked", "*"}); err != nil {
		t.Fatalf("known actions rejected: %v", err)
	}
	err := checkActions([]string{"temp_machine_blokced"})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("a misspelt action gave %v, want ErrInvalid", err)
	}
	if !strings.Contains(err.Error(), "temp_machine_blocked") {
		t.Errorf("error %q does not suggest temp_machine_blocked", err)
	}
}
