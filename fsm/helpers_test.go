package fsm

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"

	"github.com/keyward/keyward/fsm/seal"
)

// Fixed identifiers used across the tests.
const (
	vaultA   VaultID   = "vault_aaaaaaaaaaaaaaaa"
	vaultB   VaultID   = "vault_bbbbbbbbbbbbbbbb"
	projA    ProjectID = "proj_aaaaaaaaaa"
	projA2   ProjectID = "proj_aaaaaaaaa2"
	projB    ProjectID = "proj_bbbbbbbbbb"
	secA     SecretID  = "sk_aaaaaaaaaa"
	secA2    SecretID  = "sk_aaaaaaaaa2"
	secB     SecretID  = "sk_bbbbbbbbbb"
	machine1 MachineID = "11111111-1111-4111-8111-111111111111"
	machine2 MachineID = "22222222-2222-4222-9222-222222222222"
	machine3 MachineID = "33333333-3333-4333-a333-333333333333"
)

// baseTime is the command time at the start of each test:
// 2026-01-10T00:00:00Z.
var baseTime = time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)

func ms(t time.Time) int64 { return t.UnixMilli() }

// tokenHash returns the stored form of a bootstrap or admin token.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// publicKey returns a valid Ed25519 public key derived from seed.
func publicKey(seed byte) []byte {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed
	}
	return ed25519.NewKeyFromSeed(s).Public().(ed25519.PublicKey)
}

func testKeyring(t testing.TB) *seal.Keyring {
	t.Helper()
	root := make([]byte, seal.KeySize)
	for i := range root {
		root[i] = byte(i + 1)
	}
	k, err := seal.NewKeyring(root)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// openFSM opens an FSM on a real directory, or on an in-memory filesystem
// when fs is not nil.
func openFSM(t testing.TB, dir string, fs vfs.FS) *FSM {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.FS = fs
	cfg.Keyring = testKeyring(t)
	f, err := Open(cfg, nil)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return f
}

// proposer builds log entries the way a leader would: increasing indexes,
// a command time it controls, and sealed values made with the keyring.
type proposer struct {
	t       testing.TB
	keyring *seal.Keyring
	index   uint64
	now     int64
	actor   Actor
	// projectKeys remembers wrapped project keys for sealing.
	projectKeys map[ProjectID][]byte
}

func newProposer(t testing.TB) *proposer {
	return &proposer{
		t:           t,
		keyring:     testKeyring(t),
		now:         ms(baseTime),
		actor:       Actor{Kind: "user", ID: "tok_operator", SourceIP: "192.0.2.10"},
		projectKeys: make(map[ProjectID][]byte),
	}
}

// entry returns the next log entry for a command of typ with payload.
func (p *proposer) entry(typ CommandType, payload any) *raft.Log {
	return p.entryWithID(typ, "", payload)
}

func (p *proposer) entryWithID(typ CommandType, requestID string, payload any) *raft.Log {
	p.t.Helper()
	cmd, err := NewCommand(typ, p.now, p.actor, payload)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd.RequestID = requestID
	cmd.Node = "node-1"
	data, err := EncodeCommand(cmd)
	if err != nil {
		p.t.Fatal(err)
	}
	p.index++
	return &raft.Log{Index: p.index, Term: 1, Type: raft.LogCommand, Data: data}
}

func (p *proposer) projectKey(id ProjectID) []byte {
	p.t.Helper()
	if k, ok := p.projectKeys[id]; ok {
		return k
	}
	k, err := p.keyring.NewProjectKey()
	if err != nil {
		p.t.Fatal(err)
	}
	p.projectKeys[id] = k
	return k
}

func (p *proposer) seal(project ProjectID, secret SecretID, value string) Sealed {
	p.t.Helper()
	s, err := p.keyring.Seal(p.projectKey(project), string(secret), []byte(value))
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

// harness applies entries from a proposer to one FSM.
type harness struct {
	*proposer
	f *FSM
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	f := openFSM(t, t.TempDir(), nil)
	t.Cleanup(func() { f.Close() })
	return &harness{proposer: newProposer(t), f: f}
}

// newMemHarness uses Pebble's in-memory filesystem, for tests that open
// many stores.
func newMemHarness(t testing.TB) *harness {
	t.Helper()
	f := openFSM(t, "mem", vfs.NewMem())
	t.Cleanup(func() { f.Close() })
	return &harness{proposer: newProposer(t), f: f}
}

func (h *harness) apply(typ CommandType, payload any) *Response {
	h.t.Helper()
	return asResponse(h.t, h.f.Apply(h.entry(typ, payload)))
}

// mustApply applies a command that must succeed and decodes its body into
// out when out is not nil.
func (h *harness) mustApply(typ CommandType, payload any, out any) {
	h.t.Helper()
	r := h.apply(typ, payload)
	if r.Code != "" {
		h.t.Fatalf("%s rejected: %s: %s", typ, r.Code, r.Message)
	}
	if out != nil {
		if err := json.Unmarshal(r.Body, out); err != nil {
			h.t.Fatalf("%s body: %v", typ, err)
		}
	}
}

// expectReject applies a command that must fail with sentinel.
func (h *harness) expectReject(typ CommandType, payload any, sentinel error) *Response {
	h.t.Helper()
	before := dataRecords(h.t, h.f)
	r := h.apply(typ, payload)
	if !errors.Is(r.Err(), sentinel) {
		h.t.Fatalf("%s: got code %q (%s), want %v", typ, r.Code, r.Message, sentinel)
	}
	if r.Body != nil {
		h.t.Fatalf("%s: rejected command has a body %s", typ, r.Body)
	}
	if after := dataRecords(h.t, h.f); !slices.Equal(after, before) {
		h.t.Fatalf("%s: rejected command changed the state", typ)
	}
	return r
}

func asResponse(t testing.TB, v any) *Response {
	t.Helper()
	r, ok := v.(*Response)
	if !ok || r == nil {
		t.Fatalf("apply returned %T %v, want a non-nil *Response", v, v)
	}
	return r
}

func checksum(t testing.TB, f *FSM) string {
	t.Helper()
	sum, err := f.Checksum()
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// dump returns every key and value of the store, in key order.
func dump(t testing.TB, f *FSM) []string {
	t.Helper()
	var out []string
	iter, err := f.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer iter.Close()
	for iter.First(); iter.Valid(); iter.Next() {
		out = append(out, fmt.Sprintf("%s=%s", iter.Key(), iter.Value()))
	}
	return out
}

// dataRecords returns the records of objects, leaving out the meta records
// (applied index, prune cutoff) that every entry may move.
func dataRecords(t testing.TB, f *FSM) []string {
	t.Helper()
	return slices.DeleteFunc(dump(t, f), func(kv string) bool { return strings.HasPrefix(kv, prefixMeta) && !strings.HasPrefix(kv, keyInit) })
}

// Payload builders for a standard setup.

func (h *harness) setupVault(id VaultID) {
	h.t.Helper()
	h.mustApply(CmdCreateVault, CreateVaultPayload{ID: id, Name: "vault " + string(id[len(id)-4:])}, nil)
}

func (h *harness) setupProject(vault VaultID, id ProjectID, name string) {
	h.t.Helper()
	h.mustApply(CmdCreateProject, CreateProjectPayload{ID: id, VaultID: vault, Name: name, WrappedKey: h.projectKey(id)}, nil)
}

func (h *harness) setupSecret(project ProjectID, id SecretID, name, value string) {
	h.t.Helper()
	h.mustApply(CmdCreateSecret, CreateSecretPayload{
		ID: id, ProjectID: project, Name: name, Type: SecretTypeSecret, Sealed: h.seal(project, id, value),
	}, nil)
}

func (h *harness) setupToken(vault VaultID, token, kind string, mutate func(*BootstrapToken)) {
	h.t.Helper()
	h.mustApply(CmdCreateBootstrapToken, CreateBootstrapTokenPayload{Token: bootstrapToken(h.now, vault, token, kind, mutate)}, nil)
}

func bootstrapToken(now int64, vault VaultID, token, kind string, mutate func(*BootstrapToken)) BootstrapToken {
	tok := BootstrapToken{
		ID:        "bt_" + token,
		Hash:      tokenHash(token),
		VaultID:   vault,
		Kind:      kind,
		ExpiresAt: now + ms10min,
		MaxUses:   1,
	}
	if kind == TokenKindTemp {
		tok.MachineName = "contractor-laptop"
		tok.Purpose = "incident response"
		tok.Lifetime = &Lifetime{Months: 1}
	}
	if mutate != nil {
		mutate(&tok)
	}
	return tok
}

const ms10min = int64(10 * time.Minute / time.Millisecond)

// setupMachine registers a machine through a fresh token of kind and
// returns it.
func (h *harness) setupMachine(vault VaultID, id MachineID, kind string, seed byte) Machine {
	h.t.Helper()
	token := fmt.Sprintf("tok-%s", id)
	h.setupToken(vault, token, kind, nil)
	var m Machine
	h.mustApply(CmdRegisterMachine, RegisterMachinePayload{
		TokenHash: tokenHash(token), VaultID: vault, MachineID: id, PublicKey: publicKey(seed), Hostname: "host-" + string(id[:4]),
	}, &m)
	return m
}

// setupActiveTemp registers and approves a temp machine with a one-month
// lifetime.
func (h *harness) setupActiveTemp(vault VaultID, id MachineID, seed byte) Machine {
	h.t.Helper()
	h.setupMachine(vault, id, TokenKindTemp, seed)
	var m Machine
	h.mustApply(CmdSetMachineStatus, SetMachineStatusPayload{VaultID: vault, MachineID: id, Action: ActionApprove}, &m)
	return m
}

func (h *harness) machine(id MachineID) Machine {
	h.t.Helper()
	e, ok := h.f.Machine(id)
	if !ok {
		h.t.Fatalf("machine %s not in the index", id)
	}
	return e.Machine
}

func mustAddr(t testing.TB, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

func raftCommand(index uint64, data []byte) *raft.Log {
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
}
