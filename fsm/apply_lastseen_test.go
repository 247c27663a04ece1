package fsm

import "testing"

func TestFSM_RecordLastSeen(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupMachine(vaultA, machine1, TokenKindStandard, 1)
	h.setupMachine(vaultA, machine2, TokenKindStandard, 2)

	first := h.now - 5000
	h.mustApply(CmdRecordLastSeen, RecordLastSeenPayload{Entries: []LastSeen{
		{MachineID: machine1, At: first, IP: "203.0.113.7"},
		{MachineID: machine3, At: first, IP: "203.0.113.8"}, // unknown: skipped
	}}, nil)
	if m := h.machine(machine1); m.LastSeenAt != first || m.LastSeenIP != "203.0.113.7" {
		t.Fatalf("machine1 last seen %d from %q, want %d from 203.0.113.7", m.LastSeenAt, m.LastSeenIP, first)
	}
	if m := h.machine(machine2); m.LastSeenAt != 0 {
		t.Fatalf("machine2 last seen %d, want 0 (never reported)", m.LastSeenAt)
	}

	// An older report from another node arrives later and is skipped.
	h.mustApply(CmdRecordLastSeen, RecordLastSeenPayload{Entries: []LastSeen{
		{MachineID: machine1, At: first - 1000, IP: "198.51.100.1"},
	}}, nil)
	if m := h.machine(machine1); m.LastSeenAt != first || m.LastSeenIP != "203.0.113.7" {
		t.Fatalf("an older report replaced the newer one: %d from %q", m.LastSeenAt, m.LastSeenIP)
	}

	cases := []struct {
		name  string
		entry LastSeen
	}{
		{"bad ip", LastSeen{MachineID: machine1, At: first, IP: "not-an-ip"}},
		{"zero time", LastSeen{MachineID: machine1, At: 0, IP: "203.0.113.7"}},
		{"far future", LastSeen{MachineID: machine1, At: h.now + 2*lastSeenFutureSlack, IP: "203.0.113.7"}},
		{"bad machine id", LastSeen{MachineID: "nope", At: first, IP: "203.0.113.7"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.expectReject(CmdRecordLastSeen, RecordLastSeenPayload{Entries: []LastSeen{tc.entry}}, ErrInvalid)
		})
	}
	h.expectReject(CmdRecordLastSeen, RecordLastSeenPayload{Entries: make([]LastSeen, MaxLastSeenBatch+1)}, ErrInvalid)
}
