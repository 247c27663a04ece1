package fsm

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/raft"
)

// TestFSM_ReadersDuringApplies runs readers of every index while one
// goroutine applies a log and another restores a snapshot. Run it with
// -race; it also checks that a reader never sees a torn machine entry.
func TestFSM_ReadersDuringApplies(t *testing.T) {
	p := newProposer(t)
	logs := scenario(p)
	f := openFSM(t, t.TempDir(), nil)
	defer f.Close()

	var done atomic.Bool
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done.Load() {
				readEverything(t, f, r)
			}
		}()
	}

	half := len(logs) / 2
	applyAll(t, f, logs[:half])
	stream := takeSnapshot(t, f)
	applyAll(t, f, logs[half:])
	if err := restore(f, stream); err != nil {
		t.Error(err)
	}
	f.ApplyBatch(append([]*raft.Log(nil), logs[half:]...))
	done.Store(true)
	wg.Wait()

	want := openFSM(t, t.TempDir(), nil)
	defer want.Close()
	applyAll(t, want, logs)
	if checksum(t, f) != checksum(t, want) {
		t.Fatal("state after concurrent reads differs from a quiet apply")
	}
	checkMachineIndex(t, f)
}

func readEverything(t *testing.T, f *FSM, reader int) {
	t.Helper()
	for _, id := range []MachineID{machine1, machine2, machine3} {
		if e, ok := f.Machine(id); ok {
			// An entry is published whole: its lookups match its record.
			for _, s := range e.Machine.Grants {
				if !e.HasGrant(s) {
					t.Errorf("reader %d: torn entry for %s", reader, id)
				}
			}
			for _, p := range e.Machine.Projects {
				if !e.HasProject(p) {
					t.Errorf("reader %d: torn entry for %s", reader, id)
				}
			}
			if e.Key == nil {
				t.Errorf("reader %d: entry for %s has no key", reader, id)
			}
		}
	}

	for _, e := range f.Machines(vaultA) {
		if e.Machine.VaultID != vaultA {
			t.Errorf("reader %d: Machines(%s) returned %s of vault %s", reader, vaultA, e.Machine.ID, e.Machine.VaultID)
		}
	}
	f.Vaults()
	f.VaultAllowlist(vaultA)
	f.Projects(vaultA)
	f.Secrets(projA)

	if v, err := f.SecretValue(secA); err == nil && len(v) == 0 {
		t.Errorf("reader %d: empty secret value", reader)
	}

	f.Secret(secA2)
	f.AdminTokenByHash(tokenHash("root"))
	f.BootstrapTokenByHash(tokenHash("std"))
	f.BootstrapTokens(vaultA, TokenKindTemp)
	f.Initialized()
	f.AppliedIndex()
	if _, err := f.SecretVersions(secA); err != nil && !isNotFound(err) {
		t.Errorf("reader %d: SecretVersions: %v", reader, err)
	}
}
