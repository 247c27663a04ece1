// Package audit records Keyward's audit events into the replicated log and
// delivers the resulting entries as alerts.
//
// A Recorder runs on every node. The request path hands it events, which
// it copies into a bounded queue without blocking. A background loop
// coalesces repeats per (action, machine, secret, source address, failing
// axes) per window and proposes the entries in batches through Raft. A
// full queue drops events, counts them and writes an audit_overflow entry
// once the queue drains, so a flood is never silent.
//
// A Dispatcher runs on the leader only, as cluster leader jobs: it delivers
// webhooks and email from cursors kept in Raft, writes expiry warnings and
// compacts the log past each vault's retention. Because every cursor moves
// through Raft after delivery, a new leader resumes where the old one
// stopped: delivery is at least once, with a delivery id derived from the
// webhook and the entry, never two ids for one event.
//
// The package depends on fsm for the log and its commands and on nothing
// above cluster; httpapi feeds the Recorder and cmd/keyward wires both.
package audit
