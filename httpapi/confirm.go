package httpapi

import (
	"context"
	"encoding/json"

	"github.com/keyward/keyward/fsm"
)

// securityCritical reports whether a command takes access away from a
// machine: revoke, disable, deny, a grant change, a project detach, a
// guardrail change, a vault allowlist change, an extension revert, a purge,
// an admin token revoke or a secret delete. Such a write returns only when every node applied it or counts as
// stale (cluster.Node.ApplyConfirmed).
//
// Every guardrail and allowlist change counts, because telling a
// tightening from a loosening would need a comparison of CIDR sets,
// countries and windows, and a wrong result would let a stale node keep
// serving. Every grant change counts too: the new list replaces the old
// one, and this node's copy of the old one may lag the leader's, so a
// removal could look like an addition here.
func (s *Server) securityCritical(p proposal) bool {
	switch p.typ {
	case fsm.CmdDetachProject, fsm.CmdSetGuardrails, fsm.CmdSetVaultAllowlist,
		fsm.CmdRevertExtension, fsm.CmdPurgeMachine, fsm.CmdSetGrants, fsm.CmdRevokeAdminToken,
		fsm.CmdDeleteSecret:
		return true
	case fsm.CmdSetMachineStatus:
		payload, ok := p.payload.(fsm.SetMachineStatusPayload)
		return ok && (payload.Action == fsm.ActionRevoke || payload.Action == fsm.ActionDisable ||
			payload.Action == fsm.ActionDeny)
	}
	return false
}

// applyCommand applies cmd, waiting for every node's confirmation when p is
// security-critical; the confirmation is kept on rc for the response.
func (s *Server) applyCommand(ctx context.Context, rc *request, p proposal, cmd *fsm.Command) (*fsm.Response, error) {
	if !s.securityCritical(p) {
		return s.node.Apply(ctx, cmd)
	}
	resp, conf, err := s.node.ApplyConfirmed(ctx, cmd, s.cfg.MaxStaleness)
	if err == nil && conf.Members > 0 {
		rc.confirmation = &conf
	}
	return resp, err
}

// withConfirmation adds confirmedNodes, clusterNodes and, when some node
// did not confirm, unconfirmedNodes to a JSON object response of a
// security-critical write. Other values are returned unchanged.
func withConfirmation(rc *request, v any) any {
	conf := rc.confirmation
	if conf == nil {
		return v
	}
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return v
	}
	fields["confirmedNodes"] = mustMarshal(conf.Confirmed)
	fields["clusterNodes"] = mustMarshal(conf.Members)
	if len(conf.Unconfirmed) > 0 {
		fields["unconfirmedNodes"] = mustMarshal(conf.Unconfirmed)
	}
	return fields
}

// mustMarshal encodes values that always encode (numbers, string lists).
func mustMarshal(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
