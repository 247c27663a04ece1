package fsm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Machines live in the store and only the recently used ones in memory
// (machineCache), so two records in the store index them for the walks
// that cannot go through the cache:
//
//   - vmach/<vault id>/<machine id> lists the machines of a vault;
//   - mexp/<expiry, 20 digits>/<machine id> lists, in expiry order, the
//     machines that have an expiry and are neither expired nor revoked,
//     for the expiry sweep and the expiry warnings.
//
// Both are empty records written in the same batch as the machine, so
// they are replicated, snapshotted and checksummed like the rest.
//   - mgrant/<secret id>/<machine id> lists the machines granted a secret,
//     so that deleting a secret touches only the machines it was granted
//     to.
//
// Bootstrap tokens are read from the store too, and btid/<vault id>/<token
// id>, holding the token's hash, lists a vault's tokens and finds one by
// its public id.
const (
	prefixVaultMachine  = "vmach/"
	prefixMachineExpiry = "mexp/"
	prefixTokenID       = "btid/"
	prefixMachineGrant  = "mgrant/"
)

// keyMachineIndex marks a store whose index records (machines and token
// ids) are complete. Open and Restore build them for a store written
// before they existed.
const keyMachineIndex = prefixMeta + "machine-index"

// machineIndexVersion is the layout the marker records. Version 1 had no
// btid/ records and version 2 no mgrant/ records.
const machineIndexVersion = 3

// storeIndexPrefixes are the prefixes of every index record that
// ensureMachineIndex builds.
var storeIndexPrefixes = []string{prefixVaultMachine, prefixMachineExpiry, prefixTokenID, prefixMachineGrant}

type machineIndexRecord struct {
	Version int `json:"version"`
}

func vaultMachineKey(vault VaultID, id MachineID) string {
	return prefixVaultMachine + string(vault) + "/" + string(id)
}

func vaultMachinePrefix(vault VaultID) string {
	return prefixVaultMachine + string(vault) + "/"
}

func machineGrantKey(secret SecretID, id MachineID) string {
	return prefixMachineGrant + string(secret) + "/" + string(id)
}

func machineGrantPrefix(secret SecretID) string {
	return prefixMachineGrant + string(secret) + "/"
}

// tokenIDIndexKey is the key of the record that maps a bootstrap token's
// public id, unique within its vault, to its hash.
func tokenIDIndexKey(vault VaultID, id string) string {
	return prefixTokenID + string(vault) + "/" + id
}

// machineExpiryKey returns the expiry index key of m, or "" when m is not
// indexed: it has no expiry, or it is already expired or revoked.
func machineExpiryKey(m *Machine) string {
	if m.ExpiresAt <= 0 || m.Status == StatusExpired || m.Status == StatusRevoked {
		return ""
	}
	return fmt.Sprintf("%s%020d/%s", prefixMachineExpiry, m.ExpiresAt, m.ID)
}

// machineExpiryBound is the first expiry index key above every machine
// expiring at or before atMs.
func machineExpiryBound(atMs int64) string {
	return fmt.Sprintf("%s%020d/", prefixMachineExpiry, atMs+1)
}

// machineIndexKeys returns the keys of the index records that machine m
// calls for: its vault membership, one per grant, and its expiry when it
// has one in force.
func machineIndexKeys(m *Machine) []string {
	keys := []string{vaultMachineKey(m.VaultID, m.ID)}
	for _, secret := range m.Grants {
		keys = append(keys, machineGrantKey(secret, m.ID))
	}
	if k := machineExpiryKey(m); k != "" {
		keys = append(keys, k)
	}
	return keys
}

// indexMachineChange writes the index records that follow from a machine
// moving from old to next. Either may be nil, for a registration or a
// purge.
func (t *tx) indexMachineChange(old, next *Machine) {
	var before, after []string
	if old != nil {
		before = machineIndexKeys(old)
	}
	if next != nil {
		after = machineIndexKeys(next)
	}
	for _, k := range before {
		if !slices.Contains(after, k) {
			t.mustDelete(k)
		}
	}
	for _, k := range after {
		if !slices.Contains(before, k) {
			t.mustSet(k, nil)
		}
	}
}

// committedMachine returns the machine as the earlier commands of the
// batch left it, or as committed before the batch: the state that a
// change of the current command replaces.
func (t *tx) committedMachine(id MachineID) *Machine {
	if c, ok := t.pending[machineKey(id)]; ok {
		if c.deleted {
			return nil
		}
		return &c.entry.(*MachineEntry).Machine
	}
	if e, ok := t.idx.machines.get(id); ok {
		return &e.Machine
	}
	return nil
}

// ensureMachineIndex writes the index records of every machine and token
// and the marker, unless the marker holds the current version. Every node
// that holds the same records writes the same index, so checksums still
// agree.
func ensureMachineIndex(db *pebble.DB) error {
	var marker machineIndexRecord
	found, err := getJSON(db, keyMachineIndex, &marker)
	if err != nil {
		return err
	}
	if found && marker.Version == machineIndexVersion {
		return nil
	}
	if found && marker.Version > machineIndexVersion {
		return fmt.Errorf("the store's index is version %d, and this build reads version %d; run the keyward build that wrote the store", marker.Version, machineIndexVersion)
	}

	batch := db.NewBatch()
	defer batch.Close()
	for _, prefix := range storeIndexPrefixes {
		if err := batch.DeleteRange([]byte(prefix), []byte(prefixEnd(prefix)), nil); err != nil {
			return err
		}
	}
	err = scanPrefix(db, prefixMachine, func(key, value []byte) error {
		var m Machine
		if err := json.Unmarshal(value, &m); err != nil {
			return fmt.Errorf("decode %s: %w", key, err)
		}
		for _, k := range machineIndexKeys(&m) {
			if err := batch.Set([]byte(k), nil, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = scanPrefix(db, prefixBootstrapToken, func(key, value []byte) error {
		var tok BootstrapToken
		if err := json.Unmarshal(value, &tok); err != nil {
			return fmt.Errorf("decode %s: %w", key, err)
		}
		return batch.Set([]byte(tokenIDIndexKey(tok.VaultID, tok.ID)), []byte(tok.Hash), nil)
	})
	if err != nil {
		return err
	}
	if err := batch.Set([]byte(keyMachineIndex), mustJSON(machineIndexRecord{Version: machineIndexVersion}), nil); err != nil {
		return err
	}
	return batch.Commit(pebble.Sync)
}

// bootstrapTokensOf reads the tokens of vault, of kind when kind is not
// empty, through the vault's btid/ records, in token id order.
func bootstrapTokensOf(r pebble.Reader, vault VaultID, kind string) ([]*BootstrapToken, error) {
	prefix := prefixTokenID + string(vault) + "/"
	var hashes []string
	err := scanPrefix(r, prefix, func(_, value []byte) error {
		hashes = append(hashes, string(value))
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]*BootstrapToken, 0, len(hashes))
	for _, h := range hashes {
		var tok BootstrapToken
		found, err := getJSON(r, bootstrapKey(h), &tok)
		if err != nil {
			return nil, err
		}
		if found && (kind == "" || tok.Kind == kind) {
			out = append(out, &tok)
		}
	}
	return out, nil
}

// scanIDs calls fn with the last path element of every key under prefix,
// in key order, until fn returns false. Keys are machine ids under the
// index prefixes, so the element never holds a slash.
func scanIDs(db pebble.Reader, lower, upper string, fn func(id string) bool) error {
	iter, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte(lower), UpperBound: []byte(upper)})
	if err != nil {
		return fmt.Errorf("scan %s: %w", lower, err)
	}
	for iter.First(); iter.Valid(); iter.Next() {
		key := iter.Key()
		id := key[bytes.LastIndexByte(key, '/')+1:]
		if !fn(string(id)) {
			break
		}
	}
	return iter.Close()
}

// machineIDsInVault returns the ids of a vault's machines in id order.
func machineIDsInVault(db pebble.Reader, vault VaultID) ([]MachineID, error) {
	var ids []MachineID
	prefix := vaultMachinePrefix(vault)
	err := scanIDs(db, prefix, prefixEnd(prefix), func(id string) bool {
		ids = append(ids, MachineID(id))
		return true
	})
	return ids, err
}
