package fsm

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// checkMachineIndex fails unless the index records of f (vault members,
// expiries, grants and token ids) are exactly those its machine and
// bootstrap token records call for.
func checkMachineIndex(t testing.TB, f *FSM) {
	t.Helper()
	var want, got []string
	err := scanPrefix(f.db, prefixMachine, func(_, value []byte) error {
		var m Machine
		if err := json.Unmarshal(value, &m); err != nil {
			return err
		}
		want = append(want, vaultMachineKey(m.VaultID, m.ID))
		for _, secret := range m.Grants {
			want = append(want, machineGrantKey(secret, m.ID))
		}
		if k := machineExpiryKey(&m); k != "" {
			want = append(want, k)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = scanPrefix(f.db, prefixBootstrapToken, func(_, value []byte) error {
		var tok BootstrapToken
		if err := json.Unmarshal(value, &tok); err != nil {
			return err
		}
		want = append(want, tokenIDIndexKey(tok.VaultID, tok.ID)+"="+tok.Hash)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range storeIndexPrefixes {
		if err := scanPrefix(f.db, prefix, func(key, value []byte) error {
			if len(value) > 0 {
				got = append(got, string(key)+"="+string(value))
			} else {
				got = append(got, string(key))
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("machine index records:\n got %q\nwant %q", got, want)
	}
}

// openWithCache opens an FSM whose machine cache holds at most entries.
func openWithCache(t testing.TB, dir string, fs vfs.FS, entries int) *FSM {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Dir, cfg.FS, cfg.Keyring, cfg.MachineCacheEntries = dir, fs, testKeyring(t), entries
	f, err := Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// machineID returns the n-th test machine id.
func machineID(n int) MachineID {
	return MachineID(fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n))
}

// registerMachines enrolls n machines in vault through one enrollment
// token, each with its own key and a one-month lifetime, and returns their
// ids. Enrolled machines start active.
func (h *harness) registerMachines(vault VaultID, n int) []MachineID {
	h.t.Helper()
	h.setupToken(vault, "fleet", TokenKindEnrollment, func(tok *BootstrapToken) {
		tok.MaxUses = n
		tok.Lifetime = &Lifetime{Months: 1}
	})
	ids := make([]MachineID, n)
	for i := range n {
		pub, _, err := ed25519.GenerateKey(nil)
		if err != nil {
			h.t.Fatal(err)
		}
		ids[i] = machineID(i)
		h.mustApply(CmdRegisterMachine, RegisterMachinePayload{
			TokenHash: tokenHash("fleet"), VaultID: vault, MachineID: ids[i], PublicKey: pub, Hostname: "host",
		}, nil)
	}
	return ids
}

// storedMachine decodes the record of id straight from the store.
func storedMachine(t testing.TB, f *FSM, id MachineID) (Machine, bool) {
	t.Helper()
	var m Machine
	found, err := getJSON(f.db, machineKey(id), &m)
	if err != nil {
		t.Fatal(err)
	}
	return m, found
}

// TestMachineCache_ServesEvictedMachines registers five times as many
// machines as the cache holds and reads each one: those evicted are read
// back from the store, and the cache never grows past its bound.
func TestMachineCache_ServesEvictedMachines(t *testing.T) {
	f := openWithCache(t, "mem", vfs.NewMem(), shardCount)
	defer f.Close()
	h := &harness{proposer: newProposer(t), f: f}
	h.setupVault(vaultA)
	ids := h.registerMachines(vaultA, 5*shardCount)

	for round := range 2 {
		for _, id := range ids {
			e, ok := f.Machine(id)
			if !ok || e.Machine.ID != id || e.Machine.VaultID != vaultA {
				t.Fatalf("round %d: Machine(%s) = %v, %v", round, id, e, ok)
			}
		}
	}
	st := f.MachineCacheStats()
	if st.Entries > st.Capacity || st.Capacity != shardCount {
		t.Fatalf("cache holds %d of %d entries, want at most %d", st.Entries, st.Capacity, shardCount)
	}
	if st.Evictions == 0 || st.Misses == 0 || st.LoadErrors != 0 {
		t.Fatalf("stats %+v: want evictions and misses and no load errors", st)
	}
	if got := f.Machines(vaultA); len(got) != len(ids) {
		t.Fatalf("Machines(%s) returned %d machines, want %d", vaultA, len(got), len(ids))
	}
	checkMachineIndex(t, f)
}

// TestMachineCache_OpenLoadsNoMachine checks that opening a store reads no
// machine into memory, and that the first request for one loads it.
func TestMachineCache_OpenLoadsNoMachine(t *testing.T) {
	dir := t.TempDir()
	h := &harness{proposer: newProposer(t), f: openFSM(t, dir, nil)}
	h.setupVault(vaultA)
	ids := h.registerMachines(vaultA, 50)
	h.f.Close()

	f := openFSM(t, dir, nil)
	defer f.Close()
	if st := f.MachineCacheStats(); st.Entries != 0 {
		t.Fatalf("after Open the cache holds %d machines, want 0", st.Entries)
	}
	if _, ok := f.Machine(ids[7]); !ok {
		t.Fatalf("Machine(%s) not found after Open", ids[7])
	}
	if st := f.MachineCacheStats(); st.Entries != 1 || st.Misses != 1 {
		t.Fatalf("after one read: %+v, want one entry from one miss", st)
	}
	if _, ok := f.Machine(ids[7]); !ok {
		t.Fatal("second read missed")
	}
	if st := f.MachineCacheStats(); st.Hits != 1 {
		t.Fatalf("after a second read: %+v, want one hit", st)
	}
}

// TestMachineCache_ReadersNeverKeepStaleEntries reads machines from many
// goroutines through a cache too small to hold them while the applier
// extends, revokes and purges them. A reader that loaded a record before
// a change must not leave it in the cache: at the end every entry matches
// the store. Run it with -race.
func TestMachineCache_ReadersNeverKeepStaleEntries(t *testing.T) {
	f := openWithCache(t, "mem", vfs.NewMem(), shardCount)
	defer f.Close()
	h := &harness{proposer: newProposer(t), f: f}
	h.setupVault(vaultA)
	const n = 400
	ids := h.registerMachines(vaultA, n)

	var stop atomic.Bool
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			for !stop.Load() {
				f.Machine(ids[rng.IntN(n)])
			}
		}()
	}

	rng := rand.New(rand.NewPCG(7, 7))
	for i := range 1500 {
		id := ids[rng.IntN(n)]
		e, ok := f.Machine(id)
		if !ok {
			continue
		}
		switch {
		case i%97 == 0 && e.Machine.Status == StatusActive:
			h.apply(CmdSetMachineStatus, SetMachineStatusPayload{VaultID: vaultA, MachineID: id, Action: ActionRevoke})
		case i%89 == 0 && e.Machine.Status == StatusRevoked:
			h.apply(CmdPurgeMachine, PurgeMachinePayload{VaultID: vaultA, MachineID: id})
		default:
			h.apply(CmdExtendMachine, ExtendMachinePayload{
				VaultID: vaultA, MachineID: id, ExtensionID: fmt.Sprintf("ext-%d", i),
				NewExpiresAt: e.Machine.ExpiresAt + time.Hour.Milliseconds(),
				Cap:          h.now + 365*24*time.Hour.Milliseconds(), Reason: "load",
			})
		}
	}
	stop.Store(true)
	wg.Wait()

	for _, id := range ids {
		stored, found := storedMachine(t, f, id)
		e, ok := f.Machine(id)
		if ok != found {
			t.Fatalf("Machine(%s) found %v, store has it %v", id, ok, found)
		}
		if ok && (e.Machine.ExpiresAt != stored.ExpiresAt || e.Machine.Status != stored.Status || len(e.Machine.Extensions) != len(stored.Extensions)) {
			t.Fatalf("Machine(%s) expires %d (%s, %d extensions); the store has %d (%s, %d)", id,
				e.Machine.ExpiresAt, e.Machine.Status, len(e.Machine.Extensions),
				stored.ExpiresAt, stored.Status, len(stored.Extensions))
		}
	}
	checkMachineIndex(t, f)
}

// TestMachineCache_ChangeDuringFillWins changes a machine between the
// moment a cache miss reads its record and the moment it would be added.
// The read may return the record it loaded, but the cache must not keep
// it. So the next read returns the change, and a purged machine stays
// gone.
func TestMachineCache_ChangeDuringFillWins(t *testing.T) {
	dir := t.TempDir()
	h := &harness{proposer: newProposer(t), f: openFSM(t, dir, nil)}
	h.setupVault(vaultA)
	ids := h.registerMachines(vaultA, 2)
	extended, purged := ids[0], ids[1]
	h.mustApply(CmdSetMachineStatus, SetMachineStatusPayload{VaultID: vaultA, MachineID: purged, Action: ActionRevoke}, nil)
	before := h.machine(extended)
	h.f.Close()

	h.f = openFSM(t, dir, nil)
	defer h.f.Close()
	// Apply reads the machine it changes, which misses too: the hook
	// runs once per machine, or it would apply again from inside apply.
	hooked := map[MachineID]bool{}
	h.f.idx.Load().machines.loaded = func(id MachineID) {
		if hooked[id] {
			return
		}
		hooked[id] = true
		switch id {
		case extended:
			h.mustApply(CmdExtendMachine, ExtendMachinePayload{
				VaultID: vaultA, MachineID: id, ExtensionID: "during-fill",
				NewExpiresAt: before.ExpiresAt + time.Hour.Milliseconds(),
				Cap:          h.now + 365*24*time.Hour.Milliseconds(), Reason: "change during a fill",
			}, nil)
		case purged:
			h.mustApply(CmdPurgeMachine, PurgeMachinePayload{VaultID: vaultA, MachineID: id}, nil)
		}
	}
	h.f.Machine(extended)
	h.f.Machine(purged)
	h.f.idx.Load().machines.loaded = nil

	if got := h.machine(extended).ExpiresAt; got != before.ExpiresAt+time.Hour.Milliseconds() {
		t.Fatalf("after a fill raced an extension, the expiry read is %d, want %d", got, before.ExpiresAt+time.Hour.Milliseconds())
	}
	if _, ok := h.f.Machine(purged); ok {
		t.Fatal("after a fill raced a purge, the purged machine is still found")
	}
}

// TestMachinesExpiringBy lists the machines due by a time in expiry order
// and leaves out the ones revoked, expired or without an expiry.
func TestMachinesExpiringBy(t *testing.T) {
	h := newMemHarness(t)
	h.setupVault(vaultA)
	h.setupVault(vaultB)
	first := h.setupActiveTemp(vaultA, machine1, 1)
	h.now += time.Hour.Milliseconds()
	second := h.setupActiveTemp(vaultB, machine2, 2)
	h.now += time.Hour.Milliseconds()
	h.setupActiveTemp(vaultA, machine3, 3)
	h.mustApply(CmdSetMachineStatus, SetMachineStatusPayload{VaultID: vaultA, MachineID: machine3, Action: ActionRevoke}, nil)
	h.setupMachine(vaultA, "44444444-4444-4444-8444-444444444444", TokenKindStandard, 4)

	ids := func(es []*MachineEntry) []MachineID {
		var out []MachineID
		for _, e := range es {
			out = append(out, e.Machine.ID)
		}
		return out
	}
	if got := ids(h.f.MachinesExpiringBy(first.ExpiresAt - 1)); len(got) != 0 {
		t.Fatalf("before the first expiry: %v, want none", got)
	}
	if got := ids(h.f.MachinesExpiringBy(first.ExpiresAt)); !slices.Equal(got, []MachineID{machine1}) {
		t.Fatalf("at the first expiry: %v, want %s", got, machine1)
	}
	if got := ids(h.f.MachinesExpiringBy(second.ExpiresAt + 365*24*time.Hour.Milliseconds())); !slices.Equal(got, []MachineID{machine1, machine2}) {
		t.Fatalf("a year on: %v, want %s then %s", got, machine1, machine2)
	}

	h.now = first.ExpiresAt
	h.mustApply(CmdExpireMachines, ExpireMachinesPayload{MachineIDs: []MachineID{machine1}}, nil)
	if got := ids(h.f.MachinesExpiringBy(second.ExpiresAt)); !slices.Equal(got, []MachineID{machine2}) {
		t.Fatalf("after the sweep: %v, want %s", got, machine2)
	}
	checkMachineIndex(t, h.f)
}

// dropMachineIndex deletes the index records and their marker, as in a
// store written before they existed.
func dropMachineIndex(t testing.TB, f *FSM) {
	t.Helper()
	b := f.db.NewBatch()
	for _, prefix := range storeIndexPrefixes {
		if err := b.DeleteRange([]byte(prefix), []byte(prefixEnd(prefix)), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Delete([]byte(keyMachineIndex), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// TestMachineIndex_BuiltForOlderStores opens a store and restores a
// snapshot that have machines and tokens but no index records: both come
// out with the same records as a store that always had them.
func TestMachineIndex_BuiltForOlderStores(t *testing.T) {
	p := newProposer(t)
	logs := scenario(p)
	fs := vfs.NewMem()
	f := openFSM(t, "old", fs)
	applyAll(t, f, logs)
	want := dump(t, f)
	wantSum := checksum(t, f)
	for _, prefix := range storeIndexPrefixes {
		if !slices.ContainsFunc(want, func(kv string) bool { return strings.HasPrefix(kv, prefix) }) {
			t.Fatalf("the scenario leaves no %s record; the test would prove nothing", prefix)
		}
	}

	dropMachineIndex(t, f)
	stream := takeSnapshot(t, f)
	f.Close()

	reopened := openFSM(t, "old", fs)
	defer reopened.Close()
	if got := dump(t, reopened); !slices.Equal(got, want) {
		t.Fatalf("reopened store differs:\n got %q\nwant %q", got, want)
	}

	restored := openFSM(t, "new", fs)
	defer restored.Close()
	if err := restore(restored, stream); err != nil {
		t.Fatal(err)
	}
	if got := checksum(t, restored); got != wantSum {
		t.Fatal("a restored snapshot without machine index records differs from the original state")
	}
	checkMachineIndex(t, restored)
}

// TestMachineCache_ReadsAfterClose fail closed instead of reaching a
// closed store.
func TestMachineCache_ReadsAfterClose(t *testing.T) {
	h := newMemHarness(t)
	h.setupVault(vaultA)
	ids := h.registerMachines(vaultA, 3)
	h.f.Close()
	if _, ok := h.f.Machine(ids[0]); !ok {
		t.Fatal("a machine published before Close is gone from the cache")
	}
	if _, ok := h.f.Machine("99999999-9999-4999-8999-999999999999"); ok {
		t.Fatal("an unknown machine was found after Close")
	}
	if got := h.f.Machines(vaultA); got != nil {
		t.Fatalf("Machines after Close = %d entries, want nil", len(got))
	}
}

// TestMachineIndex_VersionOneGetsTokenIDs reopens a store whose marker is
// version 1, written before btid/ records existed: Open adds them.
func TestMachineIndex_VersionOneGetsTokenIDs(t *testing.T) {
	fs := vfs.NewMem()
	h := &harness{proposer: newProposer(t), f: openFSM(t, "v1", fs)}
	h.setupVault(vaultA)
	h.setupToken(vaultA, "first", TokenKindStandard, nil)
	h.setupToken(vaultA, "second", TokenKindTemp, nil)
	want := dump(t, h.f)

	b := h.f.db.NewBatch()
	if err := b.DeleteRange([]byte(prefixTokenID), []byte(prefixEnd(prefixTokenID)), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Set([]byte(keyMachineIndex), mustJSON(machineIndexRecord{Version: 1}), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	h.f.Close()

	f := openFSM(t, "v1", fs)
	defer f.Close()
	if got := dump(t, f); !slices.Equal(got, want) {
		t.Fatalf("reopened version 1 store differs:\n got %q\nwant %q", got, want)
	}
	if got := f.BootstrapTokens(vaultA, ""); len(got) != 2 {
		t.Fatalf("BootstrapTokens(%s) = %d tokens, want 2", vaultA, len(got))
	}
}

// TestMachineIndex_NewerVersionRejected keeps a build from opening a store
// whose index a later build wrote.
func TestMachineIndex_NewerVersionRejected(t *testing.T) {
	fs := vfs.NewMem()
	f := openFSM(t, "v9", fs)
	if err := f.db.Set([]byte(keyMachineIndex), mustJSON(machineIndexRecord{Version: machineIndexVersion + 1}), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cfg := DefaultConfig()
	cfg.Dir, cfg.FS = "v9", fs
	_, err := Open(cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "run the keyward build that wrote the store") {
		t.Fatalf("Open of a newer store: %v, want an error naming the build", err)
	}
}

// TestMachineCache_CapacityRounding rounds a bound up to whole shards and
// caps one past the maximum instead of overflowing.
func TestMachineCache_CapacityRounding(t *testing.T) {
	cases := []struct{ asked, want int }{
		{1, shardCount},
		{shardCount + 1, 2 * shardCount},
		{DefaultMachineCacheEntries, DefaultMachineCacheEntries},
		{1 << 62, (MaxMachineCacheEntries + shardCount - 1) / shardCount * shardCount},
	}
	for _, tc := range cases {
		if got := newMachineCache(nil, tc.asked).stats().Capacity; got != tc.want {
			t.Errorf("capacity for %d entries = %d, want %d", tc.asked, got, tc.want)
		}
	}
}
