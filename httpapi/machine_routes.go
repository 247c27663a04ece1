package httpapi

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/fsm"
)

// Machine-plane response shapes. They follow the SikkerKey v1 machine
// protocol, so that its SDKs work unchanged.

type secretListItem struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	FieldNames *string `json:"fieldNames"`
	ProjectID  string  `json:"projectId"`
}

type secretExportItem struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	FieldNames *string `json:"fieldNames"`
	ProjectID  string  `json:"projectId"`
	Value      string  `json:"value"`
}

// cliProject and cliSecret carry application fields for the SikkerKey CLI;
// Keyward has no applications, so they are always null.
type cliProject struct {
	ProjectID       string  `json:"projectId"`
	ProjectName     string  `json:"projectName"`
	ApplicationID   *string `json:"applicationId"`
	ApplicationName *string `json:"applicationName"`
}

type cliSecret struct {
	ID              string  `json:"id"`
	Name            string  `json:"name"`
	FieldNames      *string `json:"fieldNames"`
	ProjectID       string  `json:"projectId"`
	ProjectName     string  `json:"projectName"`
	ApplicationID   *string `json:"applicationId"`
	ApplicationName *string `json:"applicationName"`
	Type            string  `json:"type"`
}

type verifyAccessResponse struct {
	Valid       bool    `json:"valid"`
	ProjectName *string `json:"projectName"`
	Error       *string `json:"error"`
}

// projectRequest is the body of /v1/secrets/list, /v1/secrets/export and
// /v1/verify-access. ApplicationID is accepted because the SikkerKey CLI may
// send it to export; Keyward has no applications, so a non-empty one is 404.
type projectRequest struct {
	ProjectID     string `json:"projectId"`
	ApplicationID string `json:"applicationId"`
}

// getSecret serves GET /v1/secret/{secretId}.
func (s *Server) getSecret(rc *request, mc *machineCall) error {
	sec, err := s.authorizeSecret(rc, mc, rc.param("secretId"))
	if err != nil {
		return err
	}
	buf := acquireValueBuffer()
	defer releaseValueBuffer(buf)
	value, err := s.sm.AppendSecretValue(buf.plain[:0], sec.ID)
	buf.plain = value
	if err != nil {
		return fmt.Errorf("read secret %s: %w", sec.ID, err)
	}

	s.polls.remember(mc.machine.ID, sec.ID, sec.Version)
	s.auditSecretRead(rc, mc, sec)
	// The body is {"value":"…"}, encoded as encoding/json would, without
	// converting the plaintext to a string that could not be cleared.
	// The buffer is grown first, so that no partly written copy is left in
	// a discarded array.
	body := slices.Grow(buf.body[:0], len(`{"value":""}`)+maxJSONStringGrowth*len(value))
	body = append(body, `{"value":`...)
	body = appendJSONString(body, value)
	buf.body = append(body, '}')
	rc.ctx.SetStatusCode(fasthttp.StatusOK)
	rc.ctx.SetContentType("application/json")
	rc.ctx.SetBody(buf.body)
	return nil
}

// authorizeSecret is check 10 for one secret: it exists in the machine's
// vault (else 404), and the machine is attached to its project and holds
// an explicit grant for it (else 403).
//
// NOTE: per-secret access policies are not modelled yet; project
// membership and the explicit grant are the whole rule.
func (s *Server) authorizeSecret(rc *request, mc *machineCall, id string) (*fsm.Secret, error) {
	if !isSecretID(id) {
		return nil, fail(ErrNotFound, "Secret not found")
	}
	sec, ok := s.sm.Secret(fsm.SecretID(id))
	if !ok || sec.VaultID != mc.machine.VaultID {
		return nil, fail(ErrNotFound, "Secret not found")
	}
	if !canRead(mc.entry, sec) {
		ev := s.machineEvent(rc, ActionSecretReadDenied, severityMedium, mc.machine)
		ev.SecretID = string(sec.ID)
		s.audit(ev)
		return nil, fail(ErrForbidden, "Access denied: this machine has no grant for secret %s", sec.ID)
	}
	return sec, nil
}

// canRead reports whether the machine is attached to the secret's project
// and holds an explicit grant for the secret.
func canRead(entry *fsm.MachineEntry, sec *fsm.Secret) bool {
	return entry.HasProject(sec.ProjectID) && entry.HasGrant(sec.ID)
}

// readableSecrets returns the secrets the machine may read, optionally in
// one project, sorted by name then id.
func (s *Server) readableSecrets(entry *fsm.MachineEntry, project fsm.ProjectID) []*fsm.Secret {
	out := make([]*fsm.Secret, 0, len(entry.Machine.Grants))
	for _, id := range entry.Machine.Grants {
		sec, ok := s.sm.Secret(id)
		if !ok || sec.VaultID != entry.Machine.VaultID || !canRead(entry, sec) {
			continue
		}
		if project != "" && sec.ProjectID != project {
			continue
		}
		out = append(out, sec)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	// The record's lists hold no repeats. Compacting keeps a repeat from
	// being listed twice if one ever got in.
	return slices.CompactFunc(out, func(a, b *fsm.Secret) bool { return a.ID == b.ID })
}

// listSecrets serves GET /v1/secrets.
func (s *Server) listSecrets(rc *request, mc *machineCall) error {
	writeJSON(rc.ctx, fasthttp.StatusOK, secretList(s.readableSecrets(mc.entry, "")))
	return nil
}

// listProjectSecrets serves POST /v1/secrets/list {"projectId"}.
func (s *Server) listProjectSecrets(rc *request, mc *machineCall) error {
	var in projectRequest
	if err := decodeJSON(mc.body, &in); err != nil {
		return err
	}
	project, err := s.attachedProject(mc, in.ProjectID)
	if err != nil {
		return err
	}
	writeJSON(rc.ctx, fasthttp.StatusOK, secretList(s.readableSecrets(mc.entry, project.ID)))
	return nil
}

func secretList(secrets []*fsm.Secret) any {
	items := make([]secretListItem, 0, len(secrets))
	for _, sec := range secrets {
		items = append(items, secretListItem{
			ID: string(sec.ID), Name: sec.Name,
			FieldNames: fieldNamesJSON(sec), ProjectID: string(sec.ProjectID),
		})
	}
	return struct {
		Secrets []secretListItem `json:"secrets"`
	}{items}
}

// attachedProject returns the project named in a request body when the
// machine is attached to it: 400 for a malformed id, 404 for an unknown
// project, 403 when the machine is not attached.
func (s *Server) attachedProject(mc *machineCall, id string) (*fsm.Project, error) {
	if id == "" {
		return nil, fail(ErrBadRequest, "projectId is required")
	}
	if !isProjectID(id) {
		return nil, fail(ErrBadRequest, "projectId %q is not a project id (proj_ followed by 10 characters)", clip(id))
	}
	project, ok := s.sm.Project(fsm.ProjectID(id))
	if !ok || project.VaultID != mc.machine.VaultID {
		return nil, fail(ErrNotFound, "Project %s not found", id)
	}
	if !mc.entry.HasProject(project.ID) {
		return nil, fail(ErrForbidden, "Access denied: this machine is not attached to project %s", id)
	}
	return project, nil
}

// exportSecrets serves POST /v1/secrets/export with an empty body or
// {"projectId"}: every readable secret with its value.
func (s *Server) exportSecrets(rc *request, mc *machineCall) error {
	var in projectRequest
	if err := decodeOptionalJSON(mc.body, &in); err != nil {
		return err
	}
	if in.ApplicationID != "" {
		return fail(ErrNotFound, "Application %s not found; Keyward has no applications, export by projectId", clip(in.ApplicationID))
	}

	var projectID fsm.ProjectID
	if in.ProjectID != "" {
		project, err := s.attachedProject(mc, in.ProjectID)
		if err != nil {
			return err
		}
		projectID = project.ID
	}

	secrets := s.readableSecrets(mc.entry, projectID)
	items := make([]secretExportItem, 0, len(secrets))
	for _, sec := range secrets {
		value, err := s.sm.SecretValue(sec.ID)
		if err != nil {
			return fmt.Errorf("export secret %s: %w", sec.ID, err)
		}
		items = append(items, secretExportItem{
			ID: string(sec.ID), Name: sec.Name, FieldNames: fieldNamesJSON(sec),
			ProjectID: string(sec.ProjectID), Value: string(value),
		})
	}
	for _, sec := range secrets {
		s.polls.remember(mc.machine.ID, sec.ID, sec.Version)
		s.auditSecretRead(rc, mc, sec)
	}
	writeJSON(rc.ctx, fasthttp.StatusOK, struct {
		Secrets []secretExportItem `json:"secrets"`
	}{items})
	return nil
}

// verifyAccess serves POST /v1/verify-access {"projectId"}. It responds 200
// with valid=false and an error text when the machine may not use the
// project, which is the form the SikkerKey CLI parses.
func (s *Server) verifyAccess(rc *request, mc *machineCall) error {
	var in projectRequest
	if err := decodeJSON(mc.body, &in); err != nil {
		return err
	}
	if in.ApplicationID != "" {
		return fail(ErrBadRequest, "applicationId is not supported; send projectId")
	}

	out := verifyAccessResponse{}
	project, err := s.attachedProject(mc, in.ProjectID)
	if err != nil {
		msg := clientMessage(err, 0)
		out.Error = &msg
	} else {
		out.Valid = true
		out.ProjectName = &project.Name
	}
	writeJSON(rc.ctx, fasthttp.StatusOK, out)
	return nil
}

// cliProjects serves GET /v1/cli/projects: the projects the machine is
// attached to, sorted by name.
func (s *Server) cliProjects(rc *request, mc *machineCall) error {
	projects := s.attachedProjects(mc.entry)
	items := make([]cliProject, 0, len(projects))
	for _, p := range projects {
		items = append(items, cliProject{ProjectID: string(p.ID), ProjectName: p.Name})
	}
	writeJSON(rc.ctx, fasthttp.StatusOK, struct {
		Projects []cliProject `json:"projects"`
	}{items})
	return nil
}

// cliSecrets serves GET /v1/cli/secrets: the readable secrets with their
// project names and types.
func (s *Server) cliSecrets(rc *request, mc *machineCall) error {
	secrets := s.readableSecrets(mc.entry, "")
	items := make([]cliSecret, 0, len(secrets))
	for _, sec := range secrets {
		item := cliSecret{
			ID: string(sec.ID), Name: sec.Name, FieldNames: fieldNamesJSON(sec),
			ProjectID: string(sec.ProjectID), Type: sec.Type,
		}
		if p, ok := s.sm.Project(sec.ProjectID); ok {
			item.ProjectName = p.Name
		}
		items = append(items, item)
	}
	writeJSON(rc.ctx, fasthttp.StatusOK, struct {
		Secrets []cliSecret `json:"secrets"`
	}{items})
	return nil
}

func (s *Server) attachedProjects(entry *fsm.MachineEntry) []*fsm.Project {
	out := make([]*fsm.Project, 0, len(entry.Machine.Projects))
	for _, id := range entry.Machine.Projects {
		if p, ok := s.sm.Project(id); ok && p.VaultID == entry.Machine.VaultID {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return slices.CompactFunc(out, func(a, b *fsm.Project) bool { return a.ID == b.ID })
}

// fieldNamesJSON returns the field names of a structured secret as a
// string holding a JSON array, and nil for a plain secret, which is the
// form the machine protocol uses.
func fieldNamesJSON(sec *fsm.Secret) *string {
	if sec.Type != fsm.SecretTypeStructured {
		return nil
	}
	names := sec.FieldNames
	if names == nil {
		names = []string{}
	}
	encoded, err := json.Marshal(names)
	if err != nil {
		return nil
	}
	text := string(encoded)
	return &text
}

func (s *Server) auditSecretRead(rc *request, mc *machineCall, sec *fsm.Secret) {
	ev := s.machineEvent(rc, ActionSecretRead, severityInfo, mc.machine)
	ev.SecretID = string(sec.ID)
	ev.Fields = map[string]any{"version": sec.Version}
	s.audit(ev)
}
