package httpapi

import (
	"net/netip"
	"strconv"

	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/guard"
)

// geoBuilder is implemented by GeoLookups that can name their database
// build, which audit events record next to a country decision.
type geoBuilder interface {
	Build() string
}

// checkGuardrails is check 9. Every axis is evaluated on every request
// (nothing is cached per connection or per key), so an edit applied by this
// node's FSM takes effect on the next request. A failing axis in observe
// mode is audited as temp_machine_would_block and the request proceeds.
// Any other failing axis blocks the request, and the temp_machine_blocked
// event names every failing axis with its observed value. A block also
// counts towards the block throttle of the machine and client address.
func (s *Server) checkGuardrails(rc *request, entry *fsm.MachineEntry, client netip.Addr) error {
	if entry.Policy == nil {
		return nil
	}
	decision := entry.Policy.Evaluate(client, rc.now, s.geo)
	if len(decision.Failures) == 0 {
		return nil
	}
	if decision.Blocked && s.blockThrottle != nil {
		s.blockThrottle.Blocked(string(entry.Machine.ID), client, rc.now)
	}
	return s.guardrailOutcome(rc, entry, decision, false)
}

// checkBlockThrottle runs between checks 4 and 5. When the guardrail has
// blocked this machine from this client address more than the throttle
// allows (guard.BlockThrottle), the request is rejected before its
// signature is verified: it gets the 403 {"error":"Access denied"} of a
// verified block, and its temp_machine_blocked event is marked unverified.
// The response is the same because a denial grants nothing either way, and
// a 401 would tell the caller that the throttle is active.
//
// The throttle only skips the signature. Status, expiry and every
// guardrail axis are checked afresh on each request. A request that the
// full checks would not block with "Access denied" (an edited guardrail,
// an opened time window, a disabled or expired machine) therefore falls
// through to them at once, and an allowed request is never throttled.
func (s *Server) checkBlockThrottle(rc *request, entry *fsm.MachineEntry, client netip.Addr) error {
	if s.blockThrottle == nil || entry.Policy == nil {
		return nil
	}
	m := &entry.Machine
	if !s.blockThrottle.Throttled(string(m.ID), client, rc.now) {
		return nil
	}
	if m.Status != fsm.StatusActive || machineExpired(m, rc.now) {
		return nil
	}
	decision := entry.Policy.Evaluate(client, rc.now, s.geo)
	if !decision.Blocked {
		return nil
	}
	s.metrics.blockThrottled.Inc()
	return s.guardrailOutcome(rc, entry, decision, true)
}

// guardrailOutcome counts and audits the failing axes of decision and
// returns the block, if any. unverified marks a request whose signature
// was not checked.
func (s *Server) guardrailOutcome(rc *request, entry *fsm.MachineEntry, decision guard.Decision, unverified bool) error {
	for _, f := range decision.Failures {
		s.metrics.guardrailBlocks.WithLabelValues(f.Axis, strconv.FormatBool(f.Observe)).Inc()
	}

	action, severity := ActionTempMachineWouldBlock, severityLow
	if decision.Blocked {
		action, severity = ActionTempMachineBlocked, severityHigh
	}
	ev := s.machineEvent(rc, action, severity, &entry.Machine)
	ev.Fields = s.guardrailFields(rc, decision.Failures)
	ev.Detail = guardrailDetail(decision.Failures)
	ev.Unverified = unverified
	s.audit(ev)

	if decision.Blocked {
		rc.result = resultBlocked
		return fail(ErrForbidden, msgAccessDenied)
	}
	return nil
}

// guardrailFields lists the failing axes in the audit event: "axes" holds
// each failure in full, and each axis name ("ip", "country",
// "time_window") maps to its observed value so queries can filter on it.
func (s *Server) guardrailFields(rc *request, failures []guard.AxisResult) map[string]any {
	client, proxy := s.clientAddress(rc)
	axes := make([]AxisFailure, 0, len(failures))
	fields := map[string]any{"clientIp": addrText(client)}
	for _, f := range failures {
		axes = append(axes, AxisFailure{Axis: f.Axis, Observed: f.Observed, Reason: f.Reason, Observe: f.Observe})
		fields[f.Axis] = f.Observed
		if f.Axis == guard.AxisCountry {
			if b, ok := s.geo.(geoBuilder); ok {
				fields["geoBuild"] = b.Build()
			}
		}
	}
	fields["axes"] = axes
	if proxy.IsValid() {
		fields["proxyIp"] = proxy.String()
	}
	return fields
}

// guardrailDetail is a one-line summary such as
// "ip 198.51.100.7 not_in_allowlist; country unknown country_unknown".
func guardrailDetail(failures []guard.AxisResult) string {
	detail := ""
	for i, f := range failures {
		if i > 0 {
			detail += "; "
		}
		detail += f.Axis + " " + f.Observed + " " + f.Reason
		if f.Observe {
			detail += " (observe)"
		}
	}
	return detail
}
