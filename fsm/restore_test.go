package fsm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// restoreTables returns the files left in the restore folder of f.
func restoreTables(t *testing.T, f *FSM) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(f.cfg.Dir, restoreDirName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// manyMachines is a state with more machines and tokens than one chunk of
// the loader's workers, and a secret with several versions.
func manyMachines(t *testing.T, n int) *harness {
	t.Helper()
	h := newHarness(t)
	h.setupVault(vaultA)
	h.setupProject(vaultA, projA, "p")
	h.setupSecret(projA, secA, "s", "v1")
	h.mustApply(CmdUpdateSecret, UpdateSecretPayload{ID: secA, ExpectedVersion: 1, Sealed: h.seal(projA, secA, "v2")}, nil)
	var logs []*raft.Log
	for i := range n {
		id := MachineID(fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i))
		token := fmt.Sprintf("many-%d", i)
		logs = append(logs,
			h.entry(CmdCreateBootstrapToken, CreateBootstrapTokenPayload{Token: bootstrapToken(h.now, vaultA, token, TokenKindStandard, nil)}),
			h.entry(CmdRegisterMachine, RegisterMachinePayload{TokenHash: tokenHash(token), MachineID: id, PublicKey: benchPublicKey(i), Hostname: "many"}),
		)
	}
	for _, r := range h.f.ApplyBatch(logs) {
		if resp := r.(*Response); resp.Code != "" {
			t.Fatalf("setup rejected: %s", resp.Message)
		}
	}
	return h
}

func TestFSM_RestoreAcrossTablesSurvivesReopen(t *testing.T) {
	defer func(old uint64) { restoreTableBytes = old }(restoreTableBytes)
	restoreTableBytes = 16 << 10

	src := manyMachines(t, 700)
	stream := takeSnapshot(t, src.f)

	dir := t.TempDir()
	dst := openFSM(t, dir, nil)
	applyAll(t, dst, scenario(newProposer(t)))
	if err := restore(dst, stream); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if got := restoreTables(t, dst); len(got) != 0 {
		t.Errorf("restore left %v behind", got)
	}
	// Every table went to the bottom level, and nothing of the old state is
	// left in a table above it.
	m := dst.db.Metrics()
	if n := m.Levels[len(m.Levels)-1].TablesCount; n < 2 {
		t.Errorf("bottom level holds %d tables after restore, want the stream split into several", n)
	}
	for level := range len(m.Levels) - 1 {
		if n := m.Levels[level].TablesCount; n != 0 {
			t.Errorf("level %d holds %d tables after restore, want 0", level, n)
		}
	}
	want := dump(t, src.f)
	if !slices.Equal(dump(t, dst), want) {
		t.Fatal("records differ after restore")
	}
	if got := len(dst.Machines(vaultA)); got != 700 {
		t.Fatalf("%d machines after restore, want 700", got)
	}
	value, err := dst.SecretValue(secA)
	if err != nil || string(value) != "v2" {
		t.Fatalf("secret value after restore = %q, %v; want the current version v2", value, err)
	}

	// The ingested tables and the applied index are durable.
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	reopened := openFSM(t, dir, nil)
	defer reopened.Close()
	if !slices.Equal(dump(t, reopened), want) {
		t.Fatal("records differ after reopening the restored store")
	}
	if reopened.AppliedIndex() != src.f.AppliedIndex() {
		t.Fatalf("applied index after reopen = %d, want %d", reopened.AppliedIndex(), src.f.AppliedIndex())
	}
	if got := len(reopened.Machines(vaultA)); got != 700 {
		t.Fatalf("%d machines after reopen, want 700", got)
	}
	if value, err := reopened.SecretValue(secA); err != nil || string(value) != "v2" {
		t.Fatalf("secret value after reopen = %q, %v; want v2", value, err)
	}
}

func TestFSM_FailedRestoreLeavesNoTables(t *testing.T) {
	defer func(old uint64) { restoreTableBytes = old }(restoreTableBytes)
	restoreTableBytes = 16 << 10

	src := manyMachines(t, 300)
	stream := takeSnapshot(t, src.f)
	stream[len(stream)-1] ^= 1 // the checksum fails only after every table was written

	dst := openFSM(t, t.TempDir(), nil)
	defer dst.Close()
	applyAll(t, dst, scenario(newProposer(t)))
	before := dump(t, dst)
	err := restore(dst, stream)
	if !errors.Is(err, ErrSnapshotCorrupt) {
		t.Fatalf("Restore error = %v, want ErrSnapshotCorrupt", err)
	}
	if got := restoreTables(t, dst); len(got) != 0 {
		t.Errorf("failed restore left %v behind", got)
	}
	if !slices.Equal(dump(t, dst), before) {
		t.Fatal("a failed restore changed the store")
	}
}

func TestFSM_RestoreRejectsBadMachineAmongMany(t *testing.T) {
	// The loader's workers decode machines, so this error comes from a
	// worker, and it must fail the restore like any other.
	records := [][2]string{{"meta/init", `{}`}}
	for i := range 600 {
		records = append(records, [2]string{fmt.Sprintf("mach/m%04d", i), string(mustJSON(Machine{ID: MachineID(fmt.Sprintf("m%04d", i)), PublicKey: benchPublicKey(i)}))})
	}
	records[400][1] = `{"id":"m0399","publicKey":"AAAA"}` // a 3-byte key
	slices.SortFunc(records, func(a, b [2]string) int {
		switch {
		case a[0] < b[0]:
			return -1
		case a[0] > b[0]:
			return 1
		}
		return 0
	})

	dst := newMemHarness(t)
	applyAll(t, dst.f, scenario(newProposer(t)))
	before := dump(t, dst.f)
	err := restore(dst.f, encodeStream(9, records, 0))
	if !errors.Is(err, ErrSnapshotCorrupt) {
		t.Fatalf("Restore error = %v, want ErrSnapshotCorrupt", err)
	}
	if !slices.Equal(dump(t, dst.f), before) {
		t.Fatal("a failed restore changed the store")
	}
}

func TestFSM_OpenLoadsManyMachines(t *testing.T) {
	h := manyMachines(t, 700)
	want := h.f.Machines(vaultA)
	dir := h.f.cfg.Dir
	if err := h.f.Close(); err != nil {
		t.Fatal(err)
	}
	f := openFSM(t, dir, nil)
	defer f.Close()
	got := f.Machines(vaultA)
	if len(got) != len(want) {
		t.Fatalf("%d machines after open, want %d", len(got), len(want))
	}
	for i := range want {
		if string(mustJSON(got[i].Machine)) != string(mustJSON(want[i].Machine)) {
			t.Fatalf("machine %s differs after open", want[i].Machine.ID)
		}
	}
	if n := len(f.BootstrapTokens(vaultA, "")); n != 700 {
		t.Fatalf("%d bootstrap tokens after open, want 700", n)
	}
	if value, err := f.SecretValue(secA); err != nil || string(value) != "v2" {
		t.Fatalf("secret value after open = %q, %v; want v2", value, err)
	}
}

func TestFSM_WaitAppliedWakesOnCommit(t *testing.T) {
	h := newMemHarness(t)
	h.setupVault(vaultA)
	next := h.f.AppliedIndex() + 1

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if h.f.WaitApplied(ctx, next) {
		t.Fatal("WaitApplied reported an index that was never applied")
	}

	done := make(chan bool, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- h.f.WaitApplied(ctx, next)
	}()
	time.Sleep(10 * time.Millisecond)
	h.setupProject(vaultA, projA, "p")
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("WaitApplied returned false after the index was applied")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitApplied did not return within 5s of the commit")
	}

	if !h.f.WaitApplied(context.Background(), next) {
		t.Fatal("WaitApplied on an applied index returned false")
	}
}
