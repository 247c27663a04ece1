package httpapi

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/uuid"
)

// TestAuthFailure_UnknownMachinesCoalesce sends signed requests with a
// fresh random machine id each, as a scan without credentials would, and
// checks that they fold into one audit entry per source address instead
// of one entry each, readable on the cluster-wide audit route.
func TestAuthFailure_UnknownMachinesCoalesce(t *testing.T) {
	const n = 200
	const src = "127.0.0.61"
	e := startRecordedEnv(t, recordedOptions{})
	_, key, _ := ed25519.GenerateKey(rand.Reader)

	first := uuid.NewString()
	for i := range n {
		id := first
		if i > 0 {
			id = uuid.NewString()
		}
		m := testMachine{id: id, key: key}
		expectStatus(t, e.signed(t, src, m, "GET", "/v1/secret/sk_0123456789", nil), http.StatusUnauthorized)
	}
	e.syncAudit(t)

	var total int64
	var fromSrc []int64
	for _, en := range e.entries(t, "", ActionAuthFailure) {
		if en.SourceIP != src {
			continue
		}
		fromSrc = append(fromSrc, en.Count)
		total += en.Count
		if en.MachineID != "" {
			t.Errorf("entry %d names machine %q; an unknown machine's id must stay out of the coalescing key", en.ID, en.MachineID)
		}
	}
	if total != n {
		t.Errorf("auth_failure counts from %s add up to %d, want %d", src, total, n)
	}
	if len(fromSrc) > 2 {
		t.Errorf("%d entries for %d unknown machines from one address, want them folded (counts %v)", len(fromSrc), n, fromSrc)
	}

	resp := e.admin(t, "GET", "/v1/admin/audit?action=auth_failure&sourceIp="+src, nil)
	expectStatus(t, resp, http.StatusOK)
	var page struct {
		Entries []struct {
			Count  int64          `json:"count"`
			Fields map[string]any `json:"fields"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(resp.body, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) == 0 {
		t.Fatal("the cluster-wide audit route returned no auth_failure entry")
	}
	last := page.Entries[len(page.Entries)-1] // newest first, so the last is the first written
	if last.Fields["claimedMachineId"] != first {
		t.Errorf("first entry fields %v, want claimedMachineId %s", last.Fields, first)
	}

	var scoped struct {
		Token string `json:"token"`
	}
	vault := e.newVault(t)
	e.adminOK(t, http.StatusCreated, "POST", "/v1/admin/tokens", map[string]any{
		"name": "vault auditor", "role": "auditor", "vaults": []string{vault},
	}, &scoped)
	expectStatus(t, e.adminAs(t, scoped.Token, "GET", "/v1/admin/audit", nil), http.StatusForbidden)
}
