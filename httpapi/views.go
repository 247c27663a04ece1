package httpapi

import (
	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/guard"
)

// Admin-plane views. They list every field explicitly, so a field added to
// an fsm type (for example a wrapped key) reaches a response only when a
// view names it. Times are Unix milliseconds.

type vaultView struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	CreatedAt   int64           `json:"createdAt"`
	IPAllowlist fsm.IPAllowlist `json:"ipAllowlist"`
}

func newVaultView(v *fsm.Vault) vaultView {
	allow := v.IPAllowlist
	if allow.Entries == nil {
		allow.Entries = []fsm.IPAllowEntry{}
	}
	return vaultView{ID: string(v.ID), Name: v.Name, CreatedAt: v.CreatedAt, IPAllowlist: allow}
}

type projectView struct {
	ID        string `json:"id"`
	VaultID   string `json:"vaultId"`
	Name      string `json:"name"`
	CreatedAt int64  `json:"createdAt"`
}

func newProjectView(p *fsm.Project) projectView {
	return projectView{ID: string(p.ID), VaultID: string(p.VaultID), Name: p.Name, CreatedAt: p.CreatedAt}
}

type secretView struct {
	ID         string   `json:"id"`
	ProjectID  string   `json:"projectId"`
	VaultID    string   `json:"vaultId"`
	Name       string   `json:"name"`
	Type       string   `json:"type"`
	Version    int      `json:"version"`
	FieldNames []string `json:"fieldNames,omitempty"`
	CreatedAt  int64    `json:"createdAt"`
	UpdatedAt  int64    `json:"updatedAt"`
}

func newSecretView(s *fsm.Secret) secretView {
	return secretView{
		ID: string(s.ID), ProjectID: string(s.ProjectID), VaultID: string(s.VaultID),
		Name: s.Name, Type: s.Type, Version: s.Version, FieldNames: s.FieldNames,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}

type secretVersionView struct {
	Version    int      `json:"version"`
	FieldNames []string `json:"fieldNames,omitempty"`
	CreatedAt  int64    `json:"createdAt"`
}

// machineView is the machine JSON of the admin plane. Guardrails and
// extensions are always present (null and [] when unset).
type machineView struct {
	ID           string            `json:"id"`
	VaultID      string            `json:"vaultId"`
	Name         string            `json:"name"`
	Kind         string            `json:"kind"`
	PublicKey    []byte            `json:"publicKey"`
	Status       string            `json:"status"`
	Hostname     string            `json:"hostname,omitempty"`
	RegisteredAt int64             `json:"registeredAt"`
	ApprovedAt   int64             `json:"approvedAt,omitempty"`
	ExpiresAt    int64             `json:"expiresAt,omitempty"`
	Purpose      string            `json:"purpose,omitempty"`
	Guardrails   *guard.Guardrails `json:"guardrails"`
	Extensions   []fsm.Extension   `json:"extensions"`
	Projects     []fsm.ProjectID   `json:"projects"`
	Grants       []fsm.SecretID    `json:"grants"`
	LastSeenAt   int64             `json:"lastSeenAt,omitempty"`
	LastSeenIP   string            `json:"lastSeenIp,omitempty"`
}

func newMachineView(m *fsm.Machine) machineView {
	v := machineView{
		ID: string(m.ID), VaultID: string(m.VaultID), Name: m.Name, Kind: m.Kind,
		PublicKey: m.PublicKey, Status: m.Status, Hostname: m.Hostname,
		RegisteredAt: m.RegisteredAt, ApprovedAt: m.ApprovedAt, ExpiresAt: m.ExpiresAt,
		Purpose: m.Purpose, Guardrails: m.Guardrails, Extensions: m.Extensions,
		Projects: m.Projects, Grants: m.Grants, LastSeenAt: m.LastSeenAt, LastSeenIP: m.LastSeenIP,
	}
	if v.Extensions == nil {
		v.Extensions = []fsm.Extension{}
	}
	if v.Projects == nil {
		v.Projects = []fsm.ProjectID{}
	}
	if v.Grants == nil {
		v.Grants = []fsm.SecretID{}
	}
	return v
}

// Bootstrap token statuses derived for listings.
const (
	tokenStatusActive  = "active"
	tokenStatusUsed    = "used"
	tokenStatusExpired = "expired"
	tokenStatusRevoked = "revoked"
)

// tokenView lists an issued bootstrap token; the token and its hash are
// never shown.
type tokenView struct {
	ID          string            `json:"id"`
	VaultID     string            `json:"vaultId"`
	Kind        string            `json:"kind"`
	Status      string            `json:"status"`
	CreatedAt   int64             `json:"createdAt"`
	ExpiresAt   int64             `json:"expiresAt"`
	Uses        int               `json:"uses"`
	MaxUses     int               `json:"maxUses"`
	RevokedAt   int64             `json:"revokedAt,omitempty"`
	MachineName string            `json:"machineName,omitempty"`
	Purpose     string            `json:"purpose,omitempty"`
	Lifetime    *fsm.Lifetime     `json:"lifetime,omitempty"`
	Guardrails  *guard.Guardrails `json:"guardrails,omitempty"`
	ProjectIDs  []fsm.ProjectID   `json:"projectIds,omitempty"`
	SecretIDs   []fsm.SecretID    `json:"secretIds,omitempty"`
}

func newTokenView(t *fsm.BootstrapToken, nowMs int64) tokenView {
	return tokenView{
		ID: t.ID, VaultID: string(t.VaultID), Kind: t.Kind, Status: tokenStatus(t, nowMs),
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, Uses: t.Uses, MaxUses: t.MaxUses,
		RevokedAt: t.RevokedAt, MachineName: t.MachineName, Purpose: t.Purpose,
		Lifetime: t.Lifetime, Guardrails: t.Guardrails,
		ProjectIDs: t.ProjectIDs, SecretIDs: t.SecretIDs,
	}
}

// tokenStatus derives whether a bootstrap token can still register a
// machine at nowMs.
func tokenStatus(t *fsm.BootstrapToken, nowMs int64) string {
	switch {
	case t.RevokedAt != 0:
		return tokenStatusRevoked
	case t.MaxUses > 0 && t.Uses >= t.MaxUses:
		return tokenStatusUsed
	case nowMs >= t.ExpiresAt:
		return tokenStatusExpired
	}
	return tokenStatusActive
}
