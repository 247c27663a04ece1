package fsm

import (
	"strings"
	"testing"
)

func TestRegister_KeyConflictHidesOwner(t *testing.T) {
	h := newHarness(t)
	const vault VaultID = "vault_0000000000000001"
	const owner MachineID = "11111111-1111-4111-8111-111111111111"
	const second MachineID = "22222222-2222-4222-8222-222222222222"
	h.setupVault(vault)
	h.setupMachine(vault, owner, TokenKindStandard, 9)
	h.setupToken(vault, "tok-second", TokenKindStandard, nil)

	r := h.expectReject(CmdRegisterMachine, RegisterMachinePayload{
		TokenHash: tokenHash("tok-second"), VaultID: vault, MachineID: second, PublicKey: publicKey(9), Hostname: "twin",
	}, ErrAlreadyExists)
	if strings.Contains(r.Message, string(owner)) {
		t.Errorf("message %q names the machine that owns the key", r.Message)
	}
	if !strings.Contains(r.Message, "another machine") {
		t.Errorf("message %q does not say the key belongs to another machine", r.Message)
	}
	if !strings.Contains(r.Message, "generate a new keypair") {
		t.Errorf("message %q does not tell the caller to generate a new keypair", r.Message)
	}
}
