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
package guard
