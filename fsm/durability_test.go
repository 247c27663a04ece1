package fsm

import (
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hashicorp/raft"
)

// applyAll applies logs one by one and returns the responses.
func applyAll(t testing.TB, f *FSM, logs []*raft.Log) []*Response {
	t.Helper()
	out := make([]*Response, len(logs))
	for i, l := range logs {
		out[i] = asResponse(t, f.Apply(l))
	}
	return out
}

// applyChunks applies logs through ApplyBatch in chunks of random size.
func applyChunks(t testing.TB, f *FSM, logs []*raft.Log, rng *rand.Rand) []*Response {
	t.Helper()
	var out []*Response
	for len(logs) > 0 {
		n := min(1+rng.IntN(8), len(logs))
		res := f.ApplyBatch(logs[:n])
		if len(res) != n {
			t.Fatalf("ApplyBatch returned %d responses for %d entries", len(res), n)
		}
		for _, r := range res {
			out = append(out, asResponse(t, r))
		}
		logs = logs[n:]
	}
	return out
}

func responsesJSON(t testing.TB, rs []*Response) []string {
	t.Helper()
	out := make([]string, len(rs))
	for i, r := range rs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = string(b)
	}
	return out
}

func TestFSM_DeterministicAcrossStores(t *testing.T) {
	logs := scenario(newProposer(t))

	a := openFSM(t, t.TempDir(), nil)
	defer a.Close()
	b := openFSM(t, t.TempDir(), nil)
	defer b.Close()
	ra := applyAll(t, a, logs)
	rb := applyAll(t, b, logs)

	if !slices.Equal(dump(t, a), dump(t, b)) {
		t.Fatal("two stores that applied the same log hold different bytes")
	}
	if !slices.Equal(responsesJSON(t, ra), responsesJSON(t, rb)) {
		t.Fatal("two stores returned different responses for the same log")
	}
	if a.AppliedIndex() != logs[len(logs)-1].Index {
		t.Fatalf("applied index %d, want %d", a.AppliedIndex(), logs[len(logs)-1].Index)
	}
}

func TestFSM_ScenarioOutcomes(t *testing.T) {
	p := newProposer(t)
	logs := scenario(p)
	f := openFSM(t, t.TempDir(), nil)
	defer f.Close()
	rs := applyAll(t, f, logs)

	codes := map[string]int{}
	for _, r := range rs {
		codes[r.Code]++
	}
	for _, code := range []string{"", CodeAlreadyInitialized, CodeConflict, CodeTokenInvalid, CodeOverCap, CodeInvalid} {
		if codes[code] == 0 {
			t.Errorf("the scenario produced no response with code %q; it no longer covers that path", code)
		}
	}

	if _, ok := f.Machine(machine1); ok {
		t.Error("purged machine 1 is still present")
	}
	m2, _ := f.Machine(machine2)
	m3, _ := f.Machine(machine3)
	if m2.Machine.Status != StatusActive || len(m2.Machine.Extensions) != 2 {
		t.Errorf("machine 2 = status %s, %d extensions; want active with 2", m2.Machine.Status, len(m2.Machine.Extensions))
	}
	if m3.Machine.Status != StatusExpired {
		t.Errorf("machine 3 status = %s, want expired after the revert", m3.Machine.Status)
	}
	if s, _ := f.Secret(secA); s.Version != 3 {
		t.Errorf("secret version = %d, want 3 after the retried id was pruned", s.Version)
	}
}

func TestFSM_ApplyBatchEqualsSequential(t *testing.T) {
	logs := scenario(newProposer(t))
	seq := openFSM(t, t.TempDir(), nil)
	defer seq.Close()
	want := responsesJSON(t, applyAll(t, seq, logs))

	for seed := uint64(1); seed <= 3; seed++ {
		batched := openFSM(t, t.TempDir(), nil)
		got := responsesJSON(t, applyChunks(t, batched, logs, rand.New(rand.NewPCG(seed, seed))))
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d: batched responses differ from sequential ones", seed)
		}
		if !slices.Equal(dump(t, batched), dump(t, seq)) {
			t.Fatalf("seed %d: batched store differs from the sequential one", seed)
		}
		one := openFSM(t, t.TempDir(), nil)
		one.ApplyBatch(logs)
		if checksum(t, one) != checksum(t, seq) {
			t.Fatal("one batch of the whole log differs from sequential apply")
		}
		batched.Close()
		one.Close()
	}
}

func TestFSM_RestartSkipsAppliedEntries(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pebble")
	logs := scenario(newProposer(t))

	f := openFSM(t, dir, nil)
	first := applyAll(t, f, logs)
	sum := checksum(t, f)
	records := dump(t, f)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	f = openFSM(t, dir, nil)
	defer f.Close()
	if f.AppliedIndex() != logs[len(logs)-1].Index {
		t.Fatalf("applied index after reopen = %d, want %d", f.AppliedIndex(), logs[len(logs)-1].Index)
	}
	if checksum(t, f) != sum {
		t.Fatal("state changed across close and open")
	}
	m2, ok := f.Machine(machine2)
	if !ok || m2.Policy == nil || m2.Key == nil {
		t.Fatal("indexes not rebuilt on open")
	}
	if v, err := f.SecretValue(secA); err != nil || string(v) != "v3" {
		t.Fatalf("SecretValue after reopen = %q, %v", v, err)
	}

	// A replayed entry with a request id returns the response stored for
	// that id, if its record was not pruned: the latest first response,
	// since an id may be reused once its record is pruned.
	stored := map[string]string{}
	for i, l := range logs {
		if id := requestIDOf(l); id != "" {
			stored[id] = string(mustJSON(first[i]))
		}
	}

	replayed := applyAll(t, f, logs)
	if !slices.Equal(dump(t, f), records) {
		t.Fatal("re-applying entries 1..N changed the store")
	}
	fromRecord := 0
	for i, r := range replayed {
		id := requestIDOf(logs[i])
		switch {
		case r.Code == CodeAlreadyApplied:
		case id == "":
			t.Fatalf("entry %d replayed with code %q, want already_applied", logs[i].Index, r.Code)
		case string(mustJSON(r)) != stored[id]:
			t.Fatalf("entry %d with request id %s replayed %s, want the stored %s", logs[i].Index, id, mustJSON(r), stored[id])
		default:
			fromRecord++
		}
	}
	if fromRecord == 0 {
		t.Fatal("no replayed entry returned a stored response")
	}
}

func requestIDOf(l *raft.Log) string {
	cmd, err := DecodeCommand(l.Data)
	if l.Type != raft.LogCommand || err != nil {
		return ""
	}
	return cmd.RequestID
}

func TestFSM_CrashBeforeCommitReappliesOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pebble")
	logs := scenario(newProposer(t))
	half := len(logs) / 2

	f := openFSM(t, dir, nil)
	applyAll(t, f, logs[:half])
	f.Close()

	// Raft replays from an earlier index after a restart; the overlap is
	// skipped and the rest applied, giving the state of one clean pass.
	f = openFSM(t, dir, nil)
	defer f.Close()
	applyAll(t, f, logs[half/2:])

	clean := openFSM(t, t.TempDir(), nil)
	defer clean.Close()
	applyAll(t, clean, logs)
	if checksum(t, f) != checksum(t, clean) {
		t.Fatal("overlapping replay after restart differs from a single pass")
	}
}

func TestFSM_NonCommandEntries(t *testing.T) {
	h := newHarness(t)
	for i, typ := range []raft.LogType{raft.LogConfiguration, raft.LogBarrier, raft.LogNoop} {
		r := asResponse(t, h.f.Apply(&raft.Log{Index: uint64(i + 1), Term: 1, Type: typ}))
		if r.Code != "" || r.Body != nil || r.Err() != nil {
			t.Fatalf("%s entry: response %+v, want empty", typ, r)
		}
	}
	if h.f.AppliedIndex() != 3 {
		t.Fatalf("applied index = %d, want 3", h.f.AppliedIndex())
	}
	res := h.f.ApplyBatch([]*raft.Log{nil, {Index: 4, Type: raft.LogCommand, Data: []byte("garbage")}})
	if asResponse(t, res[0]).Code != "" || asResponse(t, res[1]).Code != CodeInvalid {
		t.Fatalf("responses = %+v, %+v", res[0], res[1])
	}
}
