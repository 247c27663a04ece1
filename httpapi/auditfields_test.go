package httpapi

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

func TestAuditFieldsJSON_MatchesMapEncoding(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ev := AuditEvent{
			RequestID:  rapid.String().Draw(t, "requestId"),
			Method:     rapid.SampledFrom([]string{"GET", "POST"}).Draw(t, "method"),
			Path:       rapid.String().Draw(t, "path"),
			BodySHA256: rapid.SampledFrom([]string{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}).Draw(t, "body"),
			ProxyIP:    rapid.SampledFrom([]string{"", "10.0.0.1"}).Draw(t, "proxy"),
		}
		n := rapid.IntRange(0, 20).Draw(t, "fields")
		if n > 0 {
			ev.Fields = map[string]any{}
		}
		keys := []string{"version", "reason", "path", "requestId", "count", "observe", "zeta", "<&>"}
		for i := range n {
			key := rapid.SampledFrom(keys).Draw(t, "key") + fmt.Sprint(rapid.IntRange(0, 3).Draw(t, "suffix"))
			if rapid.Bool().Draw(t, "exact") {
				key = keys[i%len(keys)]
			}
			switch rapid.IntRange(0, 5).Draw(t, "kind") {
			case 0:
				ev.Fields[key] = rapid.String().Draw(t, "s")
			case 1:
				ev.Fields[key] = rapid.Int().Draw(t, "i")
			case 2:
				ev.Fields[key] = rapid.Int64().Draw(t, "i64")
			case 3:
				ev.Fields[key] = rapid.Uint64().Draw(t, "u64")
			case 4:
				ev.Fields[key] = rapid.Bool().Draw(t, "b")
			case 5:
				ev.Fields[key] = []AxisFailure{{Axis: "ip", Observed: "203.0.113.7", Reason: "not_in_allowlist"}}
			}
		}
		got, want := auditFieldsJSON(&ev), auditFieldsViaMap(&ev)
		if string(got) != string(want) {
			t.Fatalf("auditFieldsJSON = %s\nwant %s", got, want)
		}
	})
}

func TestAuditFieldsJSON_SecretReadAllocatesOnce(t *testing.T) {
	ev := AuditEvent{RequestID: "0f0e7f4e-6a0b-4c1d-9f2e-3a4b5c6d7e8f", Method: "GET", Path: "/v1/secret/sk_0123456789",
		BodySHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Fields: map[string]any{"version": 3}}
	want := `{"bodySha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","method":"GET",` +
		`"path":"/v1/secret/sk_0123456789","requestId":"0f0e7f4e-6a0b-4c1d-9f2e-3a4b5c6d7e8f","version":3}`
	if got := auditFieldsJSON(&ev); string(got) != want {
		t.Fatalf("auditFieldsJSON = %s, want %s", got, want)
	}
	allocs := testing.AllocsPerRun(50, func() { auditFieldsJSON(&ev) })
	if allocs > 1 {
		t.Errorf("encoding a secret read's fields allocated %.0f times, want only the output", allocs)
	}
}
