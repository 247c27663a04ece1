package fsm

import (
	"slices"
	"time"

	"github.com/keyward/keyward/guard"
)

// Expired reports whether the machine's expiry has passed at nowMs (Unix
// milliseconds): at ExpiresAt exactly it is expired. A machine without an
// expiry never expires. The request check, the expiry sweep, extend and
// approve all use this one comparison.
func (m *Machine) Expired(nowMs int64) bool {
	return m.ExpiresAt != 0 && guard.Expired(m.ExpiresAt, time.UnixMilli(nowMs))
}

// cloneMachine returns a copy of m that shares no slice with it, so the
// copy can be changed while readers hold the original. Guardrails are
// shared because they are replaced, never modified.
func cloneMachine(m Machine) Machine {
	m.PublicKey = slices.Clone(m.PublicKey)
	m.Extensions = slices.Clone(m.Extensions)
	m.Projects = slices.Clone(m.Projects)
	m.Grants = slices.Clone(m.Grants)
	if m.Projects == nil {
		m.Projects = []ProjectID{}
	}
	if m.Grants == nil {
		m.Grants = []SecretID{}
	}
	return m
}

// machineInVault returns a machine of vault. A machine of another vault is
// reported as not found, so that a vault-scoped operator learns nothing
// about other vaults.
func (t *tx) machineInVault(vault VaultID, id MachineID) (*MachineEntry, error) {
	e, ok := t.machine(id)
	if !ok || e.Machine.VaultID != vault {
		return nil, rejectf(ErrNotFound, "machine %s not found in vault %s", id, vault)
	}
	return e, nil
}

// stageMachine stages m with the key and policy of its entry.
func (t *tx) stageMachine(m Machine, key *guard.PublicKey, policy *guard.Policy) *Machine {
	e := newMachineEntry(m, key, policy)
	t.stage(kindMachine, machineKey(m.ID), string(m.ID), &e.Machine, e)
	return &e.Machine
}

// updateMachine stages a changed copy of old, keeping its key and policy.
func (t *tx) updateMachine(old *MachineEntry, change func(m *Machine)) *Machine {
	m := cloneMachine(old.Machine)
	change(&m)
	return t.stageMachine(m, old.Key, old.Policy)
}
