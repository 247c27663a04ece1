package fsm

import "slices"

// applyCreateSecret creates a secret at version 1. Secret names are unique
// within a project.
func applyCreateSecret(t *tx, c *Command) (any, error) {
	var p CreateSecretPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	if err := checkSecretID(p.ID); err != nil {
		return nil, err
	}
	if err := checkText("secret name", p.Name, 1, MaxSecretNameChars); err != nil {
		return nil, err
	}
	if err := checkFieldNames(p.Type, p.FieldNames); err != nil {
		return nil, err
	}
	if err := checkSealed(p.Sealed); err != nil {
		return nil, err
	}
	proj, ok := t.project(p.ProjectID)
	if !ok {
		return nil, rejectf(ErrNotFound, "project %s not found", p.ProjectID)
	}
	if _, exists := t.secret(p.ID); exists {
		return nil, rejectf(ErrAlreadyExists, "secret %s already exists", p.ID)
	}
	for _, other := range t.secretsInProject(p.ProjectID) {
		if other.Name == p.Name {
			return nil, rejectf(ErrAlreadyExists, "project %s already has a secret named %q (%s)", p.ProjectID, p.Name, other.ID)
		}
	}

	s := &Secret{
		ID:         p.ID,
		ProjectID:  p.ProjectID,
		VaultID:    proj.VaultID,
		Name:       p.Name,
		Type:       p.Type,
		Version:    1,
		FieldNames: slices.Clone(p.FieldNames),
		CreatedAt:  c.Time,
		UpdatedAt:  c.Time,
	}
	stageSecretVersion(t, s, proj.WrappedKey, p.Sealed, c.Time)
	return s, nil
}

// applyUpdateSecret stores a new version of a secret, rejecting the update
// with ErrConflict when the current version is not the one the proposer
// read.
func applyUpdateSecret(t *tx, c *Command) (any, error) {
	var p UpdateSecretPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	old, ok := t.secret(p.ID)
	if !ok {
		return nil, rejectf(ErrNotFound, "secret %s not found", p.ID)
	}
	if p.ExpectedVersion != old.meta.Version {
		return nil, rejectf(ErrConflict, "secret %s is at version %d, not the expected %d; read it again and retry",
			p.ID, old.meta.Version, p.ExpectedVersion)
	}
	if err := checkFieldNames(old.meta.Type, p.FieldNames); err != nil {
		return nil, err
	}
	if err := checkSealed(p.Sealed); err != nil {
		return nil, err
	}

	s := *old.meta
	s.Version++
	s.FieldNames = slices.Clone(p.FieldNames)
	s.UpdatedAt = c.Time
	stageSecretVersion(t, &s, old.projectKey, p.Sealed, c.Time)
	if oldest := s.Version - MaxSecretVersions; oldest >= 1 {
		t.stageDelete(kindSecretVersion, secretVersionKey(s.ID, oldest), string(s.ID))
	}
	return &s, nil
}

// DeletedSecret is the result of a secret delete: the secret as it was and
// the machines whose grant on it was removed.
type DeletedSecret struct {
	Secret        Secret      `json:"secret"`
	RevokedGrants []MachineID `json:"revokedGrants"`
}

// applyDeleteSecret deletes a secret, every stored version of it, and its
// grants. Removing the grants in the same batch means that a secret later
// created with the same id could not inherit them. The value is gone for
// good; the audit trail keeps the metadata.
func applyDeleteSecret(t *tx, c *Command) (any, error) {
	var p DeleteSecretPayload
	if err := decodePayload(c, &p); err != nil {
		return nil, err
	}
	old, ok := t.secret(p.ID)
	if !ok || old.meta.VaultID != p.VaultID {
		return nil, rejectf(ErrNotFound, "secret %s not found in vault %s", p.ID, p.VaultID)
	}

	// NOTE: every machine granted the secret is rewritten in this one
	// entry, so a secret granted to a whole large fleet makes a long apply.
	revoked := []MachineID{}
	for _, e := range t.machinesGranted(p.VaultID, p.ID) {
		t.updateMachine(e, func(m *Machine) {
			m.Grants = slices.DeleteFunc(m.Grants, func(id SecretID) bool { return id == p.ID })
		})
		revoked = append(revoked, e.Machine.ID)
	}
	for v := 1; v <= old.meta.Version; v++ {
		t.stageDelete(kindSecretVersion, secretVersionKey(p.ID, v), string(p.ID))
	}
	t.stageDelete(kindSecret, secretKey(p.ID), string(p.ID))
	return &DeletedSecret{Secret: *old.meta, RevokedGrants: revoked}, nil
}

// stageSecretVersion writes the version record and the secret metadata
// that points at it.
func stageSecretVersion(t *tx, s *Secret, projectKey []byte, sealed Sealed, now int64) {
	v := SecretVersion{
		SecretID:   s.ID,
		Version:    s.Version,
		FieldNames: s.FieldNames,
		Sealed:     sealed,
		CreatedAt:  now,
	}
	t.stage(kindSecretVersion, secretVersionKey(s.ID, s.Version), string(s.ID), v, nil)

	entry := &secretEntry{meta: s, current: sealed, projectKey: projectKey}
	t.stage(kindSecret, secretKey(s.ID), string(s.ID), s, entry)
}
