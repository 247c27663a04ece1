package fsm

import (
	"github.com/keyward/keyward/fsm/seal"
	"github.com/keyward/keyward/guard"
)

// Identifier types. Each is a string on the wire and in Pebble keys.
type (
	// VaultID is "vault_" followed by 16 lower-case base-36 characters.
	VaultID string
	// ProjectID is "proj_" followed by 10 lower-case base-36 characters.
	ProjectID string
	// SecretID is "sk_" followed by 10 lower-case base-36 characters.
	SecretID string
	// MachineID is a lower-case UUID v4.
	MachineID string
)

// Machine kinds.
const (
	KindStandard  = "standard"
	KindEphemeral = "ephemeral"
	KindTemp      = "temp"
)

// Machine statuses.
const (
	StatusPending  = "pending"
	StatusActive   = "active"
	StatusDisabled = "disabled"
	StatusExpired  = "expired"
	StatusRevoked  = "revoked"
)

// Secret types.
const (
	SecretTypeSecret     = "secret"
	SecretTypeStructured = "structured"
)

// Admin token roles.
const (
	RoleOwner    = "owner"
	RoleOperator = "operator"
	RoleAuditor  = "auditor"
)

// Bootstrap token kinds.
const (
	TokenKindStandard   = "standard"
	TokenKindTemp       = "temp"
	TokenKindEnrollment = "enrollment"
)

// Vault is a tenant boundary: machines, projects and admin-token scopes all
// belong to one vault.
type Vault struct {
	ID          VaultID     `json:"id"`
	Name        string      `json:"name"`
	CreatedAt   int64       `json:"createdAt"`
	IPAllowlist IPAllowlist `json:"ipAllowlist"`
}

// IPAllowlist is the vault-wide source-address filter, checked before any
// machine guardrail.
type IPAllowlist struct {
	Enabled bool           `json:"enabled"`
	Entries []IPAllowEntry `json:"entries"`
}

// IPAllowEntry is one CIDR of a vault allowlist with an operator label.
type IPAllowEntry struct {
	CIDR  string `json:"cidr"`
	Label string `json:"label"`
}

// Project groups secrets. WrappedKey is the project key sealed by the root
// key; it never leaves the cluster.
type Project struct {
	ID         ProjectID `json:"id"`
	VaultID    VaultID   `json:"vaultId"`
	Name       string    `json:"name"`
	CreatedAt  int64     `json:"createdAt"`
	WrappedKey []byte    `json:"wrappedKey"`
}

// Secret is the metadata of a secret. Values live in SecretVersion records.
type Secret struct {
	ID         SecretID  `json:"id"`
	ProjectID  ProjectID `json:"projectId"`
	VaultID    VaultID   `json:"vaultId"`
	Name       string    `json:"name"`
	Type       string    `json:"type"`
	Version    int       `json:"version"`
	FieldNames []string  `json:"fieldNames,omitempty"`
	CreatedAt  int64     `json:"createdAt"`
	UpdatedAt  int64     `json:"updatedAt"`
}

// Sealed is a secret value encrypted with AES-256-GCM under a per-version
// data key; WrappedKey is that data key sealed by the project key. It is
// the seal package's type, so sealed values pass between the two packages
// without conversion.
type Sealed = seal.Sealed

// SecretVersion is one stored value of a secret.
type SecretVersion struct {
	SecretID   SecretID `json:"secretId"`
	Version    int      `json:"version"`
	FieldNames []string `json:"fieldNames,omitempty"`
	Sealed     Sealed   `json:"sealed"`
	CreatedAt  int64    `json:"createdAt"`
}

// Extension is one entry of a temporary machine's append-only extension
// history. RevertedAt is zero while the extension is in force.
type Extension struct {
	ID                string `json:"id"`
	PreviousExpiresAt int64  `json:"previousExpiresAt"`
	NewExpiresAt      int64  `json:"newExpiresAt"`
	Reason            string `json:"reason"`
	Actor             string `json:"actor"`
	CreatedAt         int64  `json:"createdAt"`
	RevertedAt        int64  `json:"revertedAt,omitempty"`
	RevertedBy        string `json:"revertedBy,omitempty"`
	RevertReason      string `json:"revertReason,omitempty"`
}

// Machine is a workload identity. ExpiresAt is zero for machines that do
// not expire (kind standard). Projects and Grants are kept sorted.
type Machine struct {
	ID           MachineID         `json:"id"`
	VaultID      VaultID           `json:"vaultId"`
	Name         string            `json:"name"`
	Kind         string            `json:"kind"`
	PublicKey    []byte            `json:"publicKey"`
	Status       string            `json:"status"`
	Hostname     string            `json:"hostname,omitempty"`
	RegisteredAt int64             `json:"registeredAt"`
	ApprovedAt   int64             `json:"approvedAt,omitempty"`
	ExpiresAt    int64             `json:"expiresAt,omitempty"`
	Purpose      string            `json:"purpose,omitempty"`
	Guardrails   *guard.Guardrails `json:"guardrails,omitempty"`
	Extensions   []Extension       `json:"extensions,omitempty"`
	Projects     []ProjectID       `json:"projects"`
	Grants       []SecretID        `json:"grants"`
	LastSeenAt   int64             `json:"lastSeenAt,omitempty"`
	LastSeenIP   string            `json:"lastSeenIp,omitempty"`
}

// Lifetime is a temporary machine's lifetime in calendar units, added in
// UTC by guard.AddLifetime.
type Lifetime struct {
	Months int `json:"months"`
	Days   int `json:"days"`
	Hours  int `json:"hours"`
}

// BootstrapToken is a registration token. Only the SHA-256 of the token is
// stored (Hash, lower-case hex); ID is a public handle for list and revoke.
type BootstrapToken struct {
	ID        string  `json:"id"`
	Hash      string  `json:"hash"`
	VaultID   VaultID `json:"vaultId"`
	Kind      string  `json:"kind"`
	CreatedAt int64   `json:"createdAt"`
	ExpiresAt int64   `json:"expiresAt"`
	Uses      int     `json:"uses"`
	MaxUses   int     `json:"maxUses"`
	RevokedAt int64   `json:"revokedAt,omitempty"`

	// Temp tokens only.
	MachineName string `json:"machineName,omitempty"`

	// Temp and enrollment tokens.
	Purpose    string            `json:"purpose,omitempty"`
	Lifetime   *Lifetime         `json:"lifetime,omitempty"`
	Guardrails *guard.Guardrails `json:"guardrails,omitempty"`

	// Enrollment tokens only: the projects every enrolled machine joins and
	// the secrets it is granted, sorted. Grants name secrets of those
	// projects only.
	ProjectIDs []ProjectID `json:"projectIds,omitempty"`
	SecretIDs  []SecretID  `json:"secretIds,omitempty"`
}

// AdminToken authenticates an operator. Only the SHA-256 (Hash, lower-case
// hex) is stored. Vaults is ["*"] for every vault.
type AdminToken struct {
	ID        string   `json:"id"`
	Hash      string   `json:"hash"`
	Name      string   `json:"name"`
	Role      string   `json:"role"`
	Vaults    []string `json:"vaults"`
	CreatedAt int64    `json:"createdAt"`
	ExpiresAt int64    `json:"expiresAt,omitempty"`
	RevokedAt int64    `json:"revokedAt,omitempty"`
}
