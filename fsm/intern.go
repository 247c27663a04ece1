package fsm

import (
	"sync"
	"unique"
)

// The indexes hold one record per machine and per token, and most of their
// strings repeat across records: a vault id, a kind, a status, the ids of
// the projects and secrets a fleet shares. Records decoded from JSON carry
// a private copy of each, so the indexes replace them with one shared copy
// per value. Strings are immutable, so sharing cannot change a record.

// intern returns a copy of s that shares its bytes with every other
// interned string of equal value.
func intern[S ~string](s S) S {
	if s == "" {
		return s
	}
	return S(unique.Make(string(s)).Value())
}

// internIDs interns each id of ids in place. The caller owns ids.
func internIDs[S ~string](ids []S) {
	for i, id := range ids {
		ids[i] = intern(id)
	}
}

// internMachine interns the strings of m that machines share. A list of
// one project or one grant, the common case, is replaced by a list shared
// with every machine that has the same one. Sharing is safe because
// entries never change their lists in place: cloneMachine copies them
// first.
func internMachine(m *Machine) {
	m.VaultID = intern(m.VaultID)
	m.Kind = intern(m.Kind)
	m.Status = intern(m.Status)
	m.Purpose = intern(m.Purpose)
	if len(m.Projects) == 1 {
		m.Projects = sharedList(&singleProjects, intern(m.Projects[0]))
	} else {
		internIDs(m.Projects)
	}
	if len(m.Grants) == 1 {
		m.Grants = sharedList(&singleGrants, intern(m.Grants[0]))
	} else {
		internIDs(m.Grants)
	}
}

// singleLists holds one shared one-element list per id.
type singleLists[S ~string] struct {
	mu    sync.Mutex
	lists map[S][]S
}

// NOTE: the lists of ids that no machine uses any more stay, about 80 bytes
// each, for the life of the process.
var (
	singleProjects singleLists[ProjectID]
	singleGrants   singleLists[SecretID]
)

// sharedList returns the shared list that holds only id. Its capacity is
// one, so an append copies it.
func sharedList[S ~string](t *singleLists[S], id S) []S {
	t.mu.Lock()
	defer t.mu.Unlock()
	if list, ok := t.lists[id]; ok {
		return list
	}
	if t.lists == nil {
		t.lists = make(map[S][]S)
	}
	list := []S{id}
	t.lists[id] = list
	return list
}
