package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/guard"
)

// headerContentSHA256 is an optional header with the hex SHA-256 of the
// body. The server always hashes the bytes it received. When the header is
// sent it must match that hash, so a body swapped in transit is rejected
// even before the signature check.
const headerContentSHA256 = "X-Content-Sha256"

// msgAccessDenied is the body of a vault-allowlist or guardrail block; it
// names nothing so that a blocked caller learns nothing about the rules.
const msgAccessDenied = "Access denied"

// machineCall is a signed request that passed checks 1 to 9. It comes
// from machineCallPool and goes back when the handler returns, so a
// handler must not keep it, or its body, past its return.
type machineCall struct {
	entry   *fsm.MachineEntry
	machine *fsm.Machine
	client  netip.Addr
	// body is the request body as received. It is a fasthttp buffer, valid
	// only until the handler returns.
	body []byte
}

// signed wraps a machine-plane handler with the signed-request checks.
func (s *Server) signed(handle func(*request, *machineCall) error) func(*request) error {
	return func(rc *request) error {
		mc, err := s.authenticateMachine(rc)
		if err != nil {
			return err
		}
		defer releaseMachineCall(mc)
		return handle(rc, mc)
	}
}

// authenticateMachine runs checks 1 to 9 of a signed request in their fixed
// order; the first failure is final. Check 10 (route authorization) belongs
// to each handler.
func (s *Server) authenticateMachine(rc *request) (*machineCall, error) {
	rc.signed = true
	if err := s.checkFresh(); err != nil {
		return nil, err
	}
	client, _ := s.clientAddress(rc)
	body := rc.ctx.PostBody()
	sum := sha256.Sum256(body)
	rc.bodyHash = bodyHashText(body, &sum)

	// 1. Headers present and well formed, no query string.
	h, err := readSignedHeaders(rc)
	if err != nil {
		return nil, err
	}

	// 2. Machine known. ParseSignedHeaderView lower-cased the id. The id
	// text of a machine that authenticated before is interned, so only
	// other ids are copied out of the request.
	machineID, interned := machineIDs.lookup(h.MachineID[:])
	if !interned {
		machineID = string(h.MachineID[:])
	}
	entry, ok := s.sm.Machine(fsm.MachineID(machineID))
	if !ok {
		s.authFailure(rc, machineID, nil, "unknown_machine")
		return nil, fail(ErrUnauthorized, "Unknown machine")
	}
	m := &entry.Machine

	// 3. Vault IP allowlist.
	if allow := s.sm.VaultAllowlist(m.VaultID); allow != nil && !allow.Contains(client) {
		s.audit(s.machineEvent(rc, ActionVaultIPBlocked, severityMedium, m))
		rc.result = resultBlocked
		return nil, fail(ErrForbidden, msgAccessDenied)
	}

	// 4. Lockout of the source address after repeated failures.
	if s.lockout.Locked(client, rc.now) {
		// Audited but not counted as a further failure, so a locked-out
		// source does not extend its own lockout by retrying.
		ev := s.machineEvent(rc, ActionAuthFailure, severityMedium, m)
		ev.Detail = "locked_out"
		ev.Fields = map[string]any{"reason": "locked_out"}
		s.audit(ev)
		return nil, fail(ErrLocked, "Too many failed authentication attempts from this address; retry later")
	}

	// A machine and address that the guardrail blocks repeatedly are
	// rejected here, before the signature check (machine_guardrails.go).
	if err := s.checkBlockThrottle(rc, entry, client); err != nil {
		return nil, err
	}

	if err := s.verifyRequest(rc, &h, machineID, entry, sum[:]); err != nil {
		return nil, err
	}

	// 8. Status and expiry.
	if err := checkMachineStatus(m, rc); err != nil {
		return nil, err
	}

	// 9. Guardrails.
	if err := s.checkGuardrails(rc, entry, client); err != nil {
		return nil, err
	}

	if !interned {
		machineIDs.add(machineID)
	}
	s.lastSeen.record(string(m.ID), rc.now.UnixMilli(), client)
	mc := machineCallPool.Get().(*machineCall)
	*mc = machineCall{entry: entry, machine: m, client: client, body: body}
	return mc, nil
}

// emptyBodySHA256 is the hex SHA-256 of an empty body.
var emptyBodySHA256 = func() string {
	sum := sha256.Sum256(nil)
	return hex.EncodeToString(sum[:])
}()

// bodyHashText returns the hex text of sum, the SHA-256 of body. An empty
// body, as a GET sends, gets a shared string, so only requests with a body
// allocate one.
func bodyHashText(body []byte, sum *[sha256.Size]byte) string {
	if len(body) == 0 {
		return emptyBodySHA256
	}
	var text [2 * sha256.Size]byte
	hex.Encode(text[:], sum[:])
	return string(text[:])
}

// readSignedHeaders is check 1. A query string is rejected because the
// signed bytes never cover one, so its content could not be trusted. The
// byte slices of the result are fasthttp buffers, valid only until the
// handler returns.
func readSignedHeaders(rc *request) (guard.SignedHeaderView, error) {
	hdr := &rc.ctx.Request.Header
	machineID := headerValues(hdr, guard.HeaderMachineID)
	timestamp := headerValues(hdr, guard.HeaderTimestamp)
	nonce := headerValues(hdr, guard.HeaderNonce)
	signature := headerValues(hdr, guard.HeaderSignature)
	if n := len(hdr.PeekAll(headerContentSHA256)); n > 1 {
		return guard.SignedHeaderView{}, fail(guard.ErrDuplicateHeader, "%s sent %d times; send it once", headerContentSHA256, n)
	}

	h, err := guard.ParseSignedHeaderView(machineID, timestamp, nonce, signature)
	if err != nil {
		return guard.SignedHeaderView{}, err
	}
	if rc.hasQuery {
		return guard.SignedHeaderView{}, fail(ErrUnauthorized, "Signed requests must not carry a query string; the signature does not cover it")
	}
	return h, nil
}

// headerValues returns the first value of header name and the number of
// values sent. fasthttp matches the name without regard to case, because
// the server normalizes header names. PeekAll reuses its result slice on
// the next call, so only the first value, a slice of the request buffer,
// is kept from it.
func headerValues(hdr *fasthttp.RequestHeader, name string) guard.HeaderValues {
	values := hdr.PeekAll(name)
	if len(values) == 0 {
		return guard.HeaderValues{}
	}
	return guard.HeaderValues{First: values[0], Count: len(values)}
}

// verifyRequest is checks 5 to 7: timestamp, body hash and signature, then
// the nonce. The nonce is recorded only after the signature verified, so
// unauthenticated requests cannot fill the replay cache or burn a
// machine's nonces. machineID is h.MachineID as a string.
func (s *Server) verifyRequest(rc *request, h *guard.SignedHeaderView, machineID string, entry *fsm.MachineEntry, sum []byte) error {
	m := &entry.Machine

	// 5. Timestamp window.
	if err := guard.CheckTimestamp(h.Timestamp, rc.now, s.cfg.TimestampWindow); err != nil {
		s.authFailure(rc, machineID, m, "timestamp_skew")
		return err
	}

	// 6. Body hash header, when sent, and the Ed25519 signature.
	if sent := rc.ctx.Request.Header.Peek(headerContentSHA256); len(sent) > 0 {
		if !hexDigestEqual(sent, sum) {
			s.authFailure(rc, machineID, m, "content_hash_mismatch")
			return fail(ErrUnauthorized, "%s does not match the SHA-256 of the body received", headerContentSHA256)
		}
	}
	// The body's SHA-256 (sum) was taken once, for the audit record and the
	// header check, and the signed bytes reuse it. The key cache holds the
	// expanded key of each machine that signs requests, and the verifier
	// checks this signature with those of concurrent requests.
	msg := h.AppendCanonicalDigest(rc.signedBytes[:0], rc.ctx.Method(), rc.path, sum)
	if !s.keyCache.VerifyBatched(s.verifier, entry.Key, msg, h.Signature[:]) {
		s.authFailure(rc, machineID, m, "invalid_signature")
		return fail(ErrUnauthorized, "Invalid signature")
	}

	// 7. Nonce unused within the window. The nonce is copied out of the
	// request buffer here, after the signature verified, because the replay
	// cache and the broadcast to peers take a string. Neither keeps it, so
	// the Go compiler (1.26) makes the copy of a nonce of up to 32 bytes on
	// the stack.
	nonce := string(h.Nonce)
	if !s.replay.CheckAndRecord(machineID, nonce, rc.now) {
		s.authFailure(rc, machineID, m, "nonce_reused")
		return fail(ErrUnauthorized, "Nonce already used; send a fresh nonce with every request")
	}
	s.node.PublishNonce(machineID, nonce, rc.now.Add(s.replay.Retention()))
	return nil
}

// hexDigestEqual compares a hex digest sent by the client, in either letter
// case, with sum.
func hexDigestEqual(sent, sum []byte) bool {
	if len(sent) != hex.EncodedLen(len(sum)) {
		return false
	}
	var decoded [sha256.Size]byte
	if _, err := hex.Decode(decoded[:], sent); err != nil {
		return false
	}
	return string(decoded[:len(sum)]) == string(sum)
}

// authFailure counts a failure towards the lockout of the client address
// and audits it. m is nil when the machine is unknown.
func (s *Server) authFailure(rc *request, machineID string, m *fsm.Machine, reason string) {
	client, _ := s.clientAddress(rc)
	s.lockout.Failure(client, rc.now)
	s.node.PublishAuthFailure(client)

	ev := s.machineEvent(rc, ActionAuthFailure, severityMedium, m)
	ev.MachineID, ev.ActorID = machineID, machineID
	ev.Detail = reason
	ev.Fields = map[string]any{"reason": reason}
	if m == nil {
		// The id of an unknown machine is whatever the caller sent, so it
		// stays out of the coalescing key: random ids from one address
		// fold into one entry per minute. The first entry keeps the id.
		ev.MachineID, ev.ActorID = "", ""
		ev.Fields["claimedMachineId"] = machineID
	}
	s.audit(ev)
}

// checkMachineStatus is check 8. Expiry uses guard.Expired, the one
// comparison (now >= expiresAt) that every expiry decision shares.
func checkMachineStatus(m *fsm.Machine, rc *request) error {
	switch m.Status {
	case fsm.StatusActive:
	case fsm.StatusPending:
		return fail(ErrForbidden, "Machine is pending approval")
	case fsm.StatusDisabled:
		return fail(ErrForbidden, "Machine is disabled")
	case fsm.StatusRevoked:
		return fail(ErrForbidden, "Machine has been revoked")
	case fsm.StatusExpired:
		return fail(ErrUnauthorized, "Machine has expired")
	default:
		return fail(ErrForbidden, "Machine is not active")
	}
	if machineExpired(m, rc.now) {
		return fail(ErrUnauthorized, "Machine has expired")
	}
	return nil
}

// machineExpired reports whether m has an expiry and it has passed. A zero
// ExpiresAt means the machine does not expire.
func machineExpired(m *fsm.Machine, now time.Time) bool {
	return m.ExpiresAt != 0 && guard.Expired(m.ExpiresAt, now)
}

// machineEvent starts an audit event for a signed request. Every field is
// a string copy, never a slice of the request.
func (s *Server) machineEvent(rc *request, action, severity string, m *fsm.Machine) AuditEvent {
	client, proxy := s.clientAddress(rc)
	ev := AuditEvent{
		RequestID:  rc.id,
		Action:     action,
		Severity:   severity,
		ActorKind:  actorMachine,
		SourceIP:   addrText(client),
		Method:     string(rc.ctx.Method()),
		Path:       rc.path,
		BodySHA256: rc.bodyHash,
		Timestamp:  rc.now.UnixMilli(),
	}
	if proxy.IsValid() {
		ev.ProxyIP = proxy.String()
	}
	if m != nil {
		ev.ActorID = string(m.ID)
		ev.MachineID = string(m.ID)
		ev.VaultID = string(m.VaultID)
	}
	return ev
}
