package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// memSink is a raft.SnapshotSink that keeps the stream in memory.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
	failAfter         int // fail writes once this many bytes were written; 0 = never
}

func (s *memSink) Write(p []byte) (int, error) {
	if s.failAfter > 0 && s.Len()+len(p) > s.failAfter {
		return 0, errors.New("disk full")
	}
	return s.Buffer.Write(p)
}
func (s *memSink) ID() string     { return "test" }
func (s *memSink) Close() error   { s.closed = true; return nil }
func (s *memSink) Cancel() error  { s.cancelled = true; return nil }
func (s *memSink) stream() []byte { return bytes.Clone(s.Bytes()) }

func takeSnapshot(t testing.TB, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	if !sink.closed || sink.cancelled {
		t.Fatalf("sink closed=%v cancelled=%v, want closed only", sink.closed, sink.cancelled)
	}
	return sink.stream()
}

func restore(f *FSM, stream []byte) error {
	return f.Restore(io.NopCloser(bytes.NewReader(stream)))
}

func TestFSM_SnapshotRestoreRoundTrip(t *testing.T) {
	src := openFSM(t, t.TempDir(), nil)
	defer src.Close()
	applyAll(t, src, scenario(newProposer(t)))
	stream := takeSnapshot(t, src)

	dst := openFSM(t, t.TempDir(), nil)
	defer dst.Close()
	if err := restore(dst, stream); err != nil {
		t.Fatalf("Restore: %v", err)
	}

	if checksum(t, dst) != checksum(t, src) {
		t.Fatal("checksum differs after restore")
	}
	if !slices.Equal(dump(t, dst), dump(t, src)) {
		t.Fatal("records differ after restore")
	}
	if dst.AppliedIndex() != src.AppliedIndex() {
		t.Fatalf("applied index %d, want %d", dst.AppliedIndex(), src.AppliedIndex())
	}
	assertSameIndexes(t, dst, src)
}

// assertSameIndexes compares what the read API returns on two FSMs.
func assertSameIndexes(t *testing.T, got, want *FSM) {
	t.Helper()
	for _, id := range []MachineID{machine1, machine2, machine3} {
		g, gok := got.Machine(id)
		w, wok := want.Machine(id)
		if gok != wok || (gok && string(mustJSON(g.Machine)) != string(mustJSON(w.Machine))) {
			t.Fatalf("machine %s differs", id)
		}
		if gok && ((g.Policy == nil) != (w.Policy == nil) || *g.Key != *w.Key) {
			t.Fatalf("machine %s entry differs", id)
		}
	}
	for _, id := range []SecretID{secA, secA2, secB} {
		gv, gerr := got.SecretValue(id)
		wv, werr := want.SecretValue(id)
		if !bytes.Equal(gv, wv) || (gerr == nil) != (werr == nil) {
			t.Fatalf("secret %s value differs", id)
		}
	}
	if got.Initialized() != want.Initialized() || len(got.Vaults()) != len(want.Vaults()) {
		t.Fatal("initialized flag or vaults differ")
	}
	if (got.VaultAllowlist(vaultA) == nil) != (want.VaultAllowlist(vaultA) == nil) {
		t.Fatal("vault allowlist differs")
	}
	if len(got.BootstrapTokens(vaultA, "")) != len(want.BootstrapTokens(vaultA, "")) {
		t.Fatal("bootstrap tokens differ")
	}
	if len(got.Machines(vaultA)) != len(want.Machines(vaultA)) {
		t.Fatal("machine lists differ")
	}
}

// TestFSM_RestoreReplacesEveryKeyspace restores a snapshot over a store
// that holds records of every kind the snapshot lacks; none may survive.
func TestFSM_RestoreReplacesEveryKeyspace(t *testing.T) {
	// The source: a small state with one vault and no machines.
	src := newHarness(t)
	src.setupVault(vaultB)
	stream := takeSnapshot(t, src.f)

	// The target: the full scenario, which writes every prefix.
	dst := openFSM(t, t.TempDir(), nil)
	defer dst.Close()
	applyAll(t, dst, scenario(newProposer(t)))
	before := dump(t, dst)
	for _, p := range knownPrefixes {
		if !slices.ContainsFunc(before, func(kv string) bool { return strings.HasPrefix(kv, p) }) {
			t.Fatalf("the target holds no %q records; the test would not cover that keyspace", p)
		}
	}

	if err := restore(dst, stream); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if !slices.Equal(dump(t, dst), dump(t, src.f)) {
		t.Fatalf("records after restore:\n%s\nwant:\n%s", strings.Join(dump(t, dst), "\n"), strings.Join(dump(t, src.f), "\n"))
	}
	if _, ok := dst.Machine(machine2); ok {
		t.Fatal("machine index kept an entry the snapshot lacks")
	}
	if _, ok := dst.Vault(vaultA); ok || dst.Initialized() {
		t.Fatal("vault or init flag kept after restore")
	}
	if _, ok := dst.Secret(secA); ok {
		t.Fatal("secret index kept an entry the snapshot lacks")
	}
	if _, ok := dst.AdminTokenByHash(tokenHash("root")); ok {
		t.Fatal("admin token kept after restore")
	}
	if dst.AppliedIndex() != src.f.AppliedIndex() {
		t.Fatalf("applied index %d, want the snapshot's %d", dst.AppliedIndex(), src.f.AppliedIndex())
	}

	// The restored store keeps applying entries.
	dst.Apply(&raft.Log{Index: dst.AppliedIndex() + 1, Type: raft.LogCommand, Data: mustEncode(t, CmdCreateVault, CreateVaultPayload{ID: vaultA, Name: "again"})})
	if _, ok := dst.Vault(vaultA); !ok {
		t.Fatal("apply after restore failed")
	}
}

func mustEncode(t testing.TB, typ CommandType, payload any) []byte {
	t.Helper()
	cmd, err := NewCommand(typ, ms(baseTime), Actor{Kind: "system"}, payload)
	if err != nil {
		t.Fatal(err)
	}
	b, err := EncodeCommand(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// encodeStream writes a snapshot stream from raw records with a correct
// checksum, so that the checks behind the checksum can be reached.
func encodeStream(index uint64, records [][2]string, mutateCount int) []byte {
	var b bytes.Buffer
	b.WriteString(snapshotMagic)
	b.Write(binary.BigEndian.AppendUint32(nil, snapshotVersion))
	b.Write(binary.BigEndian.AppendUint64(nil, index))
	b.Write(binary.BigEndian.AppendUint64(nil, 1))
	for _, r := range records {
		b.WriteByte(tagRecord)
		b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(r[0]))))
		b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(r[1]))))
		b.WriteString(r[0])
		b.WriteString(r[1])
	}
	b.WriteByte(tagTrailer)
	b.Write(binary.BigEndian.AppendUint64(nil, uint64(len(records)+mutateCount)))
	sum := sha256.Sum256(b.Bytes())
	b.Write(sum[:])
	return b.Bytes()
}

func TestFSM_RestoreRejectsCorruptStreams(t *testing.T) {
	src := openFSM(t, t.TempDir(), nil)
	defer src.Close()
	applyAll(t, src, scenario(newProposer(t))[:20])
	valid := takeSnapshot(t, src)

	flip := func(i int) []byte { b := bytes.Clone(valid); b[i] ^= 0x40; return b }
	setUint32 := func(at int, v uint32) []byte {
		b := bytes.Clone(valid)
		binary.BigEndian.PutUint32(b[at:], v)
		return b
	}
	const firstRecord = 28 // header size
	cases := []struct {
		name   string
		stream []byte
	}{
		{"empty", nil},
		{"truncated header", valid[:10]},
		{"truncated record", valid[:firstRecord+20]},
		{"truncated before trailer", valid[:len(valid)-41]},
		{"truncated checksum", valid[:len(valid)-5]},
		{"bad magic", flip(0)},
		{"bad version", setUint32(8, 99)},
		{"flipped value byte", flip(len(valid) / 2)},
		{"flipped checksum", flip(len(valid) - 1)},
		{"key length over limit", setUint32(firstRecord+1, maxSnapshotKey+1)},
		{"zero key length", setUint32(firstRecord+1, 0)},
		{"value length over limit", setUint32(firstRecord+5, maxSnapshotValue+1)},
		{"huge value length", setUint32(firstRecord+5, 0xffffffff)},
		{"unknown tag", func() []byte { b := bytes.Clone(valid); b[firstRecord] = 0x7f; return b }()},
		{"trailing data", append(bytes.Clone(valid), 0)},
		{"count mismatch", encodeStream(5, [][2]string{{"vault/x", "{}"}}, 1)},
		{"keys out of order", encodeStream(5, [][2]string{{"vault/b", "{}"}, {"vault/a", "{}"}}, 0)},
		{"repeated key", encodeStream(5, [][2]string{{"vault/a", "{}"}, {"vault/a", "{}"}}, 0)},
		{"unknown prefix", encodeStream(5, [][2]string{{"zzz/a", "{}"}}, 0)},
		{"applied index as a record", encodeStream(5, [][2]string{{keyApplied, `{"index":9}`}}, 0)},
		{"undecodable machine", encodeStream(5, [][2]string{{"mach/x", "{"}}, 0)},
		{"secret without its version", encodeStream(5, [][2]string{
			{"proj/p", `{"id":"p","vaultId":"v"}`}, {"sec/s", `{"id":"s","projectId":"p","version":1}`},
		}, 0)},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := newMemHarness(t)
			applyAll(t, dst.f, scenario(newProposer(t)))
			before, beforeIndex := dump(t, dst.f), dst.f.AppliedIndex()

			err := restore(dst.f, tc.stream)
			if err == nil {
				t.Fatal("Restore accepted a corrupt stream")
			}
			if !errors.Is(err, ErrSnapshotCorrupt) {
				t.Fatalf("error %v does not wrap ErrSnapshotCorrupt", err)
			}
			if !slices.Equal(dump(t, dst.f), before) || dst.f.AppliedIndex() != beforeIndex {
				t.Fatal("a failed restore changed the store")
			}
			if _, ok := dst.f.Machine(machine2); !ok {
				t.Fatal("a failed restore changed the indexes")
			}
		})
	}
}

func TestFSM_SnapshotIsPointInTime(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	index := h.f.AppliedIndex()

	// Entries applied after Snapshot returns are not in the stream.
	h.setupVault(vaultB)
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}

	dst := newMemHarness(t)
	if err := restore(dst.f, sink.stream()); err != nil {
		t.Fatal(err)
	}
	if _, ok := dst.f.Vault(vaultB); ok {
		t.Fatal("the snapshot contains a later entry")
	}
	if _, ok := dst.f.Vault(vaultA); !ok || dst.f.AppliedIndex() != index {
		t.Fatalf("restored index %d, want %d with vault A", dst.f.AppliedIndex(), index)
	}
}

func TestFSM_PersistFailureCancelsSink(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}

	sink := &memSink{failAfter: 1}
	if err := snap.Persist(sink); err == nil {
		t.Fatal("Persist succeeded on a failing sink")
	}
	if !sink.cancelled || sink.closed {
		t.Fatalf("sink cancelled=%v closed=%v, want cancelled only", sink.cancelled, sink.closed)
	}
	snap.Release()
	snap.Release() // raft releases once; a second call must be harmless
}
