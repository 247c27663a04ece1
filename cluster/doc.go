// Package cluster replicates Keyward's state machine across nodes with Raft
// and keeps the membership of the cluster in line with the nodes that run.
//
// A Node connects hashicorp/raft to the persistent state machine of package
// fsm, with a raft-boltdb log and stable store, a file snapshot store and a
// TCP transport wrapped in mutual TLS. It finds peers through memberlist and
// forms a new cluster once BootstrapExpect nodes see each other. Its leader
// adds joining nodes, re-addresses moved ones and removes ones that stay
// dead.
// Apply takes a command on any node and proposes it on the leader,
// forwarding it over the cluster port at most once; ApplyConfirmed also
// waits until every member applied the command or counts as stale.
// Staleness and Ready tell the HTTP layer when a node may be behind the
// majority. PublishNonce and PublishAuthFailure share accepted nonces and
// failed authentications with every peer. Leader-only jobs run while the
// node leads. DESIGN.md in this folder explains the port layout, the
// forwarding protocol, the start-up restore, readiness, confirmation,
// nonce propagation, operator snapshots and the error model.
package cluster
