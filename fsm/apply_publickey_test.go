package fsm

import "testing"

func TestRegister_PublicKeyBelongsToOneMachine(t *testing.T) {
	h := newHarness(t)
	const vault VaultID = "vault_0000000000000001"
	const first MachineID = "11111111-1111-4111-8111-111111111111"
	const second MachineID = "22222222-2222-4222-8222-222222222222"
	h.setupVault(vault)
	h.setupMachine(vault, first, TokenKindStandard, 7)

	h.setupToken(vault, "tok-second", TokenKindStandard, nil)
	register := RegisterMachinePayload{
		TokenHash: tokenHash("tok-second"), VaultID: vault, MachineID: second, PublicKey: publicKey(7), Hostname: "twin",
	}
	h.expectReject(CmdRegisterMachine, register, ErrAlreadyExists)

	// The key stays reserved while its machine exists, even revoked.
	h.mustApply(CmdSetMachineStatus, SetMachineStatusPayload{VaultID: vault, MachineID: first, Action: ActionRevoke}, nil)
	h.expectReject(CmdRegisterMachine, register, ErrAlreadyExists)

	// Purging the machine frees the key for a new registration.
	h.mustApply(CmdPurgeMachine, PurgeMachinePayload{VaultID: vault, MachineID: first}, nil)
	var m Machine
	h.mustApply(CmdRegisterMachine, register, &m)
	if m.ID != second {
		t.Fatalf("registered machine %s, want %s", m.ID, second)
	}
}
