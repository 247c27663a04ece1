package httpapi

import (
	"time"

	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/guard"
)

// Enrollment token lifetimes: how long an issued token keeps enrolling
// machines. The state machine caps the expiry at twelve calendar months
// after issue; maxEnrollmentTokenTTL only rejects obvious mistakes early.
const (
	defaultEnrollmentTokenTTL = 7 * 24 * time.Hour
	minEnrollmentTokenTTL     = time.Minute
	maxEnrollmentTokenTTL     = 366 * 24 * time.Hour
)

// enrollmentTokenRequest is the body of POST …/enrollment-tokens.
type enrollmentTokenRequest struct {
	MaxUses    int               `json:"maxUses"`
	TokenTTL   string            `json:"tokenTtl"`
	Lifetime   *fsm.Lifetime     `json:"lifetime"`
	Purpose    string            `json:"purpose"`
	Guardrails *guard.Guardrails `json:"guardrails"`
	ProjectIDs []string          `json:"projectIds"`
	SecretIDs  []string          `json:"secretIds"`
}

// enrollRequest is the body of POST /v1/{vaultId}/enroll/register.
type enrollRequest struct {
	Token     string `json:"token"`
	PublicKey string `json:"publicKey"`
	Hostname  string `json:"hostname"`
	Name      string `json:"name"`
}

// createEnrollmentToken serves POST …/enrollment-tokens: a token that
// enrolls up to maxUses ephemeral machines, for example the instances of
// an autoscaling group. Each machine starts active with the token's
// projects, grants, lifetime and guardrails, because issuing the token is
// the operator's approval.
func (s *Server) createEnrollmentToken(rc *request, ac *adminCall) error {
	var in enrollmentTokenRequest
	if err := decodeJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	bt, err := enrollmentToken(in, rc.now)
	if err != nil {
		return err
	}
	bt.VaultID = ac.vault.ID
	return s.issueBootstrapToken(rc, ac, bt, ActionEnrollmentTokenCreate)
}

// enrollmentToken validates an enrollment-token request and returns the
// token record without its id, hash and vault. Whether the projects and
// secrets exist is checked by the state machine, against the state at
// apply time.
func enrollmentToken(in enrollmentTokenRequest, now time.Time) (fsm.BootstrapToken, error) {
	if in.MaxUses < 1 || in.MaxUses > fsm.MaxEnrollmentUses {
		return fsm.BootstrapToken{}, fail(ErrBadRequest, "maxUses %d is out of range; use 1 to %d", in.MaxUses, fsm.MaxEnrollmentUses)
	}
	if err := checkText("purpose", in.Purpose, maxPurposeLength); err != nil {
		return fsm.BootstrapToken{}, err
	}
	if in.Lifetime == nil {
		return fsm.BootstrapToken{}, fail(ErrBadRequest, "lifetime is required: {\"months\",\"days\",\"hours\"} of each enrolled machine, from 1 hour to 12 months")
	}
	lt := in.Lifetime
	if err := guard.ValidateLifetime(lt.Months, lt.Days, lt.Hours, now); err != nil {
		return fsm.BootstrapToken{}, err
	}
	ttl, err := durationInRange("tokenTtl", in.TokenTTL, defaultEnrollmentTokenTTL, minEnrollmentTokenTTL, maxEnrollmentTokenTTL)
	if err != nil {
		return fsm.BootstrapToken{}, err
	}
	guardrails, err := compileGuardrails(in.Guardrails)
	if err != nil {
		return fsm.BootstrapToken{}, err
	}
	projects, err := projectIDList(in.ProjectIDs)
	if err != nil {
		return fsm.BootstrapToken{}, err
	}
	secrets, err := secretIDList(in.SecretIDs)
	if err != nil {
		return fsm.BootstrapToken{}, err
	}
	if len(secrets) > 0 && len(projects) == 0 {
		return fsm.BootstrapToken{}, fail(ErrBadRequest, "secretIds needs projectIds: list the projects that hold those secrets")
	}

	return fsm.BootstrapToken{
		Kind:       fsm.TokenKindEnrollment,
		ExpiresAt:  now.Add(ttl).UnixMilli(),
		MaxUses:    in.MaxUses,
		Purpose:    in.Purpose,
		Lifetime:   &fsm.Lifetime{Months: lt.Months, Days: lt.Days, Hours: lt.Hours},
		Guardrails: guardrails,
		ProjectIDs: projects,
		SecretIDs:  secrets,
	}, nil
}

// durationInRange parses a Go duration named field, returning def when
// text is empty.
func durationInRange(field, text string, def, lo, hi time.Duration) (time.Duration, error) {
	if text == "" {
		return def, nil
	}
	d, err := time.ParseDuration(text)
	if err != nil {
		return 0, fail(ErrBadRequest, "%s %q is not a Go duration such as 1h or 48h", field, clip(text))
	}
	if d < lo || d > hi {
		return 0, fail(ErrBadRequest, "%s %v is out of range; use %v to %v", field, d, lo, hi)
	}
	return d, nil
}

func projectIDList(ids []string) ([]fsm.ProjectID, error) {
	if len(ids) > fsm.MaxMachineProjects {
		return nil, fail(ErrBadRequest, "projectIds lists %d projects; the maximum is %d", len(ids), fsm.MaxMachineProjects)
	}
	var out []fsm.ProjectID
	for i, id := range ids {
		if !isProjectID(id) {
			return nil, fail(ErrBadRequest, "projectIds[%d] %q is not a project id (proj_ and 10 characters)", i, clip(id))
		}
		out = append(out, fsm.ProjectID(id))
	}
	return out, nil
}

func secretIDList(ids []string) ([]fsm.SecretID, error) {
	if len(ids) > fsm.MaxGrants {
		return nil, fail(ErrBadRequest, "secretIds lists %d secrets; the maximum is %d", len(ids), fsm.MaxGrants)
	}
	var out []fsm.SecretID
	for i, id := range ids {
		if !isSecretID(id) {
			return nil, fail(ErrBadRequest, "secretIds[%d] %q is not a secret id (sk_ and 10 characters)", i, clip(id))
		}
		out = append(out, fsm.SecretID(id))
	}
	return out, nil
}

// enroll serves POST /v1/{vaultId}/enroll/register: one use of an
// enrollment token registers an ephemeral machine. The token travels in
// the body, not the path, so it stays out of access logs. The use is
// consumed through Raft, so maxUses holds across nodes.
func (s *Server) enroll(rc *request) error {
	var in enrollRequest
	if err := decodeJSON(rc.ctx.PostBody(), &in); err != nil {
		return err
	}
	key, err := parseRegisterKey(in.PublicKey)
	if err != nil {
		return err
	}
	if err := checkName("hostname", in.Hostname, maxHostnameLength); err != nil {
		return err
	}
	if in.Name != "" {
		if err := checkName("name", in.Name, maxMachineNameLength); err != nil {
			return err
		}
	}
	vaultID := rc.param("vaultId")
	if !isVaultID(vaultID) {
		return fail(ErrNotFound, "Vault %s not found", clip(vaultID))
	}
	if !isBootstrapToken(in.Token) {
		return fail(ErrUnauthorized, "Invalid enrollment token; a token is 64 lower-case hex digits")
	}
	hash := hashToken(in.Token)
	// A token known locally must be an enrollment token of this vault. One
	// not known yet may still exist on the leader, so the command decides.
	if bt, ok := s.sm.BootstrapTokenByHash(hash); ok && (bt.Kind != fsm.TokenKindEnrollment || string(bt.VaultID) != vaultID) {
		if bt.Kind != fsm.TokenKindEnrollment {
			return wrongTokenRoute(fsm.TokenKindEnrollment, bt.Kind)
		}
		return fail(ErrUnauthorized, "Invalid enrollment token")
	}
	apiURL, err := s.apiURL(rc)
	if err != nil {
		return err
	}

	m, err := s.proposeRegistration(rc, registration{
		kind: fsm.TokenKindEnrollment, tokenHash: hash, vault: fsm.VaultID(vaultID),
		key: key, hostname: in.Hostname, name: in.Name,
	})
	if err != nil {
		return err
	}
	return writeCreated(rc, registerResponse{
		MachineID: string(m.ID), MachineName: m.Name, VaultID: string(m.VaultID),
		APIURL: apiURL, ExpiresAt: m.ExpiresAt,
	})
}
