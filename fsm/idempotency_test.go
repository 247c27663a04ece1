package fsm

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestFSM_RetriedRequestAppliesOnce models a write whose outcome the
// client could not learn: the same extension, with the same request id,
// reaches the log twice. The second entry returns the first response and
// the expiry moves once.
func TestFSM_RetriedRequestAppliesOnce(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	m := h.setupActiveTemp(vaultA, machine1, 1)
	target := m.ExpiresAt + int64(30*24*time.Hour/time.Millisecond)

	p := h.extend(machine1, "ext-r77", target)
	first := asResponse(t, h.f.Apply(h.entryWithID(CmdExtendMachine, "r-77", p)))
	h.now += 5000 // the retry is proposed later, through another node
	second := asResponse(t, h.f.Apply(h.entryWithID(CmdExtendMachine, "r-77", p)))

	if first.Code != "" || !bytes.Equal(first.Body, second.Body) || second.Code != "" {
		t.Fatalf("responses differ:\nfirst  %+v\nsecond %+v", first, second)
	}
	got := h.machine(machine1)
	if got.ExpiresAt != target || len(got.Extensions) != 1 {
		t.Fatalf("expiry %d with %d extensions, want %d with 1", got.ExpiresAt, len(got.Extensions), target)
	}
}

func TestFSM_RetriedRejectionKeepsItsResponse(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	p := CreateProjectPayload{ID: projA, VaultID: vaultB, Name: "p", WrappedKey: h.projectKey(projA)}
	first := asResponse(t, h.f.Apply(h.entryWithID(CmdCreateProject, "r-1", p)))
	h.setupVault(vaultB)
	second := asResponse(t, h.f.Apply(h.entryWithID(CmdCreateProject, "r-1", p)))

	if first.Code != CodeNotFound || second.Code != CodeNotFound {
		t.Fatalf("codes %q then %q, want not_found twice: a retry returns the first outcome", first.Code, second.Code)
	}
	if _, ok := h.f.Project(projA); ok {
		t.Fatal("the retry applied the command")
	}
}

func TestFSM_DuplicateRequestInOneBatch(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	m := h.setupActiveTemp(vaultA, machine1, 1)
	p := h.extend(machine1, "ext-1", m.ExpiresAt+1000)

	res := h.f.ApplyBatch([]*raft.Log{
		h.entryWithID(CmdExtendMachine, "r-1", p),
		h.entryWithID(CmdExtendMachine, "r-1", p),
	})
	a, b := asResponse(t, res[0]), asResponse(t, res[1])
	if a.Code != "" || !bytes.Equal(a.Body, b.Body) {
		t.Fatalf("responses %+v and %+v, want the same success", a, b)
	}
	if n := len(h.machine(machine1).Extensions); n != 1 {
		t.Fatalf("%d extensions, want 1", n)
	}
}

func TestFSM_RequestRecordsPruned(t *testing.T) {
	h := newHarness(t)
	h.setupVault(vaultA)
	h.f.Apply(h.entryWithID(CmdCreateProject, "r-old", CreateProjectPayload{ID: projA, VaultID: vaultA, Name: "a", WrappedKey: h.projectKey(projA)}))
	if !hasKey(t, h.f, requestKey("r-old")) {
		t.Fatal("no idempotency record stored")
	}

	// Just inside the window the record is kept.
	h.now += int64(24*time.Hour/time.Millisecond) - pruneStepMs
	h.setupVault(vaultB)
	if !hasKey(t, h.f, requestKey("r-old")) {
		t.Fatal("record pruned before the window passed")
	}

	h.now += 2 * pruneStepMs
	h.f.Apply(h.entryWithID(CmdCreateProject, "r-new", CreateProjectPayload{ID: projB, VaultID: vaultB, Name: "b", WrappedKey: h.projectKey(projB)}))
	if hasKey(t, h.f, requestKey("r-old")) {
		t.Fatal("record older than the window not pruned")
	}
	for _, kv := range dump(t, h.f) {
		if strings.HasPrefix(kv, prefixRequestTime) && strings.Contains(kv, "r-old") {
			t.Fatal("time index of a pruned record left behind")
		}
	}
	if !hasKey(t, h.f, requestKey("r-new")) {
		t.Fatal("new record missing")
	}
}

func hasKey(t testing.TB, f *FSM, key string) bool {
	t.Helper()
	_, closer, err := f.db.Get([]byte(key))
	if err != nil {
		return false
	}
	closer.Close()
	return true
}
