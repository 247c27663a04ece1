package httpapi

import (
	"context"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

func TestLastSeen_RecordedThroughRaft(t *testing.T) {
	e := sharedEnv(t)
	f, m := e.readyMachine(t)
	if v := e.machine(t, m); v.LastSeenAt != 0 {
		t.Fatalf("lastSeenAt = %d before any signed request, want 0", v.LastSeenAt)
	}

	before := time.Now().UnixMilli()
	expectStatus(t, e.signed(t, defaultSource, m, "GET", "/v1/secret/"+f.secret, nil), http.StatusOK)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.srv.flushLastSeen(ctx)

	v := e.machine(t, m)
	if v.LastSeenAt < before-1000 {
		t.Errorf("lastSeenAt = %d, want at or after the request (%d)", v.LastSeenAt, before)
	}
	if v.LastSeenIP != defaultSource {
		t.Errorf("lastSeenIp = %q, want %q", v.LastSeenIP, defaultSource)
	}

	// A rejected request does not count as seen.
	other := e.newMachine(t, f.vault)
	expectStatus(t, e.signed(t, defaultSource, other, "GET", "/v1/secret/"+f.secret, nil), http.StatusForbidden)
	e.srv.flushLastSeen(ctx)
	if v := e.machine(t, other); v.LastSeenAt != 0 {
		t.Errorf("pending machine lastSeenAt = %d after a rejected request, want 0", v.LastSeenAt)
	}
}

func TestLastSeenTracker_KeepsLatest(t *testing.T) {
	tr := newLastSeenTracker()
	ip1, ip2 := mustAddr(t, "203.0.113.1"), mustAddr(t, "203.0.113.2")
	tr.record("b-machine", 2000, ip2)
	tr.record("a-machine", 1000, ip1)
	tr.record("a-machine", 3000, ip2)
	tr.record("a-machine", 2500, ip1) // older than the stored one

	got := tr.drain()
	if len(got) != 2 {
		t.Fatalf("drained %d entries, want 2", len(got))
	}
	if got[0].MachineID != "a-machine" || got[0].At != 3000 || got[0].IP != "203.0.113.2" {
		t.Errorf("first entry = %+v, want a-machine at 3000 from 203.0.113.2", got[0])
	}
	if got[1].MachineID != "b-machine" {
		t.Errorf("second entry = %+v, want b-machine (sorted by id)", got[1])
	}
	if again := tr.drain(); len(again) != 0 {
		t.Errorf("a second drain returned %d entries, want 0", len(again))
	}
}

func mustAddr(t *testing.T, text string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(text)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
