package fsm

import (
	"bytes"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/keyward/keyward/fsm/seal"
	"github.com/keyward/keyward/guard"
)

// shardCount is the number of independently locked shards of each index.
// Readers of different ids take different locks, so parallel lookups do not
// contend on one reader count.
const shardCount = 64

// shardedMap is a map split into shards, each behind its own RWMutex.
// Values are immutable once stored: a change stores a new value.
type shardedMap[K ~string, V any] struct {
	shards [shardCount]mapShard[K, V]
}

type mapShard[K ~string, V any] struct {
	mu sync.RWMutex
	m  map[K]V
	// pad keeps neighbouring shard locks on separate cache lines.
	_ [32]byte
}

func newShardedMap[K ~string, V any]() *shardedMap[K, V] {
	s := &shardedMap[K, V]{}
	for i := range s.shards {
		s.shards[i].m = make(map[K]V)
	}
	return s
}

// shardOf hashes a key with FNV-1a, which needs no allocation, and mixes
// the result with MurmurHash3's finalizer. FNV-1a alone spreads ids that
// differ only in their last characters poorly over its low bits: 100,000
// machine ids fell into 16 of the 64 shards.
func shardOf[K ~string](k K) int {
	h := uint32(2166136261)
	for i := 0; i < len(k); i++ {
		h ^= uint32(k[i])
		h *= 16777619
	}
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return int(h % shardCount)
}

func (s *shardedMap[K, V]) get(k K) (V, bool) {
	sh := &s.shards[shardOf(k)]
	sh.mu.RLock()
	v, ok := sh.m[k]
	sh.mu.RUnlock()
	return v, ok
}

func (s *shardedMap[K, V]) set(k K, v V) {
	sh := &s.shards[shardOf(k)]
	sh.mu.Lock()
	sh.m[k] = v
	sh.mu.Unlock()
}

func (s *shardedMap[K, V]) del(k K) {
	sh := &s.shards[shardOf(k)]
	sh.mu.Lock()
	delete(sh.m, k)
	sh.mu.Unlock()
}

// values returns every value, in no particular order.
func (s *shardedMap[K, V]) values() []V {
	var out []V
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for _, v := range sh.m {
			out = append(out, v)
		}
		sh.mu.RUnlock()
	}
	return out
}

// MachineEntry is the fast path's view of a machine: the record, its
// checked public key and its compiled guardrails. An entry is immutable
// once published, because a change publishes a new entry. A reader may
// therefore keep and use an entry without locks, and must not modify it or
// anything it points to.
//
// The entry is sized for a million machines. The key is the 32 raw bytes,
// because guard.KeyCache keeps expanded keys for the machines that sign
// requests. Repeated strings such as the vault id and the project and
// secret ids share one copy. Memberships are looked up in the record's own
// lists unless a list is long.
type MachineEntry struct {
	Machine Machine
	// Key is the machine's public key. It points into the entry.
	Key    *guard.PublicKey
	Policy *guard.Policy // nil when the machine has no guardrails

	// projectSet and grantSet index Machine.Projects and Machine.Grants
	// when they hold more than maxScannedMembers ids, and are nil
	// otherwise.
	projectSet map[ProjectID]struct{}
	grantSet   map[SecretID]struct{}
	key        guard.PublicKey
}

// maxScannedMembers is the longest membership list that HasProject and
// HasGrant scan rather than index. A scan of 16 short ids takes about as
// long as a map lookup, and a map costs about 190 bytes per machine.
const maxScannedMembers = 16

// HasProject reports whether the machine is attached to project.
func (e *MachineEntry) HasProject(project ProjectID) bool {
	if e.projectSet != nil {
		_, ok := e.projectSet[project]
		return ok
	}
	return slices.Contains(e.Machine.Projects, project)
}

// HasGrant reports whether the machine holds an explicit grant for secret.
func (e *MachineEntry) HasGrant(secret SecretID) bool {
	if e.grantSet != nil {
		_, ok := e.grantSet[secret]
		return ok
	}
	return slices.Contains(e.Machine.Grants, secret)
}

// tokenIDKey is the key of a bootstrap token's public id: ids are unique
// within a vault only.
func tokenIDKey(vault VaultID, id string) string {
	return string(vault) + "/" + id
}

// newMachineEntry builds the entry of m, which it takes ownership of: the
// strings of m are replaced by shared copies of equal value.
func newMachineEntry(m Machine, key *guard.PublicKey, policy *guard.Policy) *MachineEntry {
	internMachine(&m)
	e := &MachineEntry{Machine: m, Policy: policy, key: *key}
	e.Key = &e.key
	// The record and the key hold the same 32 bytes, so keep one copy.
	if raw := e.key.Array(); bytes.Equal(m.PublicKey, raw[:]) {
		e.Machine.PublicKey = raw[:]
	}
	if len(m.Projects) > maxScannedMembers {
		e.projectSet = make(map[ProjectID]struct{}, len(m.Projects))
		for _, p := range m.Projects {
			e.projectSet[p] = struct{}{}
		}
	}
	if len(m.Grants) > maxScannedMembers {
		e.grantSet = make(map[SecretID]struct{}, len(m.Grants))
		for _, s := range m.Grants {
			e.grantSet[s] = struct{}{}
		}
	}
	return e
}

// vaultEntry is a vault with its allowlist compiled; allowlist is nil when
// the allowlist is disabled.
type vaultEntry struct {
	vault     *Vault
	allowlist *guard.Allowlist
}

// secretEntry is a secret's metadata with its current sealed value and the
// wrapped key of its project, so that SecretValue reads no disk. opener is
// set by the first read of the value and keeps its unwrapped data key, so
// that later reads decrypt without unwrapping keys or allocating.
type secretEntry struct {
	meta       *Secret
	current    Sealed
	projectKey []byte
	opener     atomic.Pointer[seal.Opener]
}

// indexes is the in-memory copy of the state that reads are served from.
// One applier writes it, after each Pebble commit; any number of readers
// read it concurrently. Restore builds a new indexes and swaps the pointer.
type indexes struct {
	initialized atomic.Bool
	vaults      *shardedMap[VaultID, *vaultEntry]
	projects    *shardedMap[ProjectID, *Project]
	secrets     *shardedMap[SecretID, *secretEntry]
	machines    *machineCache
	adminTokens *shardedMap[string, *AdminToken]

	// listMu guards the membership sets that listing calls walk. They hold
	// ids only; the objects live in the sharded maps above.
	listMu           sync.RWMutex
	projectsByVault  map[VaultID]map[ProjectID]struct{}
	secretsByProject map[ProjectID]map[SecretID]struct{}
}

// newIndexes returns empty indexes whose machine cache reads st and holds
// at most machineCacheEntries entries (0 means the default).
func newIndexes(st *store, machineCacheEntries int) *indexes {
	return &indexes{
		vaults:           newShardedMap[VaultID, *vaultEntry](),
		projects:         newShardedMap[ProjectID, *Project](),
		secrets:          newShardedMap[SecretID, *secretEntry](),
		machines:         newMachineCache(st, machineCacheEntries),
		adminTokens:      newShardedMap[string, *AdminToken](),
		projectsByVault:  make(map[VaultID]map[ProjectID]struct{}),
		secretsByProject: make(map[ProjectID]map[SecretID]struct{}),
	}
}

// addMember adds id to the set of owner in sets. The caller holds listMu.
func addMember[O, I comparable](sets map[O]map[I]struct{}, owner O, id I) {
	set := sets[owner]
	if set == nil {
		set = make(map[I]struct{})
		sets[owner] = set
	}
	set[id] = struct{}{}
}

// members returns a copy of the ids in the set of owner.
func members[O, I comparable](mu *sync.RWMutex, sets map[O]map[I]struct{}, owner O) []I {
	mu.RLock()
	defer mu.RUnlock()
	set := sets[owner]
	out := make([]I, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	return out
}

// publish installs one committed change. Each change replaces exactly one
// slot and the membership sets only grow (apart from machine purge and
// secret delete), so the order in which changes of a batch are published
// does not matter.
func (ix *indexes) publish(c *change) {
	switch c.kind {
	case kindInit:
		ix.initialized.Store(true)
	case kindVault:
		v := c.entry.(*vaultEntry)
		ix.vaults.set(v.vault.ID, v)
	case kindProject:
		ix.publishProject(c.entry.(*Project))
	case kindSecret:
		if c.deleted {
			ix.deleteSecret(SecretID(c.id))
			return
		}
		ix.publishSecret(c.entry.(*secretEntry))
	case kindMachine:
		ix.publishMachine(c)
	case kindAdminToken:
		tok := c.entry.(*AdminToken)
		ix.adminTokens.set(tok.Hash, tok)
	}
}

func (ix *indexes) publishProject(p *Project) {
	ix.projects.set(p.ID, p)
	ix.listMu.Lock()
	addMember(ix.projectsByVault, p.VaultID, p.ID)
	ix.listMu.Unlock()
}

func (ix *indexes) publishSecret(s *secretEntry) {
	ix.secrets.set(s.meta.ID, s)
	ix.listMu.Lock()
	addMember(ix.secretsByProject, s.meta.ProjectID, s.meta.ID)
	ix.listMu.Unlock()
}

func (ix *indexes) deleteSecret(id SecretID) {
	old, ok := ix.secrets.get(id)
	ix.secrets.del(id)
	if ok {
		ix.listMu.Lock()
		delete(ix.secretsByProject[old.meta.ProjectID], id)
		ix.listMu.Unlock()
	}
}

func (ix *indexes) publishMachine(c *change) {
	if c.deleted {
		ix.machines.publish(MachineID(c.id), nil)
		return
	}
	ix.machines.publish(MachineID(c.id), c.entry.(*MachineEntry))
}
