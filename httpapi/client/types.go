package client

import (
	"encoding/json"
	"fmt"

	"github.com/keyward/keyward/guard"
)

// Times on the wire are Unix epoch milliseconds; a zero time field means
// "not set" and is omitted.

// InitResult is the response of POST /v1/sys/init.
type InitResult struct {
	RootToken string `json:"rootToken"`
}

// Health is the response of GET /v1/sys/health.
type Health struct {
	NodeID       string `json:"nodeId"`
	State        string `json:"state"`
	LeaderID     string `json:"leaderId"`
	AppliedIndex uint64 `json:"appliedIndex"`

	// The fields below are pointers so that output shows exactly what
	// the server sent: nil means the server did not report the field.
	Staleness     *string `json:"staleness,omitempty"`
	StalenessMs   *int64  `json:"stalenessMs,omitempty"`
	Ready         *bool   `json:"ready,omitempty"`
	Healthy       *bool   `json:"healthy,omitempty"`
	ClockOffsetMs *int64  `json:"clockOffsetMs,omitempty"`
	ClockSkewed   *bool   `json:"clockSkewed,omitempty"`
	Initialized   *bool   `json:"initialized,omitempty"`

	RootKeyMismatch   *bool   `json:"rootKeyMismatch,omitempty"`
	DiskStalled       *bool   `json:"diskStalled,omitempty"`
	FsyncLatencyMaxMs *int64  `json:"fsyncLatencyMaxMs,omitempty"`
	DiskFreeBytes     *uint64 `json:"diskFreeBytes,omitempty"`
	DiskLow           *bool   `json:"diskLow,omitempty"`
}

// Vault is a tenant boundary that holds projects and machines.
type Vault struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt int64  `json:"createdAt,omitempty"`
}

// Project groups secrets inside a vault.
type Project struct {
	ID        string `json:"id"`
	VaultID   string `json:"vaultId,omitempty"`
	Name      string `json:"name"`
	CreatedAt int64  `json:"createdAt,omitempty"`
}

// Secret is the metadata of a secret as the admin plane returns it; the
// admin plane never returns values.
type Secret struct {
	ID         string   `json:"id"`
	ProjectID  string   `json:"projectId,omitempty"`
	VaultID    string   `json:"vaultId,omitempty"`
	Name       string   `json:"name"`
	Type       string   `json:"type,omitempty"`
	Version    int      `json:"version"`
	FieldNames []string `json:"fieldNames,omitempty"`
	CreatedAt  int64    `json:"createdAt,omitempty"`
	UpdatedAt  int64    `json:"updatedAt,omitempty"`
}

// SecretValue is the content written to a secret: a plain Value, or
// structured Fields when Fields is not nil. An empty Value is a valid
// plain value.
type SecretValue struct {
	Value  string
	Fields map[string]string
}

// secretBody is the JSON of a create or update request. Exactly one of
// Value and Fields is set, so the server can tell the two secret types apart.
type secretBody struct {
	Name   string            `json:"name,omitempty"`
	Value  *string           `json:"value,omitempty"`
	Fields map[string]string `json:"fields,omitempty"`
}

func newSecretBody(name string, v SecretValue) secretBody {
	if v.Fields != nil {
		return secretBody{Name: name, Fields: v.Fields}
	}
	value := v.Value
	return secretBody{Name: name, Value: &value}
}

// Commands holds the one-line registration commands shown once when a
// bootstrap token is created: Sh for Linux and macOS, PS for Windows
// PowerShell.
type Commands struct {
	Sh string `json:"sh"`
	PS string `json:"ps"`
}

// BootstrapToken is a new registration token for a long-lived machine.
// Token is shown only in this response; the server keeps its SHA-256.
type BootstrapToken struct {
	ID        string   `json:"id,omitempty"`
	Token     string   `json:"token"`
	ExpiresAt int64    `json:"expiresAt"`
	Commands  Commands `json:"commands"`
}

// Machine is a machine identity as the admin plane returns it.
type Machine struct {
	ID           string            `json:"id"`
	VaultID      string            `json:"vaultId"`
	Name         string            `json:"name"`
	Kind         string            `json:"kind"`
	PublicKey    []byte            `json:"publicKey,omitempty"`
	Status       string            `json:"status"`
	Hostname     string            `json:"hostname,omitempty"`
	RegisteredAt int64             `json:"registeredAt,omitempty"`
	ApprovedAt   int64             `json:"approvedAt,omitempty"`
	ExpiresAt    int64             `json:"expiresAt,omitempty"`
	Purpose      string            `json:"purpose,omitempty"`
	Guardrails   *guard.Guardrails `json:"guardrails,omitempty"`
	Extensions   []Extension       `json:"extensions,omitempty"`
	Projects     []string          `json:"projects"`
	Grants       []string          `json:"grants"`
	LastSeenAt   int64             `json:"lastSeenAt,omitempty"`
	LastSeenIP   string            `json:"lastSeenIp,omitempty"`
	Confirmation
}

// Confirmation is set in the response to a security-critical write (a
// revoke, disable, deny, grant change, guardrail change, revert, purge,
// secret delete or admin token revoke): how many nodes applied the write
// before the server returned. Its fields are zero on other responses.
type Confirmation struct {
	ConfirmedNodes int `json:"confirmedNodes,omitempty"`
	ClusterNodes   int `json:"clusterNodes,omitempty"`
	// UnconfirmedNodes lists the nodes that did not confirm in time. Each
	// counts as stale and rejects machine and admin requests until it has
	// applied the write.
	UnconfirmedNodes []string `json:"unconfirmedNodes,omitempty"`
}

// Extension is one entry of a temporary machine's extension history.
// RevertedAt is zero while the extension is in force.
type Extension struct {
	ID                string `json:"id"`
	PreviousExpiresAt int64  `json:"previousExpiresAt"`
	NewExpiresAt      int64  `json:"newExpiresAt"`
	Reason            string `json:"reason"`
	Actor             string `json:"actor"`
	CreatedAt         int64  `json:"createdAt"`
	RevertedAt        int64  `json:"revertedAt,omitempty"`
	RevertedBy        string `json:"revertedBy,omitempty"`
}

// TempToken is a new temporary-machine bootstrap token. Token and Commands
// are shown only in this response.
type TempToken struct {
	ID        string   `json:"id"`
	Token     string   `json:"token"`
	ExpiresAt int64    `json:"expiresAt"`
	Commands  Commands `json:"commands"`
}

// TempTokenInfo describes an issued temporary-machine token in a listing;
// the token itself is never listed.
type TempTokenInfo struct {
	ID      string `json:"id"`
	VaultID string `json:"vaultId,omitempty"`
	Kind    string `json:"kind,omitempty"`
	// Status is "active", "used", "expired" or "revoked", derived by the
	// server when it lists the token.
	Status      string            `json:"status,omitempty"`
	CreatedAt   int64             `json:"createdAt,omitempty"`
	ExpiresAt   int64             `json:"expiresAt"`
	Uses        int               `json:"uses"`
	MaxUses     int               `json:"maxUses"`
	RevokedAt   int64             `json:"revokedAt,omitempty"`
	MachineName string            `json:"machineName,omitempty"`
	Purpose     string            `json:"purpose,omitempty"`
	Lifetime    *Lifetime         `json:"lifetime,omitempty"`
	Guardrails  *guard.Guardrails `json:"guardrails,omitempty"`
	// ProjectIDs and SecretIDs are set on enrollment tokens only.
	ProjectIDs []string `json:"projectIds,omitempty"`
	SecretIDs  []string `json:"secretIds,omitempty"`
}

// MachineSecret is one entry of a machine-plane listing or export. Value is
// set only by an export.
type MachineSecret struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	FieldNames FieldNames `json:"fieldNames"`
	ProjectID  string     `json:"projectId"`
	Value      string     `json:"value,omitempty"`
}

// FieldNames is the field list of a structured secret. The machine
// protocol sends it as null (a plain secret) or as a string that holds a
// JSON array, for example "[\"host\",\"password\"]".
type FieldNames []string

// UnmarshalJSON accepts null, a string holding a JSON array, or a JSON
// array.
func (f *FieldNames) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*f = nil
		return nil
	}

	var names []string
	if err := json.Unmarshal(data, &names); err == nil {
		*f = names
		return nil
	}

	var encoded string
	if err := json.Unmarshal(data, &encoded); err != nil {
		return fmt.Errorf("fieldNames: want null, a string or an array: %w", err)
	}
	if err := json.Unmarshal([]byte(encoded), &names); err != nil {
		return fmt.Errorf("fieldNames: string %q is not a JSON array of strings: %w", encoded, err)
	}
	*f = names
	return nil
}

// MarshalJSON writes the wire form: null, or a string holding a JSON array.
func (f FieldNames) MarshalJSON() ([]byte, error) {
	if f == nil {
		return []byte("null"), nil
	}
	inner, err := json.Marshal([]string(f))
	if err != nil {
		return nil, err
	}
	return json.Marshal(string(inner))
}

// PollChange is the state of one watched secret in a poll response: status is
// "changed", "deleted" or "access_denied".
type PollChange struct {
	Status string `json:"status"`
}

// AccessCheck is the response of POST /v1/verify-access.
type AccessCheck struct {
	Valid       bool   `json:"valid"`
	ProjectName string `json:"projectName,omitempty"`
	Error       string `json:"error,omitempty"`
}
