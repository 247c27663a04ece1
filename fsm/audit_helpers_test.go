package fsm

import (
	"fmt"
	"testing"
)

// Webhook ids used across the tests.
const (
	webhookA  = "whk_aaaaaaaaaaaaaaaa"
	webhookA2 = "whk_aaaaaaaaaaaaaaa2"
)

// webhook returns a webhook with a sealed signing secret.
func (p *proposer) webhook(vault VaultID, id string, actions []string) Webhook {
	p.t.Helper()
	wrapped, err := p.keyring.NewProjectKey()
	if err != nil {
		p.t.Fatal(err)
	}
	sealed, err := p.keyring.Seal(wrapped, id, []byte("signing-secret-"+id))
	if err != nil {
		p.t.Fatal(err)
	}
	return Webhook{
		ID: id, VaultID: vault, URL: "https://hooks.example.com/" + id, Actions: actions,
		Enabled: true, Secret: sealed, WrappedKey: wrapped,
	}
}

// blockedEntry is a temp_machine_blocked entry as a node records it,
// folding count events that ended at now.
func blockedEntry(now int64, machine MachineID, count int64) AuditEntry {
	return AuditEntry{
		UUID:      fmt.Sprintf("00000000-0000-4000-8000-%012d", count),
		Action:    "temp_machine_blocked",
		Severity:  SeverityHigh,
		ActorKind: ActorMachine,
		ActorID:   string(machine),
		VaultID:   vaultA,
		MachineID: machine,
		SourceIP:  "198.51.100.7",
		Detail:    "ip 198.51.100.7 not_in_allowlist",
		Fields:    []byte(`{"axes":[{"axis":"ip","observed":"198.51.100.7","reason":"not_in_allowlist"}],"ip":"198.51.100.7"}`),
		Count:     count,
		FirstAt:   now - count*1000 + 1000,
		Timestamp: now,
		Node:      "node-1",
	}
}

// auditEntries returns every entry of vault, oldest first.
func auditEntries(t testing.TB, f *FSM, vault VaultID) []AuditEntry {
	t.Helper()
	page, err := f.QueryAudit(AuditQuery{VaultID: vault, Ascending: true, Limit: MaxAuditLimit})
	if err != nil {
		t.Fatalf("QueryAudit(%s): %v", vault, err)
	}
	return page.Entries
}

// actionsOf lists the actions of entries in order.
func actionsOf(entries []AuditEntry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Action
	}
	return out
}
