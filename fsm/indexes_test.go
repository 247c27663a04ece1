package fsm

import (
	"fmt"
	"testing"
	"unsafe"

	"github.com/keyward/keyward/guard"
)

func TestMachineEntry_MembershipShortAndLong(t *testing.T) {
	key, err := guard.ParsePublicKey(publicKey(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, maxScannedMembers, maxScannedMembers + 1, 200} {
		t.Run(fmt.Sprintf("%d members", n), func(t *testing.T) {
			m := Machine{ID: machine1, VaultID: vaultA}
			for i := range n {
				m.Projects = append(m.Projects, ProjectID(fmt.Sprintf("proj_%010d", i)))
				m.Grants = append(m.Grants, SecretID(fmt.Sprintf("sk_%010d", i)))
			}
			e := newMachineEntry(m, key, nil)
			if indexed := e.grantSet != nil; indexed != (n > maxScannedMembers) {
				t.Errorf("grant set built = %v for %d grants", indexed, n)
			}
			for i := range n {
				if !e.HasProject(ProjectID(fmt.Sprintf("proj_%010d", i))) {
					t.Errorf("project %d not found", i)
				}
				if !e.HasGrant(SecretID(fmt.Sprintf("sk_%010d", i))) {
					t.Errorf("grant %d not found", i)
				}
			}
			if e.HasProject(ProjectID(fmt.Sprintf("proj_%010d", n))) {
				t.Error("a project that is not attached was found")
			}
			if e.HasGrant(SecretID(fmt.Sprintf("sk_%010d", n))) {
				t.Error("a secret that is not granted was found")
			}
		})
	}
}

func TestMachineEntry_KeyIsACopy(t *testing.T) {
	raw := publicKey(2)
	key, err := guard.ParsePublicKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	e := newMachineEntry(Machine{ID: machine1, VaultID: vaultA, PublicKey: raw}, key, nil)
	if string(e.Key.Bytes()) != string(raw) {
		t.Fatalf("entry key = %x, want %x", e.Key.Bytes(), raw)
	}
	if e.Key == key {
		t.Error("entry key is the caller's pointer, want a copy held by the entry")
	}
}

func TestMachineEntry_SharesRepeatedStrings(t *testing.T) {
	key, err := guard.ParsePublicKey(publicKey(3))
	if err != nil {
		t.Fatal(err)
	}
	// Build each record's strings separately, as JSON decoding does.
	record := func() Machine {
		return Machine{
			ID: machine1, VaultID: VaultID(string([]byte(vaultA))),
			Kind: string([]byte(KindStandard)), Status: string([]byte(StatusActive)),
			Projects: []ProjectID{ProjectID(string([]byte(projA)))},
			Grants:   []SecretID{SecretID(string([]byte(secA)))},
		}
	}
	a, b := newMachineEntry(record(), key, nil), newMachineEntry(record(), key, nil)
	same := func(x, y string) bool { return unsafe.StringData(x) == unsafe.StringData(y) }
	if !same(string(a.Machine.VaultID), string(b.Machine.VaultID)) {
		t.Error("vault id not shared")
	}
	if !same(a.Machine.Status, b.Machine.Status) {
		t.Error("status not shared")
	}
	if !same(string(a.Machine.Projects[0]), string(b.Machine.Projects[0])) {
		t.Error("project id not shared")
	}
	if !same(string(a.Machine.Grants[0]), string(b.Machine.Grants[0])) {
		t.Error("secret id not shared")
	}
	if a.Machine.VaultID != vaultA || a.Machine.Grants[0] != secA {
		t.Errorf("interned values changed: %q %q", a.Machine.VaultID, a.Machine.Grants[0])
	}
}

func TestFSM_AppendSecretValueReusesBuffer(t *testing.T) {
	h := newMemHarness(t)
	h.setupVault(vaultA)
	h.setupProject(vaultA, projA, "a")
	h.setupSecret(projA, secA, "s", "value one")

	buf := make([]byte, 0, 64)
	got, err := h.f.AppendSecretValue(buf, secA)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "value one" {
		t.Fatalf("value = %q, want %q", got, "value one")
	}
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := h.f.AppendSecretValue(buf[:0], secA); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("a repeated read allocated %.1f times, want 0", allocs)
	}

	// A new version is read with its own keys, not the cached ones.
	h.mustApply(CmdUpdateSecret, UpdateSecretPayload{ID: secA, ExpectedVersion: 1, Sealed: h.seal(projA, secA, "value two")}, nil)
	if got, err := h.f.AppendSecretValue(buf[:0], secA); err != nil || string(got) != "value two" {
		t.Fatalf("value after update = %q, %v; want %q", got, err, "value two")
	}
}

func TestMachineEntry_OneElementListsShared(t *testing.T) {
	h := newMemHarness(t)
	h.setupVault(vaultA)
	h.setupProject(vaultA, projA, "a")
	h.setupProject(vaultA, projA2, "a2")
	h.setupSecret(projA, secA, "s", "v")
	for i, id := range []MachineID{machine1, machine2} {
		h.setupMachine(vaultA, id, TokenKindStandard, byte(10+i))
		h.mustApply(CmdAttachProject, MachineProjectPayload{VaultID: vaultA, MachineID: id, ProjectID: projA}, nil)
		h.mustApply(CmdSetGrants, SetGrantsPayload{VaultID: vaultA, MachineID: id, SecretIDs: []SecretID{secA}}, nil)
	}
	one, _ := h.f.Machine(machine1)
	two, _ := h.f.Machine(machine2)
	if &one.Machine.Projects[0] != &two.Machine.Projects[0] {
		t.Error("machines attached to the same one project hold separate lists")
	}
	if &one.Machine.Grants[0] != &two.Machine.Grants[0] {
		t.Error("machines granted the same one secret hold separate lists")
	}

	// Changing one machine's list leaves the other's alone.
	h.mustApply(CmdAttachProject, MachineProjectPayload{VaultID: vaultA, MachineID: machine1, ProjectID: projA2}, nil)
	if got := h.machine(machine2).Projects; len(got) != 1 || got[0] != projA {
		t.Fatalf("machine2 projects = %v after attaching to machine1, want [%s]", got, projA)
	}
	if e, _ := h.f.Machine(machine2); !e.HasProject(projA) || e.HasProject(projA2) {
		t.Fatal("machine2's entry changed with machine1's")
	}
	if e, _ := h.f.Machine(machine1); !e.HasProject(projA) || !e.HasProject(projA2) {
		t.Fatal("machine1's entry lacks a project")
	}
}

// TestShardOf_SpreadsSequentialIDs checks that ids differing only in
// their last characters, as bench and test fleets name machines, fill
// every shard about evenly.
func TestShardOf_SpreadsSequentialIDs(t *testing.T) {
	const n = 64 * 1000
	var counts [shardCount]int
	for i := range n {
		counts[shardOf(fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i))]++
	}
	for shard, c := range counts {
		if c < n/shardCount*8/10 || c > n/shardCount*12/10 {
			t.Fatalf("shard %d holds %d of %d ids, want %d ± 20%%", shard, c, n, n/shardCount)
		}
	}
}
