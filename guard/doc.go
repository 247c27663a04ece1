// Package guard decides whether a signed machine request may proceed.
//
// Everything here is a pure function or an in-memory structure with an
// injected clock: the canonical request, Ed25519 verification, the replay
// cache, client-IP resolution, the failed-auth lockout and the evaluation of
// temporary-machine guardrails. The package performs no I/O, so it can be
// tested and fuzzed in isolation; callers bring the bytes and the time. The
// one exception is the IANA zone database, which is embedded in the package
// and read from memory.
//
// Rules that callers rely on:
//
//   - The signed bytes are METHOD:PATH:TIMESTAMP:NONCE:hex(sha256(body)),
//     with PATH the raw request path. A path with a query string, an empty
//     segment or a dot segment is rejected before verification, so the
//     bytes verified are the bytes routed.
//   - A nonce is 8 to 128 printable ASCII characters without space or ':'.
//     A nonce is remembered for twice the timestamp window plus a second.
//   - The client address is the TCP peer, unless the peer is a trusted
//     proxy. Then it is the right-most X-Forwarded-For entry that is not a
//     trusted proxy. A trusted proxy is never the client, so when no such
//     entry exists, or a malformed entry comes first, the client is unknown
//     (the invalid netip.Addr) and fails every address check.
//   - IPv4-mapped IPv6 addresses are compared as IPv4 everywhere.
//   - Guardrail axes compose with AND and are all evaluated on every
//     request, so a block names every failing axis. An address without a
//     country fails the country axis.
//   - A time window compares the local wall-clock minute of the day in the
//     configured zone, start and end minutes included, so DST gaps and
//     repeated hours need no special cases.
//   - Lifetimes, caps and extensions add calendar months in UTC with
//     AddMonths, which clamps to the last day of the month; Expired is the
//     one expiry comparison (now >= expiresAt).
//   - Every Ed25519 verification, with the raw key, an expanded key or in a
//     batch, uses one rule: the cofactored equation of RFC 8032, section
//     5.1.7, [8][S]B = [8]R + [8][k]A, with S below the group order L and
//     A and R in canonical encoding (curve25519-voi's
//     VerifyOptionsFIPS_186_5). ParsePublicKey rejects keys of small order.
//
// # Why the cofactored equation
//
// Batch verification needs it. curve25519-voi's BatchVerifier checks
// Σ z_i·([8]R_i + [8][k_i]A_i − [8][S_i]B) = 0 with random 128-bit weights
// z_i, which is the single equation above summed over the batch. A batch
// whose signatures each pass the single check always passes. A batch that
// holds a signature failing it passes only by a chance of about 2^-128 over
// the random weights, and BatchVerifier verifies every signature of a
// failed batch on its own, so each request gets the single check's result.
// TestVerify_PathsAgreeOnEdgeVectors and the batch tests check this on the
// vectors of signature_vectors_test.go.
//
// The cofactorless equation of crypto/ed25519 ([S]B = R + [k]A, compared
// byte for byte) cannot be batched: curve25519-voi refuses to, and a
// cofactored batch accepts signatures that it rejects. They differ exactly
// when R or A has a small-order component. Such components are not rejected
// before verification: a key whose point is the sum of a prime-order point
// and a small-order one is a valid key, and R is chosen anew for every
// signature. Checking R for a small-order component costs a scalar
// multiplication, more than a batch saves, so a batch pass cannot be
// confirmed cheaply under the cofactorless rule.
//
// The cofactored equation accepts a superset of what crypto/ed25519
// accepts: the signatures whose R or A differs from a valid one by a point
// of order 2, 4 or 8. Making one needs the private key, because the
// prime-order part must still satisfy the equation, so only the key's
// holder can use the difference. Honest signers, the SikkerKey SDKs among
// them, use R = [r]B and a prime-order A, for which the two equations
// agree. Verifying one signature costs about the same under either
// equation with curve25519-voi (24.5 and 25.9 µs of CPU on the host of
// docs/benchmarks.md, BenchmarkVerifyPerSignature).
package guard
