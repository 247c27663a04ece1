package fsm

import "fmt"

// CheckKeysOf reports whether other's root key check value and every
// project key in other were sealed under f's root key. A snapshot taken on
// a cluster with another root key passes every structural check but leaves
// each secret unreadable, so a restore checks this before it replaces the
// state. The error wraps ErrSnapshotCorrupt. Without a keyring on f there
// is nothing to check.
func (f *FSM) CheckKeysOf(other *FSM) error {
	if f.cfg.Keyring == nil {
		return nil
	}
	if err := f.checkRootKeyCheckOf(other); err != nil {
		return err
	}
	for _, v := range other.Vaults() {
		for _, p := range other.Projects(v.ID) {
			if err := f.cfg.Keyring.CheckProjectKey(p.WrappedKey); err != nil {
				return fmt.Errorf("%w: project %s was sealed under another root key "+
					"(restore a snapshot of a cluster that uses this cluster's root key file): %v",
					ErrSnapshotCorrupt, p.ID, err)
			}
		}
	}
	return nil
}
