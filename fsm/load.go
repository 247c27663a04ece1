package fsm

import (
	"encoding/json"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/keyward/keyward/guard"
)

// loadIndexes builds the in-memory indexes from every record in r. It runs
// at Open and after Restore, before the indexes are visible to readers.
func loadIndexes(r pebble.Reader) (*indexes, error) {
	ix := newIndexes()
	initialized, err := getJSON(r, keyInit, &initRecord{})
	if err != nil {
		return nil, err
	}
	ix.initialized.Store(initialized)

	loaders := []struct {
		prefix string
		load   func(r pebble.Reader, ix *indexes, value []byte) error
	}{
		{prefixVault, loadVault},
		{prefixProject, loadProject},
		// Secrets need their project's key, so they load after projects.
		{prefixSecret, loadSecret},
		{prefixMachine, loadMachine},
		{prefixAdminToken, loadAdminToken},
		{prefixBootstrapToken, loadBootstrapToken},
	}
	for _, l := range loaders {
		err := scanPrefix(r, l.prefix, func(key, value []byte) error {
			if err := l.load(r, ix, value); err != nil {
				return fmt.Errorf("load %s: %w", key, err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return ix, nil
}

// scanPrefix calls fn for every key with prefix, in key order. The slices
// passed to fn are valid only during the call.
func scanPrefix(r pebble.Reader, prefix string, fn func(key, value []byte) error) error {
	iter, err := r.NewIter(&pebble.IterOptions{
		LowerBound: []byte(prefix),
		UpperBound: []byte(prefixEnd(prefix)),
	})
	if err != nil {
		return fmt.Errorf("scan %s: %w", prefix, err)
	}
	for iter.First(); iter.Valid(); iter.Next() {
		value, err := iter.ValueAndErr()
		if err != nil {
			iter.Close()
			return fmt.Errorf("read %s: %w", iter.Key(), err)
		}
		if err := fn(iter.Key(), value); err != nil {
			iter.Close()
			return err
		}
	}
	return iter.Close()
}

func loadVault(_ pebble.Reader, ix *indexes, value []byte) error {
	var v Vault
	if err := json.Unmarshal(value, &v); err != nil {
		return err
	}
	allow, err := compileAllowlist(v.IPAllowlist)
	if err != nil {
		return err
	}
	ix.vaults.set(v.ID, &vaultEntry{vault: &v, allowlist: allow})
	return nil
}

func loadProject(_ pebble.Reader, ix *indexes, value []byte) error {
	var p Project
	if err := json.Unmarshal(value, &p); err != nil {
		return err
	}
	ix.publishProject(&p)
	return nil
}

func loadSecret(r pebble.Reader, ix *indexes, value []byte) error {
	var s Secret
	if err := json.Unmarshal(value, &s); err != nil {
		return err
	}
	p, ok := ix.projects.get(s.ProjectID)
	if !ok {
		return fmt.Errorf("project %s of secret %s is missing", s.ProjectID, s.ID)
	}

	var v SecretVersion
	found, err := getJSON(r, secretVersionKey(s.ID, s.Version), &v)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("current version %d of secret %s is missing", s.Version, s.ID)
	}
	ix.publishSecret(&secretEntry{meta: &s, current: v.Sealed, projectKey: p.WrappedKey})
	return nil
}

func loadMachine(_ pebble.Reader, ix *indexes, value []byte) error {
	var m Machine
	if err := json.Unmarshal(value, &m); err != nil {
		return err
	}
	key, err := guard.ParsePublicKey(m.PublicKey)
	if err != nil {
		return err
	}
	policy, err := compileGuardrails(m.Guardrails)
	if err != nil {
		return err
	}
	ix.publishMachine(&change{kind: kindMachine, id: string(m.ID), entry: newMachineEntry(m, key, policy)})
	return nil
}

func loadAdminToken(_ pebble.Reader, ix *indexes, value []byte) error {
	var tok AdminToken
	if err := json.Unmarshal(value, &tok); err != nil {
		return err
	}
	ix.adminTokens.set(tok.Hash, &tok)
	return nil
}

func loadBootstrapToken(_ pebble.Reader, ix *indexes, value []byte) error {
	var tok BootstrapToken
	if err := json.Unmarshal(value, &tok); err != nil {
		return err
	}
	ix.publishBootstrapToken(&tok)
	return nil
}
