package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/keyward/keyward/fsm/seal"
)

// ErrRootKeyMismatch means this node's root key differs from the one the
// cluster's state was sealed under. Such a node cannot open any secret, and
// whatever it seals no other node can open. It is a local error and has no
// Response code.
var ErrRootKeyMismatch = errors.New("fsm: root key mismatch")

// rootKeyState holds the outcome of the last VerifyRootKey that found
// something to check.
type rootKeyState struct {
	// mismatch is the error of that check, nil after a match.
	mismatch atomic.Pointer[error]
}

// rootKeyReference is the sealed value that VerifyRootKey opens: the check
// value stored by init or, on a cluster initialised before init stored
// one, the wrapped key of the first project in id order.
type rootKeyReference struct {
	check      []byte
	project    ProjectID
	projectKey []byte
}

// VerifyRootKey tests this node's root key against the replicated state.
// It opens the root key check value that init stored. A cluster initialised
// before init carried one is tested with the key of its first project in
// id order instead.
//
// checked is false when there is nothing to test yet: the FSM has no
// keyring, or the state has neither a check value nor a project. An error
// wrapping ErrRootKeyMismatch means the root key differs, and
// RootKeyMismatch returns that error until a later call finds a match.
// Other errors mean the state could not be read. Like SecretVersions it
// reads Pebble, so it must not run concurrently with Close.
func (f *FSM) VerifyRootKey() (checked bool, err error) {
	if f.cfg.Keyring == nil {
		return false, nil
	}
	if f.closed.Load() {
		return false, errClosed
	}
	snap := f.db.NewSnapshot()
	defer snap.Close()

	ref, found, err := readRootKeyReference(snap)
	if err != nil || !found {
		return false, err
	}
	if err := ref.open(f.cfg.Keyring); err != nil {
		f.rootKey.mismatch.Store(&err)
		return true, err
	}
	f.rootKey.mismatch.Store(nil)
	return true, nil
}

// RootKeyMismatch returns the error of the last VerifyRootKey that found a
// root key mismatch, or nil when no call did or a later one found a match.
// It does not read the store and is cheap enough for every request.
func (f *FSM) RootKeyMismatch() error {
	if p := f.rootKey.mismatch.Load(); p != nil {
		return *p
	}
	return nil
}

// readRootKeyReference reads the check value, or the first project when
// the init record has none.
//
// NOTE: on a cluster without a check value whose first project was created
// through a node with another root key, the nodes with the cluster's key
// fail the test and that node passes it.
func readRootKeyReference(r pebble.Reader) (rootKeyReference, bool, error) {
	var rec initRecord
	found, err := getJSON(r, keyInit, &rec)
	if err != nil {
		return rootKeyReference{}, false, err
	}
	if found && len(rec.RootKeyCheck) > 0 {
		return rootKeyReference{check: rec.RootKeyCheck}, true, nil
	}

	iter, err := r.NewIter(&pebble.IterOptions{
		LowerBound: []byte(prefixProject),
		UpperBound: []byte(prefixEnd(prefixProject)),
	})
	if err != nil {
		return rootKeyReference{}, false, fmt.Errorf("scan %s: %w", prefixProject, err)
	}
	defer iter.Close()
	if !iter.First() {
		return rootKeyReference{}, false, iter.Error()
	}
	value, err := iter.ValueAndErr()
	if err != nil {
		return rootKeyReference{}, false, fmt.Errorf("read %s: %w", iter.Key(), err)
	}
	var p Project
	if err := json.Unmarshal(value, &p); err != nil {
		return rootKeyReference{}, false, fmt.Errorf("decode %s: %w", iter.Key(), err)
	}
	return rootKeyReference{project: p.ID, projectKey: p.WrappedKey}, true, nil
}

// open tests keyring against the reference and returns an error wrapping
// ErrRootKeyMismatch when it does not open.
func (ref rootKeyReference) open(keyring *seal.Keyring) error {
	if ref.check != nil {
		if err := keyring.CheckRootKey(ref.check); err != nil {
			return fmt.Errorf("%w: this node's root key cannot open the root key check value that "+
				"`keyward init` stored; start this node with the cluster's --root-key-file", ErrRootKeyMismatch)
		}
		return nil
	}
	if err := keyring.CheckProjectKey(ref.projectKey); err != nil {
		return fmt.Errorf("%w: this node's root key cannot open the key of project %s, the first project "+
			"of a cluster initialised without a root key check value; start this node with the cluster's "+
			"--root-key-file", ErrRootKeyMismatch, ref.project)
	}
	return nil
}

// checkRootKeyCheckOf returns an error wrapping ErrSnapshotCorrupt when
// other holds a root key check value that f's keyring cannot open.
func (f *FSM) checkRootKeyCheckOf(other *FSM) error {
	if f.cfg.Keyring == nil || other.closed.Load() {
		return nil
	}
	var rec initRecord
	found, err := getJSON(other.db, keyInit, &rec)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSnapshotCorrupt, err)
	}
	if !found || len(rec.RootKeyCheck) == 0 {
		return nil
	}
	if err := f.cfg.Keyring.CheckRootKey(rec.RootKeyCheck); err != nil {
		return fmt.Errorf("%w: its root key check value was sealed under another root key "+
			"(restore a snapshot of a cluster that uses this cluster's root key file)", ErrSnapshotCorrupt)
	}
	return nil
}
