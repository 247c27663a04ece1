package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestCodec_RoundTrip(t *testing.T) {
	cmd, err := NewCommand(CmdCreateVault, 1_700_000_000_000, Actor{Kind: "user", ID: "tok_x", SourceIP: "192.0.2.1"}, CreateVaultPayload{ID: vaultA, Name: "v"})
	if err != nil {
		t.Fatal(err)
	}
	cmd.RequestID = "r-1"
	cmd.Node = "node-2"

	b, err := EncodeCommand(cmd)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeCommand(b)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := EncodeCommand(got)
	if !bytes.Equal(b, again) {
		t.Fatalf("re-encoding differs:\n%s\n%s", b, again)
	}
	if got.Type != CmdCreateVault || got.RequestID != "r-1" || got.Actor.ID != "tok_x" || got.Time != cmd.Time {
		t.Fatalf("decoded %+v", got)
	}
}

func TestCodec_Rejects(t *testing.T) {
	cases := []struct {
		name string
		data string
	}{
		{"empty", ""},
		{"not json", "{"},
		{"array", "[]"},
		{"no type", `{"time":1,"payload":{}}`},
		{"no time", `{"type":"vault.create","payload":{}}`},
		{"negative time", `{"type":"vault.create","time":-5,"payload":{}}`},
		{"trailing data", `{"type":"vault.create","time":1,"payload":{}} {}`},
		{"long request id", `{"type":"vault.create","time":1,"requestId":"` + strings.Repeat("r", MaxRequestIDBytes+1) + `"}`},
		{"oversized", `{"type":"vault.create","time":1,"payload":"` + strings.Repeat("x", MaxCommandBytes) + `"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeCommand([]byte(tc.data)); !errors.Is(err, ErrInvalid) {
				t.Fatalf("DecodeCommand error = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := EncodeCommand(nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("EncodeCommand(nil) error = %v", err)
	}
	if _, err := EncodeCommand(&Command{Type: CmdInit}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("EncodeCommand without time error = %v", err)
	}
}

func TestCodec_PayloadStrict(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name    string
		payload json.RawMessage
	}{
		{"unknown field", json.RawMessage(`{"id":"vault_aaaaaaaaaaaaaaaa","name":"v","nmae":"typo"}`)},
		{"wrong type", json.RawMessage(`{"id":7,"name":"v"}`)},
		{"missing", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := &Command{Type: CmdCreateVault, Time: h.now, Payload: tc.payload}
			data, err := EncodeCommand(cmd)
			if err != nil {
				t.Fatal(err)
			}
			h.index++
			r := asResponse(t, h.f.Apply(raftCommand(h.index, data)))
			if r.Code != CodeInvalid {
				t.Fatalf("code %q, want invalid", r.Code)
			}
		})
	}
}

func TestErrors_CodeRoundTrip(t *testing.T) {
	for _, ec := range errorCodes {
		err := ErrorFromCode(ec.code, "detail")
		if !errors.Is(err, ec.err) {
			t.Errorf("ErrorFromCode(%q) = %v, want %v", ec.code, err, ec.err)
		}
		if err.Error() != "detail" {
			t.Errorf("message = %q, want the detail", err.Error())
		}
		if codeOf(rejectf(ec.err, "x")) != ec.code {
			t.Errorf("codeOf does not return %q", ec.code)
		}
	}
	if ErrorFromCode("", "") != nil {
		t.Error("empty code is not nil")
	}
	if err := ErrorFromCode("from_the_future", "m"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "from_the_future") {
		t.Errorf("unknown code error = %v", err)
	}
	var nilResp *Response
	if nilResp.Err() != nil || (&Response{Body: []byte("{}")}).Err() != nil {
		t.Error("success responses carry an error")
	}
	if err := (&Response{Code: CodeOverCap, Message: "over"}).Err(); !errors.Is(err, ErrOverCap) {
		t.Errorf("Response.Err = %v", err)
	}
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add([]byte(`{"type":"vault.create","time":1,"payload":{"id":"vault_aaaaaaaaaaaaaaaa","name":"v"}}`))
	f.Add([]byte(`{"type":"machine.extend","time":1700000000000,"requestId":"r","payload":{}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, err := DecodeCommand(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if _, err := EncodeCommand(cmd); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

func TestCodec_EveryCommandHasHandler(t *testing.T) {
	all := []CommandType{
		CmdInit, CmdCreateAdminToken, CmdCreateVault, CmdSetVaultAllowlist, CmdCreateProject,
		CmdCreateSecret, CmdUpdateSecret, CmdCreateBootstrapToken, CmdRevokeBootstrapToken,
		CmdRegisterMachine, CmdSetMachineStatus, CmdAttachProject, CmdDetachProject, CmdSetGrants,
		CmdExtendMachine, CmdRevertExtension, CmdSetGuardrails, CmdExpireMachines, CmdPurgeMachine,
		CmdAuditAppend, CmdAuditCompact, CmdSetAuditRetention, CmdSetEmailAlerts, CmdSetExpiryWarnings,
		CmdEmailDelivered, CmdExpiryWarning, CmdCreateWebhook, CmdUpdateWebhook, CmdDeleteWebhook,
		CmdRecordDeliveries, CmdRenameMachine, CmdRevokeAdminToken, CmdDeleteSecret, CmdRecordLastSeen,
	}
	for _, typ := range all {
		if _, ok := handlers[typ]; !ok {
			t.Errorf("command type %q has no handler", typ)
		}
	}
	if len(handlers) != len(all) {
		t.Errorf("%d handlers for %d command types; update this list", len(handlers), len(all))
	}
}
