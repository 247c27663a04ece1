// Package fsm applies Keyward's replicated commands to a Pebble store and
// serves the resulting state from memory.
//
// Every write in the cluster is a Command in the Raft log. FSM implements
// hashicorp/raft's FSM and BatchingFSM: it decodes each entry, validates it
// against the current state, writes the effects and the applied index in
// one Pebble batch, and then publishes the changed objects to in-memory
// indexes. The fast path of a signed request reads those indexes (machine
// entry with its parsed key and compiled guardrails, vault allowlist,
// secret metadata and sealed value) without touching the disk.
//
// Apply is deterministic: it takes "now" from Command.Time, never from the
// clock, uses no randomness, and never lets map iteration order reach the
// state. Ids, token hashes, sealed values, caps and new expiries are fixed
// by the proposing node before the command enters the log.
//
// Snapshot streams a Pebble snapshot in a framed, checksummed format, and
// Restore replaces the whole store atomically. Secret values are sealed by
// the seal sub-package and stay sealed in the log, in Pebble and in
// snapshots. DESIGN.md in this folder explains the key layout, the
// snapshot format and the trade-offs.
package fsm
