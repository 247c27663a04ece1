package client

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/keyward/keyward/guard"
)

// EnrollmentTokenRequest issues a token that enrolls up to MaxUses
// ephemeral machines, each active from registration with the listed
// projects and grants.
type EnrollmentTokenRequest struct {
	// MaxUses is how many machines the token may enroll, 1 to 10,000.
	MaxUses int
	// Lifetime is how long each machine lives after it enrolls.
	Lifetime Lifetime
	// TokenTTL is how long the token can be used; zero lets the server
	// apply its default (7 days; the maximum is 12 calendar months).
	TokenTTL time.Duration
	// Purpose is free text kept on every enrolled machine.
	Purpose string
	// Guardrails, when not nil, are attached to every enrolled machine.
	Guardrails *guard.Guardrails
	// ProjectIDs are the projects every enrolled machine joins.
	ProjectIDs []string
	// SecretIDs are the secrets every enrolled machine is granted; each
	// must belong to one of ProjectIDs.
	SecretIDs []string
}

type enrollmentTokenBody struct {
	MaxUses    int               `json:"maxUses"`
	Lifetime   Lifetime          `json:"lifetime"`
	TokenTTL   string            `json:"tokenTtl,omitempty"`
	Purpose    string            `json:"purpose,omitempty"`
	Guardrails *guard.Guardrails `json:"guardrails,omitempty"`
	ProjectIDs []string          `json:"projectIds,omitempty"`
	SecretIDs  []string          `json:"secretIds,omitempty"`
}

// IssueEnrollmentToken issues an enrollment token. The response is the
// only place where the token appears.
func (c *Client) IssueEnrollmentToken(ctx context.Context, vaultID string, req EnrollmentTokenRequest) (*TempToken, error) {
	if req.TokenTTL < 0 {
		return nil, invalidArgf("token TTL %s is negative", req.TokenTTL)
	}
	body := enrollmentTokenBody{
		MaxUses:    req.MaxUses,
		Lifetime:   req.Lifetime,
		Purpose:    req.Purpose,
		Guardrails: req.Guardrails,
		ProjectIDs: req.ProjectIDs,
		SecretIDs:  req.SecretIDs,
	}
	if req.TokenTTL > 0 {
		body.TokenTTL = req.TokenTTL.String()
	}

	var out TempToken
	if err := c.call(ctx, http.MethodPost, body, &out, "admin", "vaults", vaultID, "enrollment-tokens"); err != nil {
		return nil, fmt.Errorf("issue enrollment token in vault %s: %w", vaultID, err)
	}
	return &out, nil
}

// ListEnrollmentTokens returns the enrollment tokens of a vault, without
// the token values.
func (c *Client) ListEnrollmentTokens(ctx context.Context, vaultID string) ([]TempTokenInfo, error) {
	var out struct {
		Tokens []TempTokenInfo `json:"tokens"`
	}
	if err := c.call(ctx, http.MethodGet, nil, &out, "admin", "vaults", vaultID, "enrollment-tokens"); err != nil {
		return nil, fmt.Errorf("list enrollment tokens of vault %s: %w", vaultID, err)
	}
	return out.Tokens, nil
}

// RevokeEnrollmentToken revokes an enrollment token by its id. Machines
// it already enrolled keep running until they expire or are revoked.
func (c *Client) RevokeEnrollmentToken(ctx context.Context, vaultID, tokenID string) error {
	if err := c.call(ctx, http.MethodDelete, nil, nil, "admin", "vaults", vaultID, "enrollment-tokens", tokenID); err != nil {
		return fmt.Errorf("revoke enrollment token %s: %w", tokenID, err)
	}
	return nil
}
