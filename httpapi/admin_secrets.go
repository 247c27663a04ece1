package httpapi

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/keyward/keyward/fsm"
)

// secretInput is the body of a secret create or update: exactly one of
// Value (a plain secret) and Fields (a structured secret) is set.
type secretInput struct {
	Name   string            `json:"name"`
	Value  *string           `json:"value"`
	Fields map[string]string `json:"fields"`
}

// plaintext returns the secret type, the bytes to seal and the sorted field
// names. A structured secret is stored as its JSON object, which is also
// what machines read back as the value.
func (in secretInput) plaintext() (typ string, value []byte, fieldNames []string, err error) {
	switch {
	case in.Value != nil && in.Fields != nil:
		return "", nil, nil, fail(ErrBadRequest, "send either value or fields, not both")
	case in.Value != nil:
		value = []byte(*in.Value)
		if len(value) > MaxSecretValueBytes {
			return "", nil, nil, fail(ErrBadRequest, "value is %d bytes; the maximum is %d", len(value), MaxSecretValueBytes)
		}
		return fsm.SecretTypeSecret, value, nil, nil
	case in.Fields != nil:
		return structuredPlaintext(in.Fields)
	}
	return "", nil, nil, fail(ErrBadRequest, "value or fields is required")
}

func structuredPlaintext(fields map[string]string) (string, []byte, []string, error) {
	if len(fields) == 0 {
		return "", nil, nil, fail(ErrBadRequest, "fields is empty; a structured secret needs at least one field")
	}
	if len(fields) > maxStructuredFields {
		return "", nil, nil, fail(ErrBadRequest, "fields has %d entries; the maximum is %d", len(fields), maxStructuredFields)
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		if err := checkName("field name", name, maxFieldNameLength); err != nil {
			return "", nil, nil, err
		}
		names = append(names, name)
	}
	sort.Strings(names)

	// encoding/json writes map keys in sorted order, so equal fields give
	// equal bytes.
	value, err := json.Marshal(fields)
	if err != nil {
		return "", nil, nil, fmt.Errorf("encode fields: %w", err)
	}
	if len(value) > MaxSecretValueBytes {
		return "", nil, nil, fail(ErrBadRequest, "fields encode to %d bytes of JSON; the maximum is %d", len(value), MaxSecretValueBytes)
	}
	return fsm.SecretTypeStructured, value, names, nil
}

// createSecret serves POST /v1/admin/vaults/{vaultId}/projects/{projectId}/secrets.
// The value is sealed here with the project key and the new secret id as
// associated data, before the command is proposed, so the plaintext never
// enters the Raft log.
func (s *Server) createSecret(rc *request, ac *adminCall) error {
	project, err := s.vaultProject(ac, rc.param("projectId"))
	if err != nil {
		return err
	}
	var in secretInput
	if err := decodeJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	if err := checkName("name", in.Name, maxSecretNameLength); err != nil {
		return err
	}
	typ, value, fieldNames, err := in.plaintext()
	if err != nil {
		return err
	}

	if err := s.checkRootKeyBeforeSeal(); err != nil {
		return err
	}
	id := newSecretID()
	sealed, err := s.keyring.Seal(project.WrappedKey, string(id), value)
	if err != nil {
		return fmt.Errorf("seal secret %s: %w", id, err)
	}
	payload := fsm.CreateSecretPayload{
		ID: id, ProjectID: project.ID, Name: in.Name, Type: typ, FieldNames: fieldNames, Sealed: sealed,
	}
	secret, err := s.proposeSecretWrite(rc, ac, fsm.CmdCreateSecret, payload, ActionSecretCreate)
	if err != nil {
		return err
	}
	return writeCreated(rc, newSecretView(secret))
}

// proposeSecretWrite applies a secret create or update, audits it and
// returns the secret as stored.
func (s *Server) proposeSecretWrite(rc *request, ac *adminCall, typ fsm.CommandType, payload any, action string) (*fsm.Secret, error) {
	resp, err := s.propose(rc, proposal{typ: typ, actor: ac.actor, payload: payload})
	if err != nil {
		return nil, err
	}
	var secret fsm.Secret
	if err := decodeResponse(resp, &secret); err != nil {
		return nil, err
	}
	s.auditSecretWrite(rc, ac, action, &secret)
	return &secret, nil
}

// updateSecret serves PUT /v1/admin/vaults/{vaultId}/secrets/{secretId}
// {"value"} or {"fields"}. The command names the version it replaces, so
// a concurrent update makes it fail with 409 instead of being lost.
func (s *Server) updateSecret(rc *request, ac *adminCall) error {
	secret, err := s.vaultSecret(ac, rc.param("secretId"))
	if err != nil {
		return err
	}
	var in secretInput
	if err := decodeJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	if in.Name != "" {
		return fail(ErrBadRequest, "name cannot be changed by an update; send only value or fields")
	}
	typ, value, fieldNames, err := in.plaintext()
	if err != nil {
		return err
	}
	if typ != secret.Type {
		return fail(ErrBadRequest, "secret %s is of type %s; send %s", secret.ID, secret.Type, inputFieldFor(secret.Type))
	}
	project, ok := s.sm.Project(secret.ProjectID)
	if !ok {
		return fail(ErrNotFound, "Project %s of secret %s not found", secret.ProjectID, secret.ID)
	}

	if err := s.checkRootKeyBeforeSeal(); err != nil {
		return err
	}
	sealed, err := s.keyring.Seal(project.WrappedKey, string(secret.ID), value)
	if err != nil {
		return fmt.Errorf("seal secret %s: %w", secret.ID, err)
	}
	payload := fsm.UpdateSecretPayload{
		ID: secret.ID, ExpectedVersion: secret.Version, FieldNames: fieldNames, Sealed: sealed,
	}
	updated, err := s.proposeSecretWrite(rc, ac, fsm.CmdUpdateSecret, payload, ActionSecretUpdate)
	if err != nil {
		return err
	}
	return writeOK(rc, newSecretView(updated))
}

// rollbackSecret serves POST …/secrets/{secretId}/rollback {"version"}: a
// new version that carries the sealed value of an earlier one. Values are
// sealed with the secret id as associated data, not the version, so the
// stored ciphertext is copied as is and the plaintext is never opened.
func (s *Server) rollbackSecret(rc *request, ac *adminCall) error {
	secret, err := s.vaultSecret(ac, rc.param("secretId"))
	if err != nil {
		return err
	}
	var in struct {
		Version int `json:"version"`
	}
	if err := decodeJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	if in.Version < 1 || in.Version >= secret.Version {
		return fail(ErrBadRequest, "version %d cannot be restored; secret %s is at version %d, so pick 1 to %d",
			in.Version, secret.ID, secret.Version, secret.Version-1)
	}
	versions, err := s.sm.SecretVersions(secret.ID)
	if err != nil {
		return err
	}
	idx := slices.IndexFunc(versions, func(v fsm.SecretVersion) bool { return v.Version == in.Version })
	if idx < 0 {
		return fail(ErrNotFound, "Version %d of secret %s is no longer kept; only the last %d versions are, see GET …/versions",
			in.Version, secret.ID, fsm.MaxSecretVersions)
	}
	old := versions[idx]

	payload := fsm.UpdateSecretPayload{
		ID: secret.ID, ExpectedVersion: secret.Version, FieldNames: old.FieldNames, Sealed: old.Sealed,
		RestoredVersion: old.Version,
	}
	updated, err := s.proposeSecretWrite(rc, ac, fsm.CmdUpdateSecret, payload, ActionSecretUpdate)
	if err != nil {
		return err
	}
	return writeOK(rc, newSecretView(updated))
}

// deleteSecret serves DELETE …/secrets/{secretId}: the secret, all of its
// versions and every grant on it are removed. It is security-critical,
// because machines lose access.
func (s *Server) deleteSecret(rc *request, ac *adminCall) error {
	secret, err := s.vaultSecret(ac, rc.param("secretId"))
	if err != nil {
		return err
	}
	payload := fsm.DeleteSecretPayload{VaultID: ac.vault.ID, ID: secret.ID}
	resp, err := s.propose(rc, proposal{typ: fsm.CmdDeleteSecret, actor: ac.actor, payload: payload})
	if err != nil {
		return err
	}
	var deleted fsm.DeletedSecret
	if err := decodeResponse(resp, &deleted); err != nil {
		return err
	}
	ev := s.adminEvent(rc, ac, ActionSecretDelete, severityHigh, secret.VaultID)
	ev.SecretID = string(secret.ID)
	ev.Fields = map[string]any{"projectId": string(secret.ProjectID), "revokedGrants": len(deleted.RevokedGrants)}
	s.audit(ev)
	return writeOK(rc, map[string]any{
		"id": string(secret.ID), "deleted": true, "revokedGrants": deleted.RevokedGrants,
	})
}

func inputFieldFor(typ string) string {
	if typ == fsm.SecretTypeStructured {
		return "fields"
	}
	return "value"
}

// listProjectSecretsAdmin serves GET …/projects/{projectId}/secrets:
// metadata only, never values.
func (s *Server) listProjectSecretsAdmin(rc *request, ac *adminCall) error {
	project, err := s.vaultProject(ac, rc.param("projectId"))
	if err != nil {
		return err
	}
	views := []secretView{}
	for _, sec := range s.sm.Secrets(project.ID) {
		views = append(views, newSecretView(sec))
	}
	return writeOK(rc, map[string]any{"secrets": views})
}

// getSecretAdmin serves GET /v1/admin/vaults/{vaultId}/secrets/{secretId}.
func (s *Server) getSecretAdmin(rc *request, ac *adminCall) error {
	secret, err := s.vaultSecret(ac, rc.param("secretId"))
	if err != nil {
		return err
	}
	return writeOK(rc, newSecretView(secret))
}

// listSecretVersions serves GET …/secrets/{secretId}/versions.
func (s *Server) listSecretVersions(rc *request, ac *adminCall) error {
	secret, err := s.vaultSecret(ac, rc.param("secretId"))
	if err != nil {
		return err
	}
	versions, err := s.sm.SecretVersions(secret.ID)
	if err != nil {
		return err
	}
	views := make([]secretVersionView, 0, len(versions))
	for _, v := range versions {
		views = append(views, secretVersionView{Version: v.Version, FieldNames: v.FieldNames, CreatedAt: v.CreatedAt})
	}
	return writeOK(rc, map[string]any{"versions": views})
}

// vaultSecret returns a secret of the call's vault, 404 otherwise.
func (s *Server) vaultSecret(ac *adminCall, id string) (*fsm.Secret, error) {
	if !isSecretID(id) {
		return nil, fail(ErrNotFound, "Secret %s not found", clip(id))
	}
	secret, ok := s.sm.Secret(fsm.SecretID(id))
	if !ok || secret.VaultID != ac.vault.ID {
		return nil, fail(ErrNotFound, "Secret %s not found in vault %s", id, ac.vault.ID)
	}
	return secret, nil
}

func (s *Server) auditSecretWrite(rc *request, ac *adminCall, action string, secret *fsm.Secret) {
	ev := s.adminEvent(rc, ac, action, severityMedium, secret.VaultID)
	ev.SecretID = string(secret.ID)
	ev.Fields = map[string]any{"version": secret.Version, "projectId": string(secret.ProjectID)}
	s.audit(ev)
}
