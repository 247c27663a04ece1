package client

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/keyward/keyward/guard"
)

// TempTokenRequest issues a temporary-machine bootstrap token.
type TempTokenRequest struct {
	// Name is the name the machine gets when it registers.
	Name string
	// Purpose is free text kept on the machine, for example a ticket.
	Purpose string
	// Lifetime is how long the machine lives after it registers.
	Lifetime Lifetime
	// TokenTTL is how long the token can be used to register; zero lets
	// the server apply its default (1 hour; the maximum is 7 days).
	TokenTTL time.Duration
	// Guardrails, when not nil, are attached to the machine at registration.
	Guardrails *guard.Guardrails
}

type tempTokenBody struct {
	Name       string            `json:"name"`
	Purpose    string            `json:"purpose,omitempty"`
	Lifetime   Lifetime          `json:"lifetime"`
	TokenTTL   string            `json:"tokenTtl,omitempty"`
	Guardrails *guard.Guardrails `json:"guardrails,omitempty"`
}

// IssueTempToken issues a single-use temporary-machine bootstrap token.
// The response is the only place where the token and its commands appear.
func (c *Client) IssueTempToken(ctx context.Context, vaultID string, req TempTokenRequest) (*TempToken, error) {
	if req.TokenTTL < 0 {
		return nil, invalidArgf("token TTL %s is negative", req.TokenTTL)
	}
	body := tempTokenBody{
		Name:       req.Name,
		Purpose:    req.Purpose,
		Lifetime:   req.Lifetime,
		Guardrails: req.Guardrails,
	}
	if req.TokenTTL > 0 {
		body.TokenTTL = req.TokenTTL.String()
	}

	var out TempToken
	err := c.call(ctx, http.MethodPost, body, &out, "admin", "vaults", vaultID, "temp-tokens")
	if err != nil {
		return nil, fmt.Errorf("issue temporary token %q in vault %s: %w", req.Name, vaultID, err)
	}
	return &out, nil
}

// ListTempTokens returns the temporary-machine tokens of a vault, without
// the token values.
func (c *Client) ListTempTokens(ctx context.Context, vaultID string) ([]TempTokenInfo, error) {
	var out struct {
		Tokens []TempTokenInfo `json:"tokens"`
	}
	err := c.call(ctx, http.MethodGet, nil, &out, "admin", "vaults", vaultID, "temp-tokens")
	if err != nil {
		return nil, fmt.Errorf("list temporary tokens of vault %s: %w", vaultID, err)
	}
	return out.Tokens, nil
}

// RevokeTempToken revokes an unused temporary-machine token by its id.
func (c *Client) RevokeTempToken(ctx context.Context, vaultID, tokenID string) error {
	err := c.call(ctx, http.MethodDelete, nil, nil, "admin", "vaults", vaultID, "temp-tokens", tokenID)
	if err != nil {
		return fmt.Errorf("revoke temporary token %s: %w", tokenID, err)
	}
	return nil
}

// ExtendRequest moves a temporary machine's expiry later. Set exactly one
// of ExpiresAt and Duration. The server requires the new expiry to be later
// than the current one and at most 12 calendar months from now.
type ExtendRequest struct {
	// ExpiresAt is the new expiry in Unix milliseconds.
	ExpiresAt int64
	// Duration is added to the current expiry.
	Duration time.Duration
	// Reason is required and kept in the extension history and audit log.
	Reason string
}

type extendBody struct {
	ExpiresAt int64  `json:"expiresAt,omitempty"`
	Duration  string `json:"duration,omitempty"`
	Reason    string `json:"reason"`
}

// Extend extends a temporary machine and returns it with its new expiry.
func (c *Client) Extend(ctx context.Context, vaultID, machineID string, req ExtendRequest) (*Machine, error) {
	body, err := req.body()
	if err != nil {
		return nil, fmt.Errorf("extend machine %s: %w", machineID, err)
	}
	m, err := c.machineCall(ctx, http.MethodPost, body, vaultID, machineID, "extend")
	if err != nil {
		return nil, fmt.Errorf("extend machine %s: %w", machineID, err)
	}
	return m, nil
}

func (r ExtendRequest) body() (extendBody, error) {
	if strings.TrimSpace(r.Reason) == "" {
		return extendBody{}, invalidArgf("a reason is required")
	}
	if r.ExpiresAt < 0 {
		return extendBody{}, invalidArgf("expiresAt %d is negative; pass Unix milliseconds", r.ExpiresAt)
	}
	if r.Duration < 0 {
		return extendBody{}, invalidArgf("duration %s is negative; an extension moves the expiry later", r.Duration)
	}
	hasTime, hasDuration := r.ExpiresAt > 0, r.Duration > 0
	if hasTime == hasDuration {
		return extendBody{}, invalidArgf("set exactly one of a positive expiresAt and a positive duration")
	}

	body := extendBody{ExpiresAt: r.ExpiresAt, Reason: r.Reason}
	if hasDuration {
		body.Duration = r.Duration.String()
	}
	return body, nil
}

// Revert undoes the most recent extension that is still in force and
// returns the machine with its restored expiry. The machine is expired at
// once when the restored expiry has passed.
func (c *Client) Revert(ctx context.Context, vaultID, machineID, reason string) (*Machine, error) {
	if strings.TrimSpace(reason) == "" {
		return nil, fmt.Errorf("revert extension of machine %s: %w", machineID, invalidArgf("a reason is required"))
	}
	in := struct {
		Reason string `json:"reason"`
	}{reason}
	m, err := c.machineCall(ctx, http.MethodPost, in, vaultID, machineID, "revert")
	if err != nil {
		return nil, fmt.Errorf("revert extension of machine %s: %w", machineID, err)
	}
	return m, nil
}

// Extensions returns a machine's extension history in the order the
// server stores it (append order), reverted entries included.
func (c *Client) Extensions(ctx context.Context, vaultID, machineID string) ([]Extension, error) {
	var out struct {
		Extensions []Extension `json:"extensions"`
	}
	err := c.call(ctx, http.MethodGet, nil, &out, "admin", "vaults", vaultID, "machines", machineID, "extensions")
	if err != nil {
		return nil, fmt.Errorf("list extensions of machine %s: %w", machineID, err)
	}
	return out.Extensions, nil
}

// SetGuardrails replaces a machine's guardrails with g; an empty g
// removes every axis.
func (c *Client) SetGuardrails(ctx context.Context, vaultID, machineID string, g guard.Guardrails) (*Machine, error) {
	m, err := c.machineCall(ctx, http.MethodPut, g, vaultID, machineID, "guardrails")
	if err != nil {
		return nil, fmt.Errorf("set guardrails of machine %s: %w", machineID, err)
	}
	return m, nil
}
