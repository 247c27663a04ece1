package fsm

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// recordKind selects the index that publish updates for a change.
type recordKind int

const (
	kindInit recordKind = iota + 1
	kindVault
	kindProject
	kindSecret
	kindSecretVersion
	kindMachine
	kindAdminToken
	kindBootstrapToken
)

// change is one staged write: the Pebble key and value, and the object to
// publish to the indexes once the batch commits. entry is nil for kinds
// that are not indexed (secret versions).
type change struct {
	key     string
	kind    recordKind
	id      string
	value   []byte
	deleted bool
	entry   any
}

// tx accumulates the effects of a run of log entries in one indexed Pebble
// batch. Reads during apply see, in order: the writes of the command being
// applied, the writes of earlier commands of the batch, then the committed
// indexes. A command's writes are staged and reach the batch only when the
// command succeeds, so a rejected command leaves no trace.
type tx struct {
	idx   *indexes
	batch *pebble.Batch

	// pending holds the writes of the batch's successful commands by key;
	// order lists them in the order they were first written.
	pending map[string]*change
	order   []*change

	// staged holds the writes of the command being applied.
	staged      map[string]*change
	stagedOrder []*change

	// tokenIDs maps the vault and id of each bootstrap token written by a
	// committed command of the batch to its hash.
	tokenIDs map[string]string

	// pruneCutoff is the idempotency prune cutoff, in command time.
	pruneCutoff int64
}

func newTx(db *pebble.DB, idx *indexes, pruneCutoff int64) *tx {
	return &tx{
		idx:         idx,
		batch:       db.NewIndexedBatch(),
		pending:     make(map[string]*change),
		staged:      make(map[string]*change),
		tokenIDs:    make(map[string]string),
		pruneCutoff: pruneCutoff,
	}
}

// lookup returns the newest uncommitted change to key, if any.
func (t *tx) lookup(key string) (*change, bool) {
	if c, ok := t.staged[key]; ok {
		return c, true
	}
	c, ok := t.pending[key]
	return c, ok
}

// stage records a write of the current command. record is stored as JSON;
// entry is what the indexes publish.
func (t *tx) stage(kind recordKind, key, id string, record, entry any) {
	value, err := json.Marshal(record)
	if err != nil {
		// Every record type is a plain struct; failing to encode one is a
		// programming error that would otherwise diverge replicas.
		panic(fmt.Sprintf("fsm: encode %s: %v (replicas would diverge)", key, err))
	}
	t.stageChange(&change{key: key, kind: kind, id: id, value: value, entry: entry})
}

// stageDelete records the removal of key by the current command.
func (t *tx) stageDelete(kind recordKind, key, id string) {
	t.stageChange(&change{key: key, kind: kind, id: id, deleted: true})
}

// stageChange keeps one change per key: a second write to a key replaces
// the first in place, so its position in the order stays that of the first.
func (t *tx) stageChange(c *change) {
	if old, ok := t.staged[c.key]; ok {
		*old = *c
		return
	}
	t.staged[c.key] = c
	t.stagedOrder = append(t.stagedOrder, c)
}

// commitCommand moves the staged writes of a successful command into the
// batch, in the order they were made.
func (t *tx) commitCommand() {
	for _, c := range t.stagedOrder {
		if c.kind == kindMachine {
			var next *Machine
			if !c.deleted {
				next = &c.entry.(*MachineEntry).Machine
			}
			t.indexMachineChange(t.committedMachine(MachineID(c.id)), next)
		}
		if c.deleted {
			t.mustDelete(c.key)
		} else {
			t.mustSet(c.key, c.value)
		}
		if c.kind == kindBootstrapToken {
			tok := c.entry.(*BootstrapToken)
			t.tokenIDs[tokenIDKey(tok.VaultID, tok.ID)] = tok.Hash
			t.mustSet(tokenIDIndexKey(tok.VaultID, tok.ID), []byte(tok.Hash))
		}
		if old, ok := t.pending[c.key]; ok {
			*old = *c
			continue
		}
		t.pending[c.key] = c
		t.order = append(t.order, c)
	}
	t.dropCommand()
}

// dropCommand discards the staged writes of a rejected command.
func (t *tx) dropCommand() {
	clear(t.staged)
	t.stagedOrder = t.stagedOrder[:0]
}

// mustSet writes to the batch. Pebble rejects a write only when the batch
// would pass its 4 GiB limit, far above what a run of entries writes.
func (t *tx) mustSet(key string, value []byte) {
	if err := t.batch.Set([]byte(key), value, nil); err != nil {
		panic(fmt.Sprintf("fsm: batch set %s: %v (replicas would diverge)", key, err))
	}
}

func (t *tx) mustDelete(key string) {
	if err := t.batch.Delete([]byte(key), nil); err != nil {
		panic(fmt.Sprintf("fsm: batch delete %s: %v (replicas would diverge)", key, err))
	}
}

// get reads a raw value through the batch, for records that are not
// indexed in memory (idempotency records, secret versions).
func (t *tx) get(key string) ([]byte, bool) {
	v, closer, err := t.batch.Get([]byte(key))
	if err == pebble.ErrNotFound {
		return nil, false
	}
	if err != nil {
		panic(fmt.Sprintf("fsm: read %s during apply: %v (replicas would diverge)", key, err))
	}
	out := slices.Clone(v)
	closer.Close()
	return out, true
}

func (t *tx) close() {
	t.batch.Close()
}

// pendingEntry returns the uncommitted entry stored at key. found is false
// when key has no uncommitted change; a found deletion returns ok false.
func pendingEntry[V any](t *tx, key string) (v V, ok, found bool) {
	c, found := t.lookup(key)
	if !found {
		return v, false, false
	}
	if c.deleted {
		return v, false, true
	}
	return c.entry.(V), true, true
}

func (t *tx) vault(id VaultID) (*vaultEntry, bool) {
	if v, ok, found := pendingEntry[*vaultEntry](t, vaultKey(id)); found {
		return v, ok
	}
	return t.idx.vaults.get(id)
}

func (t *tx) project(id ProjectID) (*Project, bool) {
	if v, ok, found := pendingEntry[*Project](t, projectKey(id)); found {
		return v, ok
	}
	return t.idx.projects.get(id)
}

func (t *tx) secret(id SecretID) (*secretEntry, bool) {
	if v, ok, found := pendingEntry[*secretEntry](t, secretKey(id)); found {
		return v, ok
	}
	return t.idx.secrets.get(id)
}

func (t *tx) machine(id MachineID) (*MachineEntry, bool) {
	if v, ok, found := pendingEntry[*MachineEntry](t, machineKey(id)); found {
		return v, ok
	}
	return t.idx.machines.get(id)
}

func (t *tx) adminToken(hash string) (*AdminToken, bool) {
	if v, ok, found := pendingEntry[*AdminToken](t, adminTokenKey(hash)); found {
		return v, ok
	}
	return t.idx.adminTokens.get(hash)
}

// bootstrapToken reads a token from the batch, which reads through to the
// store: tokens are not held in memory.
func (t *tx) bootstrapToken(hash string) (*BootstrapToken, bool) {
	if v, ok, found := pendingEntry[*BootstrapToken](t, bootstrapKey(hash)); found {
		return v, ok
	}
	raw, ok := t.get(bootstrapKey(hash))
	if !ok {
		return nil, false
	}
	var tok BootstrapToken
	if err := json.Unmarshal(raw, &tok); err != nil {
		panic(fmt.Sprintf("fsm: decode bootstrap token %s during apply: %v (replicas would diverge)", hash, err))
	}
	return &tok, true
}

func (t *tx) initialized() bool {
	if _, found := t.lookup(keyInit); found {
		return true
	}
	return t.idx.initialized.Load()
}

// uncommittedIDs returns the ids of uncommitted changes of kind, in the
// order they were made.
func (t *tx) uncommittedIDs(kind recordKind) []string {
	var ids []string
	for _, list := range [][]*change{t.order, t.stagedOrder} {
		for _, c := range list {
			if c.kind == kind && !c.deleted {
				ids = append(ids, c.id)
			}
		}
	}
	return ids
}

// adminTokens returns every admin token, committed or staged in this
// batch, sorted by id.
func (t *tx) adminTokens() []*AdminToken {
	hashes := t.uncommittedIDs(kindAdminToken)
	for _, tok := range t.idx.adminTokens.values() {
		hashes = append(hashes, tok.Hash)
	}
	slices.Sort(hashes)
	hashes = slices.Compact(hashes)

	out := make([]*AdminToken, 0, len(hashes))
	for _, h := range hashes {
		if tok, ok := t.adminToken(h); ok {
			out = append(out, tok)
		}
	}
	slices.SortFunc(out, func(a, b *AdminToken) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// adminTokenByID returns the admin token with a public id.
func (t *tx) adminTokenByID(id string) (*AdminToken, bool) {
	for _, tok := range t.adminTokens() {
		if tok.ID == id {
			return tok, true
		}
	}
	return nil, false
}

// rootOwnerCount counts the usable owner tokens for every vault.
func (t *tx) rootOwnerCount() int {
	n := 0
	for _, tok := range t.adminTokens() {
		if isRootOwner(tok) {
			n++
		}
	}
	return n
}

// machinesGranted returns the machines of vault that hold a grant for
// secret, committed or staged in this batch, sorted by id. It reads the
// mgrant/ records through the batch, so its cost follows the machines
// granted, not the machines of the vault.
func (t *tx) machinesGranted(vault VaultID, secret SecretID) []*MachineEntry {
	var ids []MachineID
	prefix := machineGrantPrefix(secret)
	err := scanIDs(t.batch, prefix, prefixEnd(prefix), func(id string) bool {
		ids = append(ids, MachineID(id))
		return true
	})
	if err != nil {
		panic(fmt.Sprintf("fsm: list the machines granted %s during apply: %v (replicas would diverge)", secret, err))
	}
	for _, id := range t.uncommittedIDs(kindMachine) {
		ids = append(ids, MachineID(id))
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)

	var out []*MachineEntry
	for _, id := range ids {
		if e, ok := t.machine(id); ok && e.Machine.VaultID == vault && e.HasGrant(secret) {
			out = append(out, e)
		}
	}
	return out
}

// vaultNamed returns the id of a vault called name, committed or staged
// in this batch. Names compare exactly.
func (t *tx) vaultNamed(name string) (VaultID, bool) {
	for _, id := range t.uncommittedIDs(kindVault) {
		if v, ok := t.vault(VaultID(id)); ok && v.vault.Name == name {
			return v.vault.ID, true
		}
	}
	for _, v := range t.idx.vaults.values() {
		if v.vault.Name == name {
			return v.vault.ID, true
		}
	}
	return "", false
}

// projectsInVault returns the projects of vault, sorted by id.
func (t *tx) projectsInVault(vault VaultID) []*Project {
	ids := members(&t.idx.listMu, t.idx.projectsByVault, vault)
	for _, id := range t.uncommittedIDs(kindProject) {
		ids = append(ids, ProjectID(id))
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)

	var out []*Project
	for _, id := range ids {
		if p, ok := t.project(id); ok && p.VaultID == vault {
			out = append(out, p)
		}
	}
	return out
}

// secretsInProject returns the secrets of project, sorted by id.
func (t *tx) secretsInProject(project ProjectID) []*Secret {
	ids := members(&t.idx.listMu, t.idx.secretsByProject, project)
	for _, id := range t.uncommittedIDs(kindSecret) {
		ids = append(ids, SecretID(id))
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)

	var out []*Secret
	for _, id := range ids {
		if s, ok := t.secret(id); ok && s.meta.ProjectID == project {
			out = append(out, s.meta)
		}
	}
	return out
}

// bootstrapTokenByID returns the bootstrap token of vault with a public
// id. Ids map to hashes through tokenIDs (uncommitted) and the btid/
// records, so the lookup does not walk the vault's tokens.
func (t *tx) bootstrapTokenByID(vault VaultID, id string) (*BootstrapToken, bool) {
	key := tokenIDKey(vault, id)
	hash, ok := t.tokenIDs[key]
	if !ok {
		raw, found := t.get(tokenIDIndexKey(vault, id))
		if !found {
			return nil, false
		}
		hash = string(raw)
	}
	return t.bootstrapToken(hash)
}
