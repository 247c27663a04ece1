package client

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// AdminTokenRequest creates an admin token.
type AdminTokenRequest struct {
	// Name identifies who or what uses the token.
	Name string
	// Role is "owner", "operator" or "auditor".
	Role string
	// Vaults is ["*"] for every vault, or a list of vault ids; it must lie
	// inside the calling token's own scope.
	Vaults []string
	// TTL is the token's lifetime; zero means it does not expire.
	TTL time.Duration
}

// AdminToken describes an admin token. Token is set only in the response
// that created it.
type AdminToken struct {
	ID        string   `json:"id"`
	Token     string   `json:"token,omitempty"`
	Name      string   `json:"name"`
	Role      string   `json:"role"`
	Vaults    []string `json:"vaults"`
	Status    string   `json:"status,omitempty"`
	CreatedAt int64    `json:"createdAt,omitempty"`
	ExpiresAt int64    `json:"expiresAt,omitempty"`
	RevokedAt int64    `json:"revokedAt,omitempty"`
	Confirmation
}

type adminTokenBody struct {
	Name   string   `json:"name"`
	Role   string   `json:"role"`
	Vaults []string `json:"vaults"`
	TTL    string   `json:"ttl,omitempty"`
}

// CreateAdminToken creates an admin token (owners only). The response is
// the only place where the token appears.
func (c *Client) CreateAdminToken(ctx context.Context, req AdminTokenRequest) (*AdminToken, error) {
	if req.TTL < 0 {
		return nil, invalidArgf("token TTL %s is negative", req.TTL)
	}
	body := adminTokenBody{Name: req.Name, Role: req.Role, Vaults: req.Vaults}
	if req.TTL > 0 {
		body.TTL = req.TTL.String()
	}
	var out AdminToken
	if err := c.call(ctx, http.MethodPost, body, &out, "admin", "tokens"); err != nil {
		return nil, fmt.Errorf("create admin token %q: %w", req.Name, err)
	}
	return &out, nil
}

// ListAdminTokens returns the admin tokens inside the caller's scope,
// without the token values.
func (c *Client) ListAdminTokens(ctx context.Context) ([]AdminToken, error) {
	var out struct {
		Tokens []AdminToken `json:"tokens"`
	}
	if err := c.call(ctx, http.MethodGet, nil, &out, "admin", "tokens"); err != nil {
		return nil, fmt.Errorf("list admin tokens: %w", err)
	}
	return out.Tokens, nil
}

// RevokeAdminToken revokes an admin token by its id. The server returns
// once every node rejects the token or counts as stale.
func (c *Client) RevokeAdminToken(ctx context.Context, tokenID string) (*AdminToken, error) {
	var out AdminToken
	if err := c.call(ctx, http.MethodDelete, nil, &out, "admin", "tokens", tokenID); err != nil {
		return nil, fmt.Errorf("revoke admin token %s: %w", tokenID, err)
	}
	return &out, nil
}
