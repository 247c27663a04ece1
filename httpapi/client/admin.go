package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// Init initializes a new cluster and returns the first owner token. The
// server responds with 409 ([ErrConflict]) once the cluster is initialized. It
// needs no admin token.
func (c *Client) Init(ctx context.Context) (*InitResult, error) {
	var out InitResult
	if err := c.call(ctx, http.MethodPost, emptyObject, &out, "sys", "init"); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	return &out, nil
}

// Health returns the node's view of the cluster. It needs no admin token.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	req, err := c.transport.newRequest(ctx, http.MethodGet, "/v1/sys/health", nil)
	if err != nil {
		return nil, err
	}
	c.authorize(req)
	resp, err := c.transport.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	body, err := readBounded(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("health: %w", err)
	}
	var out Health
	decodeErr := json.Unmarshal(body, &out)
	switch {
	case resp.StatusCode == http.StatusOK && decodeErr == nil:
		return &out, nil
	case resp.StatusCode == http.StatusServiceUnavailable && decodeErr == nil && out.NodeID != "":
		// An unhealthy node still reports its state; the caller gets both.
		return &out, fmt.Errorf("health: %w", ErrUnhealthy)
	}
	return nil, fmt.Errorf("health: %w", newAPIError(req.Method, req.URL.Path, resp.StatusCode, resp.Header, body))
}

// CreateVault creates a vault named name.
func (c *Client) CreateVault(ctx context.Context, name string) (*Vault, error) {
	in := struct {
		Name string `json:"name"`
	}{name}
	var out Vault
	if err := c.call(ctx, http.MethodPost, in, &out, "admin", "vaults"); err != nil {
		return nil, fmt.Errorf("create vault %q: %w", name, err)
	}
	return &out, nil
}

// ListVaults returns the vaults that the token may see.
func (c *Client) ListVaults(ctx context.Context) ([]Vault, error) {
	var out struct {
		Vaults []Vault `json:"vaults"`
	}
	if err := c.call(ctx, http.MethodGet, nil, &out, "admin", "vaults"); err != nil {
		return nil, fmt.Errorf("list vaults: %w", err)
	}
	return out.Vaults, nil
}

// CreateProject creates a project named name in a vault.
func (c *Client) CreateProject(ctx context.Context, vaultID, name string) (*Project, error) {
	in := struct {
		Name string `json:"name"`
	}{name}
	var out Project
	err := c.call(ctx, http.MethodPost, in, &out, "admin", "vaults", vaultID, "projects")
	if err != nil {
		return nil, fmt.Errorf("create project %q in vault %s: %w", name, vaultID, err)
	}
	return &out, nil
}

// ListProjects returns the projects of a vault.
func (c *Client) ListProjects(ctx context.Context, vaultID string) ([]Project, error) {
	var out struct {
		Projects []Project `json:"projects"`
	}
	err := c.call(ctx, http.MethodGet, nil, &out, "admin", "vaults", vaultID, "projects")
	if err != nil {
		return nil, fmt.Errorf("list projects of vault %s: %w", vaultID, err)
	}
	return out.Projects, nil
}

// CreateSecret creates a secret named name in a project, with a plain
// value or structured fields.
func (c *Client) CreateSecret(ctx context.Context, vaultID, projectID, name string, v SecretValue) (*Secret, error) {
	var out Secret
	err := c.call(ctx, http.MethodPost, newSecretBody(name, v), &out,
		"admin", "vaults", vaultID, "projects", projectID, "secrets")
	if err != nil {
		return nil, fmt.Errorf("create secret %q in project %s: %w", name, projectID, err)
	}
	return &out, nil
}

// UpdateSecret stores a new version of a secret. The response carries the
// new version number.
func (c *Client) UpdateSecret(ctx context.Context, vaultID, secretID string, v SecretValue) (*Secret, error) {
	var out Secret
	err := c.call(ctx, http.MethodPut, newSecretBody("", v), &out,
		"admin", "vaults", vaultID, "secrets", secretID)
	if err != nil {
		return nil, fmt.Errorf("update secret %s: %w", secretID, err)
	}
	return &out, nil
}

// RollbackSecret stores the value of an earlier version as a new version
// and returns the secret at that new version.
func (c *Client) RollbackSecret(ctx context.Context, vaultID, secretID string, version int) (*Secret, error) {
	var out Secret
	err := c.call(ctx, http.MethodPost, map[string]int{"version": version}, &out,
		"admin", "vaults", vaultID, "secrets", secretID, "rollback")
	if err != nil {
		return nil, fmt.Errorf("roll back secret %s to version %d: %w", secretID, version, err)
	}
	return &out, nil
}

// DeletedSecret is the result of [Client.DeleteSecret].
type DeletedSecret struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
	// RevokedGrants lists the machines that lost their grant on the
	// secret.
	RevokedGrants []string `json:"revokedGrants"`
	Confirmation
}

// DeleteSecret deletes a secret with every version and grant. The server
// returns once every node has applied the delete or counts as stale.
func (c *Client) DeleteSecret(ctx context.Context, vaultID, secretID string) (*DeletedSecret, error) {
	var out DeletedSecret
	if err := c.call(ctx, http.MethodDelete, nil, &out, "admin", "vaults", vaultID, "secrets", secretID); err != nil {
		return nil, fmt.Errorf("delete secret %s: %w", secretID, err)
	}
	return &out, nil
}

// ListSecrets returns the metadata of the secrets of a project.
func (c *Client) ListSecrets(ctx context.Context, vaultID, projectID string) ([]Secret, error) {
	var out struct {
		Secrets []Secret `json:"secrets"`
	}
	err := c.call(ctx, http.MethodGet, nil, &out,
		"admin", "vaults", vaultID, "projects", projectID, "secrets")
	if err != nil {
		return nil, fmt.Errorf("list secrets of project %s: %w", projectID, err)
	}
	return out.Secrets, nil
}

// ListBootstrapTokens returns the bootstrap tokens of a vault, used and
// unused, without the tokens themselves.
func (c *Client) ListBootstrapTokens(ctx context.Context, vaultID string) ([]TempTokenInfo, error) {
	var out struct {
		Tokens []TempTokenInfo `json:"tokens"`
	}
	if err := c.call(ctx, http.MethodGet, nil, &out, "admin", "vaults", vaultID, "bootstrap-tokens"); err != nil {
		return nil, fmt.Errorf("list bootstrap tokens of vault %s: %w", vaultID, err)
	}
	return out.Tokens, nil
}

// RevokeBootstrapToken revokes an unused bootstrap token by its id.
func (c *Client) RevokeBootstrapToken(ctx context.Context, vaultID, tokenID string) error {
	if err := c.call(ctx, http.MethodDelete, nil, nil, "admin", "vaults", vaultID, "bootstrap-tokens", tokenID); err != nil {
		return fmt.Errorf("revoke bootstrap token %s: %w", tokenID, err)
	}
	return nil
}

// CreateBootstrapToken creates a single-use registration token for a
// long-lived machine in a vault.
func (c *Client) CreateBootstrapToken(ctx context.Context, vaultID string) (*BootstrapToken, error) {
	var out BootstrapToken
	err := c.call(ctx, http.MethodPost, emptyObject, &out, "admin", "vaults", vaultID, "bootstrap-tokens")
	if err != nil {
		return nil, fmt.Errorf("create bootstrap token in vault %s: %w", vaultID, err)
	}
	return &out, nil
}
