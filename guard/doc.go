// Package guard decides whether a signed machine request may proceed.
//
// Everything here is a pure function or an in-memory structure with an
// injected clock: the canonical request, Ed25519 verification, the replay
// cache, client-IP resolution, the failed-auth lockout and the evaluation of
// temporary-machine guardrails. The package performs no I/O, so it can be
// tested and fuzzed in isolation; callers bring the bytes and the time.
package guard
