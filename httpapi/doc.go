// Package httpapi serves Keyward's HTTP API on fasthttp: the signed machine
// plane, the unsigned registration routes and their bootstrap scripts, the
// operator admin plane, health, cluster status and Prometheus metrics.
//
// # Machine plane
//
// Every signed request passes the checks below in this order, and the first
// failure decides the response:
//
//  1. headers present and well formed (401; a repeated identity header is
//     400; a path with a query string is 401 because the signed bytes never
//     cover a query, so one cannot be trusted)
//  2. machine known (401)
//  3. vault IP allowlist (403 {"error":"Access denied"})
//  4. source-address lockout after repeated failures (429)
//  5. timestamp within the window (401)
//  6. Ed25519 signature, and the X-Content-Sha256 header when sent (401)
//  7. nonce unused, recorded only after the signature verified (401)
//  8. machine status and expiry (pending, disabled, revoked 403; expired or
//     now >= expiresAt 401)
//  9. guardrails (403 {"error":"Access denied"}; observe-mode failures are
//     audited and the request proceeds)
//  10. route authorization: the machine is attached to the secret's project
//     and holds an explicit grant for the secret (403; unknown secret 404)
//
// The path that is verified is the raw request-target up to the query, and
// routing uses the same bytes: nothing is percent-decoded, so an encoded
// segment is never a different resource from the one that was signed.
// Paths with empty or dot segments are rejected with 400 before any check.
//
// Failures at steps 2, 5, 6 and 7 count towards the lockout of the client
// address. Step 6 and 7 failures are audited as auth_failure.
//
// # Polling
//
// POST /v1/secrets/poll takes {"watch":[...]} where each element is either
// a secret id or an object {"id","version"}. For an object the secret is
// "changed" when its current version differs from the one sent. The
// SikkerKey SDKs send bare ids. For a bare id the node compares the current
// version with the version it last served to that machine (by a read, an
// export or a poll). The first poll of an id on a node sets that baseline
// and reports nothing. Unknown ids are reported "deleted", ids the machine
// may not read "access_denied", and unchanged ids are left out of
// "changes".
//
// # Writes
//
// Admin and registration writes are proposed through cluster.Node.Apply,
// which forwards them to the leader. Every value that depends on the clock
// or on randomness (ids, tokens, expiries, the extension cap, sealed secret
// values) is fixed here before the command is proposed, so every node
// applies the same bytes. A client may send an Idempotency-Key header, which
// becomes the command's request id, so that a retried write is applied once.
//
// Status codes are chosen in one place, errors.go, from typed errors.
//
// # Buffers
//
// fasthttp reuses request and response buffers once a handler returns.
// Anything kept past the handler (command payloads, audit events) is built
// from copies. A string conversion of a byte slice copies it, and a comment
// marks each place where that matters.
package httpapi
