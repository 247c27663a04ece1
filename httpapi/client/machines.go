package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// Machine actions accepted by [Client.MachineAction].
const (
	ActionApprove = "approve"
	ActionDeny    = "deny"
	ActionRevoke  = "revoke"
	ActionDisable = "disable"
	ActionEnable  = "enable"
)

// ListMachines returns the machines of a vault.
func (c *Client) ListMachines(ctx context.Context, vaultID string) ([]Machine, error) {
	var out struct {
		Machines []Machine `json:"machines"`
	}
	err := c.call(ctx, http.MethodGet, nil, &out, "admin", "vaults", vaultID, "machines")
	if err != nil {
		return nil, fmt.Errorf("list machines of vault %s: %w", vaultID, err)
	}
	return out.Machines, nil
}

// GetMachine returns one machine.
func (c *Client) GetMachine(ctx context.Context, vaultID, machineID string) (*Machine, error) {
	var out Machine
	err := c.call(ctx, http.MethodGet, nil, &out, "admin", "vaults", vaultID, "machines", machineID)
	if err != nil {
		return nil, fmt.Errorf("get machine %s: %w", machineID, err)
	}
	return &out, nil
}

// ApproveMachine activates a pending machine.
func (c *Client) ApproveMachine(ctx context.Context, vaultID, machineID string) (*Machine, error) {
	return c.MachineAction(ctx, vaultID, machineID, ActionApprove)
}

// DenyMachine rejects a pending machine.
func (c *Client) DenyMachine(ctx context.Context, vaultID, machineID string) (*Machine, error) {
	return c.MachineAction(ctx, vaultID, machineID, ActionDeny)
}

// RevokeMachine revokes a machine for good.
func (c *Client) RevokeMachine(ctx context.Context, vaultID, machineID string) (*Machine, error) {
	return c.MachineAction(ctx, vaultID, machineID, ActionRevoke)
}

// DisableMachine suspends a machine until it is enabled again.
func (c *Client) DisableMachine(ctx context.Context, vaultID, machineID string) (*Machine, error) {
	return c.MachineAction(ctx, vaultID, machineID, ActionDisable)
}

// EnableMachine re-activates a disabled machine.
func (c *Client) EnableMachine(ctx context.Context, vaultID, machineID string) (*Machine, error) {
	return c.MachineAction(ctx, vaultID, machineID, ActionEnable)
}

// MachineAction sends POST …/machines/{machineId}/{action} for one of the
// Action constants. It returns the updated machine, or nil when the server
// responded with an empty body.
func (c *Client) MachineAction(ctx context.Context, vaultID, machineID, action string) (*Machine, error) {
	switch action {
	case ActionApprove, ActionDeny, ActionRevoke, ActionDisable, ActionEnable:
	default:
		return nil, invalidArgf("machine action %q is not one of approve, deny, revoke, disable, enable", action)
	}
	m, err := c.machineCall(ctx, http.MethodPost, emptyObject, vaultID, machineID, action)
	if err != nil {
		return nil, fmt.Errorf("%s machine %s: %w", action, machineID, err)
	}
	return m, nil
}

// RenameMachine sets a machine's display name; its id does not change.
func (c *Client) RenameMachine(ctx context.Context, vaultID, machineID, name string) (*Machine, error) {
	m, err := c.machineCall(ctx, http.MethodPost, map[string]string{"name": name}, vaultID, machineID, "rename")
	if err != nil {
		return nil, fmt.Errorf("rename machine %s: %w", machineID, err)
	}
	return m, nil
}

// AttachProject makes a machine a member of a project. Membership alone
// grants no secret; see [Client.SetGrants].
func (c *Client) AttachProject(ctx context.Context, vaultID, machineID, projectID string) (*Machine, error) {
	in := struct {
		ProjectID string `json:"projectId"`
	}{projectID}
	m, err := c.machineCall(ctx, http.MethodPost, in, vaultID, machineID, "projects")
	if err != nil {
		return nil, fmt.Errorf("attach project %s to machine %s: %w", projectID, machineID, err)
	}
	return m, nil
}

// SetGrants replaces the set of secrets that a machine may read with
// secretIDs; an empty list removes every grant.
func (c *Client) SetGrants(ctx context.Context, vaultID, machineID string, secretIDs []string) (*Machine, error) {
	if secretIDs == nil {
		secretIDs = []string{}
	}
	in := struct {
		SecretIDs []string `json:"secretIds"`
	}{secretIDs}
	m, err := c.machineCall(ctx, http.MethodPut, in, vaultID, machineID, "grants")
	if err != nil {
		return nil, fmt.Errorf("set grants of machine %s: %w", machineID, err)
	}
	return m, nil
}

// machineCall sends a request under …/machines/{machineId}/ and decodes
// the machine in the response, if any.
func (c *Client) machineCall(ctx context.Context, method string, in any, vaultID, machineID string, rest ...string) (*Machine, error) {
	segments := append([]string{"admin", "vaults", vaultID, "machines", machineID}, rest...)
	var raw json.RawMessage
	if err := c.call(ctx, method, in, &raw, segments...); err != nil {
		return nil, err
	}
	return decodeOptionalMachine(raw)
}

func decodeOptionalMachine(raw json.RawMessage) (*Machine, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var m Machine
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("decode machine: %w", err)
	}
	return &m, nil
}

// PurgedMachine is the response to a machine purge, a security-critical
// write: the machine's id and how many nodes applied the purge.
type PurgedMachine struct {
	ID     string `json:"id"`
	Purged bool   `json:"purged"`
	Confirmation
}

// PurgeMachine deletes the record of a revoked or expired machine and
// frees its public key. The audit trail keeps what it did.
func (c *Client) PurgeMachine(ctx context.Context, vaultID, machineID string) (*PurgedMachine, error) {
	var out PurgedMachine
	if err := c.call(ctx, http.MethodDelete, nil, &out, "admin", "vaults", vaultID, "machines", machineID); err != nil {
		return nil, fmt.Errorf("purge machine %s: %w", machineID, err)
	}
	return &out, nil
}
